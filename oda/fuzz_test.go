package oda_test

import (
	"crypto/rsa"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/oda"
	"github.com/faregate/faregate/oda/odatest"
)

// Short fuzz runs while developing:
//
//	go test ./oda -run XXX -fuzz FuzzCertificates -fuzztime 30s

// fuzzPKI is a small hierarchy so the fuzzer can sign what it makes up:
// CA 768 bits, issuer 640, ICC 512.
type fuzzPKI struct {
	ca, issuer, icc *rsa.PrivateKey
	keys            *oda.KeyStore
}

var (
	fuzzOnce sync.Once
	fuzz     fuzzPKI
)

func loadFuzzPKI(f *testing.F) fuzzPKI {
	fuzzOnce.Do(func() {
		r := rand.NewChaCha8([32]byte{'o', 'd', 'a'})
		var err error
		for _, k := range []struct {
			dst  **rsa.PrivateKey
			bits int
		}{{&fuzz.ca, 768}, {&fuzz.issuer, 640}, {&fuzz.icc, 512}} {
			if *k.dst, err = odatest.GenerateKey(r, k.bits, 3); err != nil {
				panic(err)
			}
		}
		fuzz.keys, err = oda.NewKeyStore(oda.CAKey{RID: [5]byte(testRID), Index: testIndex, Modulus: fuzz.ca.N.Bytes(), Exponent: []byte{3}, Test: true})
		if err != nil {
			panic(err)
		}
	})
	return fuzz
}

// fit makes b recovered data for key: the key's length, below its modulus
// (the top bit cleared; the moduli have it set).
func fit(b []byte, key *rsa.PrivateKey) []byte {
	out := make([]byte, key.Size())
	copy(out, b)
	out[0] &= 0x7F
	return out
}

// FuzzCertificates signs whatever recovered data the fuzzer makes for the
// issuer certificate, the ICC certificate and the signed dynamic data, so
// every check after the RSA step is reached. Seeds are a valid DDA and CDA
// card. Verify must never panic and must fail only with an *oda.Error.
func FuzzCertificates(f *testing.F) {
	p := loadFuzzPKI(f)
	pan := "4761739001010010"
	static := []byte{0x5F, 0x24, 0x03, 0x30, 0x12, 0x31, 0x20, 0x00}
	issCert, issRem, err := odatest.IssuerCertificate(p.ca, odatest.IssuerTemplate{IssuerID: "476173", Expiry: "1230", Key: &p.issuer.PublicKey})
	if err != nil {
		f.Fatal(err)
	}
	iccCert, iccRem, err := odatest.ICCCertificate(p.issuer, 0, odatest.ICCTemplate{PAN: pan, Expiry: "1230", Key: &p.icc.PublicKey}, static)
	if err != nil {
		f.Fatal(err)
	}
	un := []byte{1, 2, 3, 4}
	dda, err := odatest.SignDynamicData(p.icc, odatest.FormatSDAD, odatest.DynamicNumber([]byte{9, 9}), un)
	if err != nil {
		f.Fatal(err)
	}
	cdaData := odatest.CDAData{DynamicNumber: []byte{1, 2}, CID: 0x40, TransactionDataHash: odatest.TransactionDataHash(nil, un, []byte{0x9F, 0x27, 0x01, 0x40})}
	cda, err := odatest.SignCDA(p.icc, cdaData, un)
	if err != nil {
		f.Fatal(err)
	}
	rec := func(k *rsa.PrivateKey, sig []byte) []byte { return odatest.Recover(&k.PublicKey, sig) }
	f.Add(rec(p.ca, issCert), issRem, rec(p.issuer, iccCert), iccRem, rec(p.icc, dda), static, []byte{3}, []byte{3}, byte(0))
	f.Add(rec(p.ca, issCert), issRem, rec(p.issuer, iccCert), iccRem, rec(p.icc, cda), static, []byte{3}, []byte{3}, byte(1))
	f.Add(rec(p.ca, issCert), issRem, rec(p.issuer, iccCert), iccRem, rec(p.icc, dda), static, []byte{1, 0, 1}, []byte{}, byte(2))

	f.Fuzz(func(t *testing.T, issRec, issRem, iccRec, iccRem, sdadRec, static, issExp, iccExp []byte, which byte) {
		sign := func(k *rsa.PrivateKey, b []byte) []byte {
			sig, err := odatest.Sign(k, fit(b, k))
			if err != nil {
				t.Fatal(err)
			}
			return sig
		}
		data := map[string][]byte{
			"8F": {testIndex}, "90": sign(p.ca, issRec), "92": issRem, "9F32": issExp,
			"9F46": sign(p.issuer, iccRec), "9F48": iccRem, "9F47": iccExp,
			"5A": {0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x10}, "82": {0x39, 0x00}, "9F37": un,
			"9F02": {0, 0, 0, 0, 1, 0}, "5F2A": {0x09, 0x78}, "9F69": {1, 2, 3, 4, 5, 6, 7},
		}
		in := &oda.Input{RID: testRID, Date: txDate, Data: data, StaticData: static, StaticDataSet: true, DDOLData: un, CDOL1Data: un}
		sdad := sign(p.icc, sdadRec)
		switch which % 4 {
		case 0:
			in.Method, data["9F4B"] = tapdata.MethodDDA, sdad
		case 1:
			in.Method = tapdata.MethodCDA
			in.GenACResponse = append([]byte{0x77, 0x81, byte(4 + 3 + len(sdad)), 0x9F, 0x27, 0x01, 0x40, 0x9F, 0x4B, byte(len(sdad))}, sdad...)
		case 2:
			in.Method, data["9F4B"] = tapdata.MethodFDDA, sdad
		case 3:
			in.Method, data["93"] = tapdata.MethodSDA, sign(p.issuer, sdadRec)
		}
		res, err := oda.NewVerifier(p.keys, oda.Options{TestMode: true, CacheSize: -1}).Verify(in)
		if res == nil {
			t.Fatal("nil result")
		}
		var e *oda.Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("error %v is not an *oda.Error", err)
		}
	})
}

func addFiles(f *testing.F, pattern string) {
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds %s", pattern)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// verifyAny runs a parsed input against every shipped key list.
func verifyAny(t *testing.T, in *oda.Input, lists []*oda.KeyStore) {
	if in.Date.IsZero() {
		in.Date = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	}
	for _, ks := range lists {
		res, err := oda.NewVerifier(ks, oda.Options{TestMode: true}).Verify(in)
		var e *oda.Error
		if res == nil || (err != nil && !errors.As(err, &e)) {
			t.Fatalf("Verify: %v, %v", res, err)
		}
	}
}

func shippedLists(f *testing.F) []*oda.KeyStore {
	var lists []*oda.KeyStore
	for _, name := range []string{"live.json", "test.json", "generated.json"} {
		ks, err := oda.LoadKeyStore(filepath.Join("../testdata/capk", name))
		if err != nil {
			f.Fatal(err)
		}
		lists = append(lists, ks)
	}
	return lists
}

// FuzzParseInputJSON: an input file never panics the parser or Verify.
func FuzzParseInputJSON(f *testing.F) {
	addFiles(f, "../testdata/oda/published/*.json")
	addFiles(f, "../testdata/oda/generated/*.json")
	lists := shippedLists(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := oda.ParseInputJSON(b)
		if err != nil {
			if !errors.Is(err, oda.ErrInput) {
				t.Fatalf("error %v does not match ErrInput", err)
			}
			return
		}
		verifyAny(t, in, lists)
	})
}

// FuzzParseKeyStore: a CA key list never panics the loader.
func FuzzParseKeyStore(f *testing.F) {
	addFiles(f, "../testdata/capk/*.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := oda.ParseKeyStore(b)
		if err == nil {
			_ = ks.Keys()
		}
	})
}
