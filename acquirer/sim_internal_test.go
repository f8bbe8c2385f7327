package acquirer

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/tap"
	"github.com/stretchr/testify/require"
)

func packedCharge(t *testing.T, stan string, now time.Time) []byte {
	t.Helper()
	m := Merchant{AcquirerID: "123456", ID: "M1", Name: "FAREGATE"}
	msg, err := m.build(Request{Reference: "r1", Terminal: "G0000001", Amount: 450, Currency: capping.Currency{Code: "EUR", Digits: 2},
		Card: tap.CardData{PAN: "4761739001010119", PSN: "01"}}, stan, now)
	require.NoError(t, err)
	b, err := msg.Pack()
	require.NoError(t, err)
	return b
}

func packedReversal(t *testing.T, mti, stan, origSTAN string, now time.Time) []byte {
	t.Helper()
	msg := buildReversal(Merchant{AcquirerID: "123456", ID: "M1"}, Original{MTI: "0200", STAN: origSTAN, Transmitted: now.UTC().Format("0102150405"),
		RRN: "r1", Terminal: "G0000001", Amount: 450, Currency: capping.Currency{Code: "EUR", Digits: 2}}, stan, now)
	msg.MTI(mti)
	b, err := msg.Pack()
	require.NoError(t, err)
	return b
}

// TestHostIdempotent: a retransmission is answered again without a second
// booking, a reversal undoes once however often it is repeated, and a
// reversal that overtakes its original makes the host refuse the original.
func TestHostIdempotent(t *testing.T) {
	now := time.Date(2026, 12, 1, 14, 30, 0, 0, time.UTC)
	var ledger bytes.Buffer
	h, err := NewHost(Rules{}, &ledger, HostOptions{Now: func() time.Time { return now }})
	require.NoError(t, err)
	sum := func() (s capping.Amount) {
		h.flush()
		es, err := ReadLedger(bytes.NewReader(ledger.Bytes()))
		require.NoError(t, err)
		for _, e := range es {
			s += e.Effect
		}
		return s
	}
	charge := packedCharge(t, "000001", now)
	a1, _ := h.handle(charge)
	a2, _ := h.handle(charge)
	require.Equal(t, a1, a2, "a retransmission gets the first answer")
	require.EqualValues(t, 450, sum(), "booked once")

	for i, mti := range []string{MTIReversalRequest, MTIReversalRepeat, MTIReversalRepeat} {
		out, _ := h.handle(packedReversal(t, mti, "000002", "000001", now))
		m, err := Unpack(out)
		require.NoError(t, err)
		code, _ := m.GetString(39)
		require.Equal(t, "00", code, "attempt %d", i)
	}
	require.EqualValues(t, 0, sum(), "undone once")

	// The reversal of 000003 arrives before 000003 itself.
	out, _ := h.handle(packedReversal(t, MTIReversalRequest, "000004", "000003", now))
	m, err := Unpack(out)
	require.NoError(t, err)
	code, _ := m.GetString(39)
	require.Equal(t, "25", code)
	out, _ = h.handle(packedCharge(t, "000003", now))
	m, err = Unpack(out)
	require.NoError(t, err)
	code, _ = m.GetString(39)
	require.Equal(t, "12", code, "an original after its reversal is refused")
	require.EqualValues(t, 0, sum())

	// Replayed into a new host, the state survives a restart.
	es, err := ReadLedger(bytes.NewReader(ledger.Bytes()))
	require.NoError(t, err)
	h2, err := NewHost(Rules{}, &bytes.Buffer{}, HostOptions{Replay: es})
	require.NoError(t, err)
	require.True(t, h2.txns[txnKey{"G0000001", "000001", now.Format("0102150405")}].reversed)
	require.True(t, h2.tombstone[txnKey{"G0000001", "000003", now.Format("0102150405")}] || h2.txns[txnKey{"G0000001", "000003", now.Format("0102150405")}] != nil)
}

func TestParseRules(t *testing.T) {
	rs, err := ParseRules(strings.NewReader(`{"default":"05","rules":[{"pan_ranges":[{"from":"4761","to":"4799"}],"min_amount":100,"response_code":"51","latency":"20ms","times":2}]}`))
	require.NoError(t, err)
	require.Equal(t, Duration(20*time.Millisecond), rs.Rules[0].Latency)
	for _, bad := range []string{
		`{"rules":[{"respons_code":"51"}]}`,
		`{"rules":[{"response_code":"5"}]}`,
		`{"token_key":"zz"}`,
		`{"rules":[{"tokens":["00112233445566778899aabbccddeeff"]}]}`,
		`{"rules":[{"latency":"soon"}]}`,
	} {
		_, err := ParseRules(strings.NewReader(bad))
		require.ErrorIs(t, err, ErrRules, bad)
	}
	h, err := NewHost(rs, &bytes.Buffer{}, HostOptions{})
	require.NoError(t, err)
	require.Equal(t, "51", h.match("0200", "4770000000000000", [16]byte{}, 100).ResponseCode)
	require.Equal(t, "", h.match("0200", "4800000000000000", [16]byte{}, 100).ResponseCode, "outside the range")
	require.Equal(t, "", h.match("0200", "4770000000000000", [16]byte{}, 99).ResponseCode, "below min_amount")
	require.Equal(t, "51", h.match("0200", "4770000000000000", [16]byte{}, 100).ResponseCode)
	require.Equal(t, "", h.match("0200", "4770000000000000", [16]byte{}, 100).ResponseCode, "times used up")
}

// TestSTANUnique: STANs handed out concurrently never repeat within the
// window and wrap from 999999 to 000001.
func TestSTANUnique(t *testing.T) {
	var s stanCounter
	s.n.Store(stanModulus - 3)
	seen := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5000 {
				v := s.next()
				mu.Lock()
				require.False(t, seen[v], "STAN %s twice", v)
				seen[v] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, seen, 40000)
	require.True(t, seen["999999"])
	require.True(t, seen["000001"])
	require.False(t, seen["000000"])
}

func TestTerminalID(t *testing.T) {
	a, b := TerminalID("gate-1"), TerminalID("gate-2")
	require.Len(t, a, 8)
	require.NotEqual(t, a, b)
	require.Equal(t, a, TerminalID("gate-1"))
	c := NewCharger(nil, nil, nil, nil, nil, ChargerOptions{Terminal: func(string) string { return "SAME0001" }})
	_, err := c.terminal("gate-1")
	require.NoError(t, err)
	_, err = c.terminal("gate-2")
	require.ErrorIs(t, err, ErrTerminalCollision)
	require.Equal(t, "r1", RRN("r1"))
	require.Len(t, RRN("a-reference-longer-than-twelve"), 12)
}
