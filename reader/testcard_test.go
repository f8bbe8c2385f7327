package reader

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"
)

// testCard is the smallest card the reader tests need — not an EMV card:
// it refuses SELECT PPSE with 6A82 (not a payment card), echoes, answers
// 61xx and 6Cxx like a T=0 card, and can leave the field mid-APDU.
type testCard struct {
	atr []byte

	mu     sync.Mutex
	on     bool
	ons    int
	offs   int
	resets int
	apdus  int
	delay  time.Duration // before every answer to an APDU
	echoes []string      // the data of every echo command, in the order the card saw them
}

// atrT1: a contactless card as PC/SC part 3 describes it (T=1).
var atrT1 = []byte{0x3B, 0x80, 0x80, 0x01, 0x01}

// Test instructions.
const (
	insEcho   = 0xEE // answer the command data, 9000
	insChain  = 0xE1 // 61 08, then GET RESPONSE gives chainData
	insWrongL = 0xE2 // 6C 04 unless Le = 4
	insTorn   = 0xDD // the card leaves the field
)

var (
	ppse      = []byte("2PAY.SYS.DDF01")
	chainData = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	errGone   = errors.New("test card: removed")
)

func newTestCard(atr []byte) *testCard { return &testCard{atr: atr} }

func (c *testCard) ATR() []byte { return c.atr }

func (c *testCard) PowerOn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = true
	c.ons++
}

func (c *testCard) PowerOff() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = false
	c.offs++
}

func (c *testCard) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resets++
}

func (c *testCard) counts() (ons, offs, resets, apdus int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ons, c.offs, c.resets, c.apdus
}

func (c *testCard) Transmit(ctx context.Context, apdu []byte) ([]byte, error) {
	c.mu.Lock()
	c.apdus++
	delay := c.delay
	c.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if len(apdu) < 4 {
		return []byte{0x67, 0x00}, nil
	}
	ins := apdu[1]
	data := commandData(apdu)
	switch ins {
	case 0xA4:
		if bytes.Equal(data, ppse) {
			return []byte{0x6A, 0x82}, nil
		}
		return []byte{0x90, 0x00}, nil
	case insEcho:
		c.mu.Lock()
		c.echoes = append(c.echoes, string(data))
		c.mu.Unlock()
		return append(append([]byte(nil), data...), 0x90, 0x00), nil
	case insChain:
		return []byte{0x61, byte(len(chainData))}, nil
	case 0xC0: // GET RESPONSE
		n := int(apdu[len(apdu)-1])
		if len(apdu) != 5 || n > len(chainData) {
			return []byte{0x6A, 0x86}, nil
		}
		return append(append([]byte(nil), chainData[:n]...), 0x90, 0x00), nil
	case insWrongL:
		if len(apdu) != 5 || apdu[4] != 4 {
			return []byte{0x6C, 0x04}, nil
		}
		return []byte{0xDE, 0xAD, 0xBE, 0xEF, 0x90, 0x00}, nil
	case insTorn:
		return nil, errGone
	}
	return []byte{0x6D, 0x00}, nil
}

// commandData returns the data field of a short command APDU.
func commandData(apdu []byte) []byte {
	if len(apdu) < 6 {
		return nil
	}
	n := int(apdu[4])
	if 5+n > len(apdu) {
		return nil
	}
	return apdu[5 : 5+n]
}

// selectPPSE is SELECT 2PAY.SYS.DDF01, the first command of every tap.
func selectPPSE() []byte {
	cmd := []byte{0x00, 0xA4, 0x04, 0x00, byte(len(ppse))}
	cmd = append(cmd, ppse...)
	return append(cmd, 0x00)
}
