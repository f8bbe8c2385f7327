package oda_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/oda"
	"github.com/faregate/faregate/oda/odatest"
	"github.com/stretchr/testify/require"
)

// vector is one entry of testdata/oda/vectors.json: a CA key list, an input
// or a transcript, the flags of `faregate oda verify`, and the expected
// output. cmd/faregate runs the same list end to end.
type vector struct {
	Name       string      `json:"name"`
	CAPK       string      `json:"capk"`
	Input      string      `json:"input,omitempty"`
	Transcript string      `json:"transcript,omitempty"`
	Date       string      `json:"date,omitempty"`
	TestKeys   bool        `json:"test_keys,omitempty"`
	Want       oda.Summary `json:"want"`
}

const vectorsFile = "../testdata/oda/vectors.json"

// runVector does what `faregate oda verify` does: a transcript is
// replayed through the gate's kernel.
func runVector(t *testing.T, v vector) oda.Summary {
	t.Helper()
	ks, err := oda.LoadKeyStore(filepath.Join("../testdata", v.CAPK))
	require.NoError(t, err)
	var in *oda.Input
	if v.Input != "" {
		b, err := os.ReadFile(filepath.Join("../testdata", v.Input))
		require.NoError(t, err)
		in, err = oda.ParseInputJSON(b)
		require.NoError(t, err)
	} else {
		b, err := os.ReadFile(filepath.Join("../testdata", v.Transcript))
		require.NoError(t, err)
		tr, err := emv.ParseTranscript(b)
		require.NoError(t, err)
		in, err = emv.ODAInputFromTranscript(context.Background(), tr, time.Time{})
		require.NoError(t, err)
	}
	if v.Date != "" {
		in.Date, err = time.Parse(time.DateOnly, v.Date)
		require.NoError(t, err)
	}
	require.False(t, in.Date.IsZero(), "vectors must fix their date")
	res, err := oda.NewVerifier(ks, oda.Options{TestMode: v.TestKeys}).Verify(in)
	return oda.Summarize(res, err)
}

func TestVectors(t *testing.T) {
	if *update {
		writeGenerated(t)
	}
	b, err := os.ReadFile(vectorsFile)
	require.NoError(t, err)
	var vs []vector
	require.NoError(t, json.Unmarshal(b, &vs))
	require.NotEmpty(t, vs)
	for i := range vs {
		t.Run(vs[i].Name, func(t *testing.T) {
			got := runVector(t, vs[i])
			if *update {
				vs[i].Want = got
				return
			}
			require.Equal(t, vs[i].Want, got)
		})
	}
	if *update {
		out, err := json.MarshalIndent(vs, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(vectorsFile, append(out, '\n'), 0o644))
	}
}

// The published vectors recover the values their sources publish.
func TestPublishedValues(t *testing.T) {
	b, err := os.ReadFile(vectorsFile)
	require.NoError(t, err)
	var vs []vector
	require.NoError(t, json.Unmarshal(b, &vs))
	want := map[string]func(s oda.Summary){
		// openemv/emv-utils tests/emv_rsa_test.c full_issuer_pkey_verify.modulus
		"emvutils-visa94": func(s oda.Summary) {
			require.Equal(t, "DDD9039ACC0BB00E8D6C1A11BD78C055758C5AB4CC6A3735A23DDFCF16A8F7BA72B7060FD4A77A8F6CA5FB4F11300A671BF14DF26647DCB2DC1D018A78D0F7CBCA854ECB03D32BEECEDFA849256CCB4B0392F3CC36B838EBFD244C11C58EF44ED63196E6CD55E0AC7BCA87ED2CC4F475DC9999BA88BA0E00FA860D7763996ED8A01701E2AC0D285B1198FC8485AADF043FAA3848ED869D6EB3D970F4AC08A97474278842C85584E34B6FACC07207BC41", s.IssuerPKModulus)
		},
		// openemv/emv-utils tests/emv_rsa_cda_test.c full_issuer_pkey_verify.modulus
		"emvutils-mc-f1-cda": func(s oda.Summary) {
			require.Equal(t, "99903295DA9DFA7CB84E664E6500E48A5A1D2EDD3F460BE4AD52066435A644C5A803AE5B829C31B21E81889869BF98D73D9A126F222AC762298808EA0AFB94B33D8FE26AF363FAEACC3B1557CF31F7CCC996E430EA74F6936993C37F638538C075039AD3A8BAF26E44D25FADD3524107", s.IssuerPKModulus)
		},
	}
	for _, v := range vs {
		if f, ok := want[v.Name]; ok {
			f(v.Want)
			delete(want, v.Name)
		}
	}
	require.Empty(t, want, "vectors missing from %s", vectorsFile)
}

// writeGenerated writes the generated vectors: fixed keys, a test CA list,
// inputs and transcripts built with odatest. Signatures are deterministic,
// so rerunning rewrites the same bytes.
func writeGenerated(t *testing.T) {
	k := loadKeys(t)
	ks := []oda.CAKey{caKey(t, k.ca, true), caKey(t, k.ca, true)}
	ks[1].RID = [5]byte{0xA0, 0, 0, 0, 0x04}
	for i := range ks {
		ks[i].Description = "faregate generated test CA (testdata/oda/keys/ca.pem)"
	}
	list, err := oda.MarshalKeyList(ks)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile("../testdata/capk/generated.json", list, 0o644))
	// The same key marked live: a gate outside test mode uses it.
	for i := range ks {
		ks[i].Test = false
		ks[i].Description = "faregate generated CA (testdata/oda/keys/ca.pem) marked live, to test the live path"
	}
	list, err = oda.MarshalKeyList(ks)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile("../testdata/capk/generated-live.json", list, 0o644))

	dir := "../testdata/oda/generated"
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, c := range generatedCards(t) {
		in := c.input()
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".json"), inputJSON(t, in, c.comment), 0o644))
	}
	for name, tr := range generatedTranscripts(t) {
		require.NoError(t, os.WriteFile(filepath.Join("../testdata/oda/transcripts", name+".json"), tr, 0o644))
	}
}

type commentedCard struct {
	*card
	comment string
}

func generatedCards(t *testing.T) map[string]commentedCard {
	k := loadKeys(t)
	mk := func(m tapdata.Method, comment string, mod func(c *card)) commentedCard {
		c := newCard(t, m)
		c.asMethod = tapdata.MethodAuto
		switch m {
		case tapdata.MethodSDA:
			c.aip = []byte{0x40, 0x00}
		case tapdata.MethodDDA, tapdata.MethodFDDA:
			c.aip = []byte{0x20, 0x00}
		}
		if mod != nil {
			mod(c)
		}
		return commentedCard{c, "Generated by go test ./oda -run TestVectors -update (keys in testdata/oda/keys). " + comment}
	}
	return map[string]commentedCard{
		"sda":      mk(tapdata.MethodSDA, "SDA, AIP 4000.", nil),
		"dda":      mk(tapdata.MethodDDA, "DDA with DDOL data CAFEBABE.", nil),
		"fdda-05":  mk(tapdata.MethodFDDA, "fDDA version 01, Signed Data Format 05.", nil),
		"fdda-95":  mk(tapdata.MethodFDDA, "fDDA version 01, Signed Data Format 95.", func(c *card) { c.sdadFormat = odatest.FormatVisaFDDA }),
		"fdda-atc": mk(tapdata.MethodFDDA, "fDDA whose ICC dynamic number is the ATC 002A.", func(c *card) { c.idn = []byte{0x00, 0x2A} }),
		"cda":      mk(tapdata.MethodCDA, "CDA, AIP 3900.", nil),
		"cda-65537": mk(tapdata.MethodCDA, "CDA, ICC key of 768 bits with exponent 65537, issuer key of 896 bits: no remainders.", func(c *card) {
			c.issuer, c.issT.Key, c.icc, c.iccT.Key = k.issuerSmall, &k.issuerSmall.PublicKey, k.icc65537, &k.icc65537.PublicKey
		}),
		"bad-issuer-expired":  mk(tapdata.MethodDDA, "Fault: issuer certificate expired 10/26.", func(c *card) { c.issT.Expiry = "1026" }),
		"bad-issuer-id":       mk(tapdata.MethodDDA, "Fault: issuer identifier 476174 for PAN 476173….", func(c *card) { c.issT.IssuerID = "476174" }),
		"bad-issuer-hash-alg": mk(tapdata.MethodDDA, "Fault: issuer certificate hash algorithm 02.", func(c *card) { c.issT.HashAlg = 2 }),
		"bad-icc-pan":         mk(tapdata.MethodCDA, "Fault: ICC certificate for another PAN.", func(c *card) { c.iccT.PAN = "4761739001010028" }),
		"bad-icc-expired":     mk(tapdata.MethodCDA, "Fault: ICC certificate expired 10/26.", func(c *card) { c.iccT.Expiry = "1026" }),
		"bad-ssad":            mk(tapdata.MethodSDA, "Fault: SSAD hash corrupted.", func(c *card) { c.ssadFaults.CorruptHash = true }),
		"bad-sda-tag-list":    mk(tapdata.MethodDDA, "Fault: 9F4A lists 9F37.", func(c *card) { c.sdaTagList = []byte{0x9F, 0x37} }),
		"bad-sdad":            mk(tapdata.MethodFDDA, "Fault: fDDA signature hash corrupted.", func(c *card) { c.sdadFaults.CorruptHash = true }),
		"bad-cda-cid": mk(tapdata.MethodCDA, "Fault: the response says ARQC (80), the signature TC (40).", func(c *card) {
			c.before = append(enc(t, "9F27", []byte{0x80}), enc(t, "9F36", []byte{0, 0x2A})...)
			c.tdhcOver = append(bytes.Clone(c.before), c.after...)
		}),
		"bad-cda-tdhc":        mk(tapdata.MethodCDA, "Fault: transaction data hash code over other CDOL1 data.", func(c *card) { c.tdhcOver = []byte{0} }),
		"bad-record-template": mk(tapdata.MethodDDA, "Fault: the flagged SFI 1 record is a template 77.", func(c *card) { c.records[0].Data = append([]byte{0x77}, c.records[0].Data[1:]...) }),
	}
}

// inputJSON writes in as a `faregate oda verify --input` file.
func inputJSON(t *testing.T, in *oda.Input, comment string) []byte {
	h := func(b []byte) string { return fmt.Sprintf("%X", b) }
	data := map[string]string{}
	for tag, v := range in.Data {
		data[tag] = h(v)
	}
	var records []map[string]any
	for _, r := range in.Records {
		records = append(records, map[string]any{"sfi": r.SFI, "record": r.Number, "response": h(r.Data)})
	}
	m := map[string]any{
		"comment": comment,
		"rid":     h(in.RID),
		"date":    in.Date.Format(time.DateOnly),
		"method":  string(in.Method),
		"data":    data,
		"records": records,
	}
	for name, v := range map[string][]byte{"ddol_data": in.DDOLData, "pdol_data": in.PDOLData, "cdol1_data": in.CDOL1Data, "gen_ac_response": in.GenACResponse} {
		if len(v) > 0 {
			m[name] = h(v)
		}
	}
	if in.StaticDataSet {
		m["static_data"] = h(in.StaticData)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	require.NoError(t, err)
	return append(b, '\n')
}

type apdu struct {
	Command  string `json:"command"`
	Response string `json:"response"`
}

// generatedTranscripts records a Visa-style fDDA tap and a Mastercard-style
// CDA tap with the generated card, as the kernel would.
func generatedTranscripts(t *testing.T) map[string][]byte {
	h := func(b []byte) string { return fmt.Sprintf("%X", b) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	ok := []byte{0x90, 0x00}
	sel := func(name []byte) []byte { return cat([]byte{0x00, 0xA4, 0x04, 0x00, byte(len(name))}, name, []byte{0}) }
	ppse := []byte("2PAY.SYS.DDF01")

	build := func(c *card, aid []byte, pdol []byte, pdolData []byte) (*oda.Input, []apdu) {
		in := c.input()
		var tr []apdu
		add := func(cmd, resp []byte) { tr = append(tr, apdu{h(cmd), h(resp)}) }
		add(sel(ppse), cat(enc(t, "6F", cat(enc(t, "84", ppse), enc(t, "A5", enc(t, "BF0C", enc(t, "61", cat(enc(t, "4F", aid), enc(t, "87", []byte{1}))))))), ok))
		fci := enc(t, "50", []byte("TEST"))
		if pdol != nil {
			fci = cat(fci, enc(t, "9F38", pdol))
		}
		add(sel(aid), cat(enc(t, "6F", cat(enc(t, "84", aid), enc(t, "A5", fci))), ok))
		// The certificates live in SFI 2 records 2 (issuer) and 3 (ICC),
		// which the AFL does not flag: each fits a short APDU response.
		objects := func(tags ...string) []byte {
			b := []byte{}
			for _, tag := range tags {
				if v, ok := in.Data[tag]; ok {
					b = cat(b, enc(t, tag, v))
				}
			}
			return b
		}
		issuer, icc := objects("8F", "90", "92", "9F32"), objects("9F46", "9F47", "9F48")
		if c.method == tapdata.MethodCDA {
			issuer = cat(issuer, enc(t, "8C", cdol1))
		}
		afl := []byte{0x08, 1, 1, 1, 0x10, 1, 3, 0, 0x58, 1, 1, 1}
		gpo := enc(t, "77", cat(enc(t, "82", c.aip), enc(t, "94", afl)))
		if c.method == tapdata.MethodFDDA {
			gpo = enc(t, "77", cat(enc(t, "82", c.aip), enc(t, "94", afl), enc(t, "9F36", []byte{0, 0x2A}),
				enc(t, "9F26", c.cryptogram[:]), enc(t, "9F69", in.Data["9F69"]), enc(t, "9F4B", in.Data["9F4B"])))
		}
		add(cat([]byte{0x80, 0xA8, 0x00, 0x00, byte(len(pdolData) + 2), 0x83, byte(len(pdolData))}, pdolData, []byte{0}), cat(gpo, ok))
		records := map[[2]int][]byte{{2, 2}: enc(t, "70", issuer), {2, 3}: enc(t, "70", icc)}
		for _, r := range c.records {
			records[[2]int{r.SFI, r.Number}] = r.Data
		}
		for _, key := range [][2]int{{1, 1}, {2, 1}, {2, 2}, {2, 3}, {11, 1}} {
			add([]byte{0x00, 0xB2, byte(key[1]), byte(key[0]<<3 | 4), 0}, cat(records[key], ok))
		}
		if c.method == tapdata.MethodCDA {
			add(cat([]byte{0x80, 0xAE, 0x90, 0x00, byte(len(in.CDOL1Data))}, in.CDOL1Data, []byte{0}), cat(in.GenACResponse, ok))
		}
		return in, tr
	}
	out := map[string][]byte{}
	marshal := func(tr []apdu) []byte {
		b, err := json.MarshalIndent(tr, "", " ")
		require.NoError(t, err)
		return append(b, '\n')
	}

	// fDDA: the terminal data come from the PDOL.
	c := newCard(t, tapdata.MethodFDDA)
	c.aip = []byte{0x20, 0x00}
	pdol := []byte{0x9F, 0x66, 0x04, 0x9F, 0x02, 0x06, 0x5F, 0x2A, 0x02, 0x9A, 0x03, 0x9F, 0x37, 0x04}
	pdolData := cat([]byte{0x36, 0x00, 0x40, 0x00}, c.amount, c.currency, []byte{0x26, 0x11, 0x23}, c.un)
	_, tr := build(c, []byte{0xA0, 0, 0, 0, 0x03, 0x10, 0x10}, pdol, pdolData)
	out["generated-fdda"] = marshal(tr)

	// CDA: the UN comes from the CDOL1 data of GENERATE AC.
	c = newCard(t, tapdata.MethodCDA)
	c.pdolData = nil
	c.cdol1Data = cat([]byte{0, 0, 0, 0, 0x02, 0x90}, []byte{0x09, 0x78}, []byte{0x26, 0x11, 0x23}, c.un)
	_, tr = build(c, []byte{0xA0, 0, 0, 0, 0x04, 0x10, 0x10}, nil, nil)
	out["generated-cda"] = marshal(tr)
	return out
}

var cdol1 = []byte{0x9F, 0x02, 0x06, 0x5F, 0x2A, 0x02, 0x9A, 0x03, 0x9F, 0x37, 0x04}

// The generated files are what the generator writes today.
func TestGeneratedUpToDate(t *testing.T) {
	if *update {
		t.Skip("rewriting")
	}
	for name, c := range generatedCards(t) {
		want, err := os.ReadFile(filepath.Join("../testdata/oda/generated", name+".json"))
		require.NoError(t, err)
		require.Equal(t, string(want), string(inputJSON(t, c.input(), c.comment)), name)
	}
	for name, tr := range generatedTranscripts(t) {
		want, err := os.ReadFile(filepath.Join("../testdata/oda/transcripts", name+".json"))
		require.NoError(t, err)
		require.Equal(t, string(want), string(tr), name)
	}
}
