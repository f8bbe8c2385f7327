package acquirer_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/emv/tlv"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/stretchr/testify/require"
)

// testPAN and testTrack2 are a Visa test card's (never a real account).
const testPAN = "4761739001010119"

var testTokenKey = []byte("faregate test token key 32 bytes")

var gbp = capping.Currency{Code: "GBP", Digits: 2}

func testTrack2() []byte {
	return []byte{0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19, 0xD2, 0x81, 0x22, 0x01, 0x00, 0x00, 0x12, 0x34, 0x5F}
}

// testEMV is a tap's EMV data with the allowed objects and, mixed in, the
// ones that must never reach field 55 (also inside a template).
func testEMV(t testing.TB) []byte {
	b, err := tlv.Encode(
		tlv.TLV{Tag: "9F26", Value: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		tlv.TLV{Tag: "5A", Value: []byte{0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19}},
		tlv.TLV{Tag: "9F27", Value: []byte{0x80}},
		tlv.TLV{Tag: "57", Value: testTrack2()},
		tlv.TLV{Tag: "9F10", Value: []byte{0x06, 0x01, 0x0A, 0x03, 0xA0, 0x00, 0x00}},
		tlv.TLV{Tag: "5F20", Value: []byte("CARDHOLDER/TEST")},
		tlv.TLV{Tag: "9F37", Value: []byte{0xDE, 0xAD, 0xBE, 0xEF}},
		tlv.TLV{Tag: "5F24", Value: []byte{0x28, 0x12, 0x31}},
		tlv.TLV{Tag: "9F36", Value: []byte{0x00, 0x2A}},
		tlv.TLV{Tag: "56", Value: []byte("B4761739001010119^TEST")},
		tlv.TLV{Tag: "95", Value: []byte{0, 0, 0, 0, 0}},
		tlv.TLV{Tag: "99", Value: []byte{0x12, 0x34}},
		tlv.TLV{Tag: "9A", Value: []byte{0x26, 0x12, 0x01}},
		tlv.TLV{Tag: "9C", Value: []byte{0x00}},
		tlv.TLV{Tag: "9F02", Value: []byte{0, 0, 0, 0, 0, 0}},
		tlv.TLV{Tag: "5F2A", Value: []byte{0x08, 0x26}},
		tlv.TLV{Tag: "82", Value: []byte{0x20, 0x00}},
		tlv.TLV{Tag: "9F1A", Value: []byte{0x08, 0x26}},
		tlv.TLV{Tag: "70", TLVs: []tlv.TLV{{Tag: "57", Value: testTrack2()}, {Tag: "5A", Value: []byte{0x47, 0x61}}}},
		tlv.TLV{Tag: "84", Value: []byte{0xA0, 0, 0, 0, 0x03, 0x10, 0x10}},
		tlv.TLV{Tag: "9F6E", Value: []byte{0x20, 0x70, 0, 0}},
	)
	require.NoError(t, err)
	return b
}

func testCard(t testing.TB) tap.CardData {
	return tap.CardData{PAN: testPAN, PSN: "01", Expiry: "281231", Track2: testTrack2(), EMV: testEMV(t), Scheme: "visa"}
}

func testToken() rider.Token { return rider.NewToken(testTokenKey, testPAN, "01") }

// syncBuffer is a ledger in memory that tests may read while the host writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) entries(t testing.TB) []acquirer.LedgerEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	es, err := acquirer.ReadLedger(bytes.NewReader(s.b.Bytes()))
	require.NoError(t, err)
	return es
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startHost runs a simulator on a loopback port until the test ends.
func startHost(t testing.TB, rules acquirer.Rules, ledger *syncBuffer, replay []acquirer.LedgerEntry) (*acquirer.Host, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return serveHost(t, ln, rules, ledger, replay), ln.Addr().String()
}

func serveHost(t testing.TB, ln net.Listener, rules acquirer.Rules, ledger *syncBuffer, replay []acquirer.LedgerEntry) *acquirer.Host {
	h, err := acquirer.NewHost(rules, ledger, acquirer.HostOptions{Replay: replay})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- h.Serve(ln) }()
	t.Cleanup(func() {
		h.Close()
		<-done
	})
	return h
}

func testMerchant() acquirer.Merchant {
	return acquirer.Merchant{AcquirerID: "123456", ID: "FAREGATE0000001", Name: "FAREGATE TRANSIT        LONDON       GB"}
}

func dial(t testing.TB, addr string, o acquirer.Options) *acquirer.Client {
	t.Helper()
	o.Addr = addr
	o.Merchant = testMerchant()
	if o.SendTimeout == 0 {
		o.SendTimeout = 2 * time.Second
	}
	if o.RetryWait == 0 {
		o.RetryWait = 10 * time.Millisecond
	}
	if o.ReconnectWait == 0 {
		o.ReconnectWait = 20 * time.Millisecond
	}
	c, err := acquirer.Dial(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Echo(ctx))
	return c
}

// held sums the ledger's effects per RRN: what the acquirer holds for each
// charge.
func held(es []acquirer.LedgerEntry) map[string]capping.Amount {
	m := map[string]capping.Amount{}
	for _, e := range es {
		if e.Effect != 0 {
			m[e.RRN] += e.Effect
		}
	}
	return m
}

func hexOf(b []byte) string { return fmt.Sprintf("%x", b) }

func capAmount(v int64) capping.Amount { return capping.Amount(v) }

func listen(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

func listenOn(t testing.TB, addr string) net.Listener {
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	return ln
}
