package acquirer

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/emv/tlv"
	"github.com/faregate/faregate/tap"
	"github.com/stretchr/testify/require"
)

const secretPAN = "4761739001010119"

var secretTrack2 = []byte{0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19, 0xD2, 0x81, 0x22, 0x01, 0x00, 0x00, 0x12, 0x34, 0x5F}

func secretCard(t testing.TB) tap.CardData {
	emv, err := tlv.Encode(
		tlv.TLV{Tag: "9F26", Value: []byte{0xC0, 0xFF, 0xEE, 0x11, 0x22, 0x33, 0x44, 0x55}},
		tlv.TLV{Tag: "9F10", Value: []byte{0x06, 0x01, 0x0A, 0x03, 0xA0, 0xBE, 0xEF}},
		tlv.TLV{Tag: "57", Value: secretTrack2},
		tlv.TLV{Tag: "5A", Value: []byte{0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19}},
	)
	require.NoError(t, err)
	return tap.CardData{PAN: secretPAN, PSN: "01", Expiry: "281231", Track2: secretTrack2, EMV: emv}
}

// leaks lists every form in which card data could show: the PAN (also its
// middle digits), track 2 as characters and as hex, field 55 as hex.
func leaks(t testing.TB, s string) {
	t.Helper()
	f55, err := Field55(secretCard(t).EMV)
	require.NoError(t, err)
	for _, secret := range []string{
		secretPAN, secretPAN[6:12], "4761739001010119=2812", hex.EncodeToString(secretTrack2),
		strings.ToUpper(hex.EncodeToString(secretTrack2)), hex.EncodeToString(f55), strings.ToUpper(hex.EncodeToString(f55)),
		"C0FFEE1122", "c0ffee1122", string(f55[:8]),
	} {
		require.NotContains(t, s, secret)
	}
}

func TestField55AllowList(t *testing.T) {
	emv, err := tlv.Encode(
		tlv.TLV{Tag: "5A", Value: []byte{0x47, 0x61}}, tlv.TLV{Tag: "9F26", Value: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		tlv.TLV{Tag: "57", Value: secretTrack2}, tlv.TLV{Tag: "56", Value: []byte("B4761")},
		tlv.TLV{Tag: "5F20", Value: []byte("NAME")}, tlv.TLV{Tag: "5F24", Value: []byte{0x28, 0x12, 0x31}},
		tlv.TLV{Tag: "99", Value: []byte{0x12}}, tlv.TLV{Tag: "9F35", Value: []byte{0x22}},
		tlv.TLV{Tag: "77", TLVs: []tlv.TLV{{Tag: "5A", Value: []byte{0x47}}, {Tag: "9F36", Value: []byte{0, 7}}}},
		tlv.TLV{Tag: "9A", Value: []byte{0x26, 0x12, 0x01}}, tlv.TLV{Tag: "9F26", Value: []byte{9, 9, 9, 9, 9, 9, 9, 9}},
	)
	require.NoError(t, err)
	out, err := Field55(emv)
	require.NoError(t, err)
	var tags []string
	require.NoError(t, tlv.Children(out, func(tag string, v []byte) error {
		tags = append(tags, tag)
		return nil
	}))
	require.Equal(t, []string{"9F26", "9F36", "9A"}, tags, "allowed tags only, first occurrence, in Field55Tags order, flattened")
	v, ok, err := tlv.Lookup(out, "9F26")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []byte{1, 2, 3, 4, 5, 6, 7, 8}, v)
	for _, never := range []string{"56", "57", "5A", "5F20", "5F24", "99"} {
		require.False(t, field55Allowed(never), never)
	}
	_, err = Field55([]byte{0x9F, 0x26, 0x84, 0xFF, 0xFF, 0xFF, 0xFF})
	require.ErrorIs(t, err, ErrRequest)
}

// TestNoCardDataInErrorsOrLogs drives every error path that sees card data
// — building requests, unpacking answers that quote the request, the
// connection library's error handler, an unacknowledged reversal, the
// Charger's outcomes — and checks that no PAN, track 2 or field 55 bytes
// reach an error, a log line or an outcome.
func TestNoCardDataInErrorsOrLogs(t *testing.T) {
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &logMu}, nil))
	logErr := func(err error) {
		logger.Error("acquirer", "err", err)
		logMu.Lock()
		fmt.Fprintf(&logBuf, "%v %+v %#v %s\n", err, err, err, err)
		logMu.Unlock()
	}
	card := secretCard(t)
	gbp := capping.Currency{Code: "GBP", Digits: 2}

	// Card data printed on its own.
	logger.Info("card", "card", card, "pan", NewPAN(secretPAN))
	logMu.Lock()
	fmt.Fprintf(&logBuf, "%v %+v %#v %s\n", card, card, NewPAN(secretPAN), NewPAN(secretPAN))
	logMu.Unlock()

	// Requests that cannot be built.
	m := Merchant{AcquirerID: "1", ID: "M", Name: "N"}
	for _, c := range []tap.CardData{
		{PAN: secretPAN + "X"}, {PAN: secretPAN, EMV: append([]byte{0x9F, 0x26, 0x09}, card.EMV...)},
		{PAN: secretPAN, Track2: secretTrack2, EMV: append([]byte{0x9F, 0x10, 0x82, 0x01, 0x10}, bytes.Repeat(secretTrack2[:8], 34)...)},
	} {
		_, err := m.build(Request{Terminal: "T", Amount: 1, Currency: gbp, Card: c}, "000001", time.Now())
		require.Error(t, err)
		logErr(err)
	}

	// Answers that quote the request and do not unpack.
	msg, err := m.build(Request{Terminal: "T", Amount: 1, Currency: gbp, Card: card}, "000001", time.Now())
	require.NoError(t, err)
	packed, err := msg.Pack()
	require.NoError(t, err)
	for cut := 1; cut < len(packed); cut += 7 {
		bad := append([]byte("0210"), packed[4:len(packed)-cut]...)
		_, err := Unpack(bad)
		if err != nil {
			logErr(err)
		}
		_, err = (messageReader{}).ReadMessage(bytes.NewReader(append([]byte{0, byte(len(bad))}, bad...)))
		if err != nil {
			logErr(err)
		}
	}

	// A host that answers charges with a garbled copy of the request and
	// never answers reversals: the client's error handler and Do's error.
	addr := garblingHost(t)
	c, err := Dial(context.Background(), Options{Addr: addr, Merchant: m, SendTimeout: 100 * time.Millisecond, RetryWait: 10 * time.Millisecond, OnError: logErr})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = c.Do(ctx, Request{Reference: "r1", Terminal: "T", Amount: 1, Currency: gbp, Card: card})
	require.ErrorIs(t, err, ErrReversalPending)
	logErr(err)

	logMu.Lock()
	defer logMu.Unlock()
	require.Contains(t, logBuf.String(), "cannot unpack", "the garbled answers were seen")
	leaks(t, logBuf.String())
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// garblingHost answers 0800 properly, a 0200 with its own bytes cut short
// under MTI 0210 (an answer that fails to unpack and holds the PAN), and
// nothing else.
func garblingHost(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				go func() { <-time.After(5 * time.Second); conn.Close() }()
				for {
					n, err := ReadLength(conn)
					if err != nil {
						return
					}
					b := make([]byte, n)
					if _, err := io.ReadFull(conn, b); err != nil {
						return
					}
					var out []byte
					switch string(b[:4]) {
					case MTINetworkRequest:
						req, err := Unpack(b)
						if err != nil {
							return
						}
						out, _ = answer(req, MTINetworkResponse, "00", 7, 11, 70).Pack()
					case MTIFinancialRequest:
						out = append([]byte("0210"), b[4:len(b)-5]...)
					default:
						continue
					}
					WriteLength(conn, len(out))
					conn.Write(out)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestMaskPAN(t *testing.T) {
	require.Equal(t, "476173******0119", MaskPAN(secretPAN))
	require.Equal(t, "****0119", MaskPAN("47610119"))
	require.Equal(t, "****", MaskPAN("4761"))
	require.Equal(t, "476173******0119", NewPAN(secretPAN).String())
	require.True(t, errors.Is(&UnpackError{Field: "2"}, ErrUnpack))
}
