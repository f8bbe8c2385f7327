package acquirer

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/emv/tlv"
	"github.com/faregate/faregate/tap"
)

// seedMessages returns real packed messages of the link: every request the
// client builds and every answer the simulated host gives to them.
func seedMessages(t testing.TB) [][]byte {
	card := tap.CardData{PAN: "4761739001010119", PSN: "01", Expiry: "281231",
		Track2: []byte{0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19, 0xD2, 0x81, 0x22, 0x01, 0x00, 0x00, 0x12, 0x34, 0x5F},
		EMV:    []byte{0x9F, 0x26, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x9F, 0x27, 0x01, 0x80, 0x95, 0x05, 0, 0, 0, 0, 0, 0x9A, 0x03, 0x26, 0x12, 0x01}}
	m := Merchant{AcquirerID: "123456", ID: "FAREGATE0000001", Name: "FAREGATE TRANSIT LONDON GB"}
	now := time.Date(2026, 12, 1, 14, 30, 0, 0, time.UTC)
	gbp := capping.Currency{Code: "GBP", Digits: 2}
	h, err := NewHost(Rules{Rules: []Rule{{MTI: []string{"0200"}, MAC: "24", ResponseCode: "51", Times: 1}}}, &bytes.Buffer{}, HostOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	add := func(b []byte) {
		out = append(out, b)
		if resp, _ := h.handle(b); resp != nil {
			out = append(out, resp)
		}
	}
	for i, k := range []Kind{KindCharge, KindCharge, KindRefund, KindAccountCheck} {
		amt := capping.Amount(290)
		if k == KindAccountCheck {
			amt = 0
		}
		msg, err := m.build(Request{Kind: k, Reference: "ref", Terminal: "G0000001", Amount: amt, Currency: gbp, Card: card}, "00000"+string(rune('1'+i)), now)
		if err != nil {
			t.Fatal(err)
		}
		b, err := msg.Pack()
		if err != nil {
			t.Fatal(err)
		}
		add(b)
	}
	rev := buildReversal(m, Original{MTI: "0200", STAN: "000001", Transmitted: "1201143000", RRN: "ref", Terminal: "G0000001", Amount: 290, Currency: gbp}, "000009", now)
	b, err := rev.Pack()
	if err != nil {
		t.Fatal(err)
	}
	add(b)
	net := buildNetwork(networkEcho, "000010", now)
	b, err = net.Pack()
	if err != nil {
		t.Fatal(err)
	}
	add(b)
	return out
}

// FuzzUnpack feeds the message decoder everything: it must never panic, and
// what it accepts must survive the client's answer parsing.
func FuzzUnpack(f *testing.F) {
	for _, b := range seedMessages(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("0210"))
	f.Add([]byte("0210\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unpack(b)
		if err != nil {
			if _, ok := err.(*UnpackError); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		for _, mti := range []string{MTIAuthRequest, MTIFinancialRequest, MTIReversalRequest, MTINetworkRequest} {
			_, _ = parseResponse(m, mti)
		}
		f90, _ := m.GetString(90)
		_, _ = ParseOriginalData(f90)
		f48, _ := m.GetString(48)
		_ = subElement(f48, "84")
	})
}

// FuzzReadMessage is the client's receive path: length header, bounded
// body, Unpack.
func FuzzReadMessage(f *testing.F) {
	for _, b := range seedMessages(f) {
		var h [2]byte
		binary.BigEndian.PutUint16(h[:], uint16(len(b)))
		f.Add(append(h[:], b...))
	}
	f.Add([]byte{0xFF, 0xFF})
	f.Add([]byte{0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for range 4 {
			if _, err := (messageReader{}).ReadMessage(r); err != nil && r.Len() == 0 {
				return
			}
		}
	})
}

// FuzzField55 is the filter over a tap's EMV data (from the vault, written
// by a gate from a card's answers).
func FuzzField55(f *testing.F) {
	f.Add([]byte{0x9F, 0x26, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x5A, 0x02, 0x47, 0x61})
	f.Add([]byte{0x70, 0x04, 0x5A, 0x02, 0x47, 0x61})
	f.Add([]byte{0x9F, 0x10, 0x84, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Field55(b)
		if err != nil {
			return
		}
		if len(out) > maxField55 {
			t.Fatalf("field 55 of %d bytes", len(out))
		}
		if err := tlv.Children(out, func(tag string, _ []byte) error {
			if !field55Allowed(tag) {
				t.Fatalf("tag %s in field 55", tag)
			}
			return nil
		}); err != nil {
			t.Fatalf("field 55 does not parse: %v", err)
		}
	})
}

// FuzzHostHandle is the simulator's receive path: whatever a peer sends,
// the host answers or ignores it without panicking.
func FuzzHostHandle(f *testing.F) {
	for _, b := range seedMessages(f) {
		f.Add(b)
	}
	h, err := NewHost(Rules{}, &bytes.Buffer{}, HostOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = h.handle(b)
	})
}
