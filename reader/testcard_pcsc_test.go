//go:build pcsc

package reader

// atrT0: a contact card that only speaks T=0.
var atrT0 = []byte{0x3B, 0x02, 0x14, 0x50}

func (c *testCard) echoed() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.echoes...)
}
