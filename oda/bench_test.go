package oda_test

import (
	"math/big"
	"testing"

	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/oda"
)

// benchMethods are the methods of one tap each benchmark runs, on the
// generated card: CA key 1408 bits, issuer 1152, ICC 1024, exponent 3.
var benchMethods = []tapdata.Method{tapdata.MethodSDA, tapdata.MethodDDA, tapdata.MethodFDDA, tapdata.MethodCDA}

// BenchmarkVerify measures one whole verification per method. "warm" is
// the steady state of a gate (the issuer key comes from the cache: one RSA
// operation fewer); "cold" has no cache.
func BenchmarkVerify(b *testing.B) {
	for _, m := range benchMethods {
		c := newCard(b, m)
		in := c.input()
		ks := c.store(true)
		for _, cache := range []struct {
			name string
			size int
		}{{"warm", 0}, {"cold", -1}} {
			b.Run(string(m)+"/"+cache.name, func(b *testing.B) {
				v := oda.NewVerifier(ks, oda.Options{TestMode: true, CacheSize: cache.size})
				if _, err := v.Verify(in); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(in); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRSAFloor does only the raw RSA public operations of the same
// verifications, with big.Int Exp: the floor BenchmarkVerify is measured
// against (goal: Verify ≤ 3× its floor).
func BenchmarkRSAFloor(b *testing.B) {
	k := loadKeys(b)
	type op struct{ sig, n *big.Int }
	mk := func(sig []byte, n *big.Int) op { return op{new(big.Int).SetBytes(sig), n} }
	e := big.NewInt(3)
	for _, m := range benchMethods {
		c := newCard(b, m)
		in := c.input()
		issuer := mk(in.Data["90"], k.ca.N)
		var ops []op
		switch m {
		case tapdata.MethodSDA:
			ops = []op{mk(in.Data["93"], k.issuer.N)}
		case tapdata.MethodCDA:
			ops = []op{mk(in.Data["9F46"], k.issuer.N), mk(cdaSDAD(b, in), k.icc.N)}
		default:
			ops = []op{mk(in.Data["9F46"], k.issuer.N), mk(in.Data["9F4B"], k.icc.N)}
		}
		for _, cache := range []string{"warm", "cold"} {
			all := ops
			if cache == "cold" {
				all = append([]op{issuer}, ops...)
			}
			b.Run(string(m)+"/"+cache, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					for _, o := range all {
						new(big.Int).Exp(o.sig, e, o.n)
					}
				}
			})
		}
	}
}

func cdaSDAD(b *testing.B, in *oda.Input) []byte {
	var sdad []byte
	// 77 81 xx | 9F27 01 xx | 9F36 02 xxxx | 9F4B 81 80 <128 bytes> | …
	for i := 0; i+3 < len(in.GenACResponse); i++ {
		if in.GenACResponse[i] == 0x9F && in.GenACResponse[i+1] == 0x4B && in.GenACResponse[i+2] == 0x81 {
			sdad = in.GenACResponse[i+4 : i+4+int(in.GenACResponse[i+3])]
			break
		}
	}
	if len(sdad) != 128 {
		b.Fatal("no SDAD in the GENERATE AC response")
	}
	return sdad
}
