package qr_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/faregate/faregate/qr"
)

// fuzzSeeds are the vectors' texts: real payloads.
func fuzzSeeds(f *testing.F) []string {
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		f.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		f.Fatal(err)
	}
	var out []string
	for _, c := range v.Codes {
		out = append(out, c.Text)
	}
	return out
}

// FuzzParse: no input panics the text decoder; whatever parses re-encodes
// to the same text (one text per payload) and goes through a gate without
// panicking.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Add("")
	f.Add(qr.TextPrefix)
	f.Add(qr.TextPrefix + "GGW")
	g, err := qr.NewGate(qr.GateOptions{Issuers: issuers(f, testKey("issuer 1")), Now: func() time.Time { return t0 }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := qr.Parse(s)
		if err != nil {
			if qr.ReasonOf(err) == "" {
				t.Fatalf("parse error without a reason: %v", err)
			}
			return
		}
		if got := qr.Text(c.Payload()); got != strings.TrimRight(s, "\r\n") {
			t.Fatalf("re-encoded text differs: %q vs %q", got, s)
		}
		_, _ = g.VerifyText(s)
	})
}

// FuzzParseBinary: the binary decoder, seeded with the vectors' payloads.
func FuzzParseBinary(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		c, err := qr.Parse(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c.Payload())
	}
	f.Add([]byte{qr.Version})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := qr.ParseBinary(b)
		if err != nil {
			if qr.ReasonOf(err) == "" {
				t.Fatalf("parse error without a reason: %v", err)
			}
			return
		}
		if len(c.Challenge) > qr.MaxChallenge || len(b) != qr.MinPayloadSize+len(c.Challenge) {
			t.Fatalf("accepted %d bytes with a %d-byte challenge", len(b), len(c.Challenge))
		}
		_ = c.VerifySignature()
	})
}
