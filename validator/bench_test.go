package validator_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/emv/cardsim"
	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/oda"
	"github.com/faregate/faregate/validator"
)

// benchCards are one card per scheme and ODA method.
var benchCards = []string{"visa-qvsdc", "mastercard-cda", "amex-cda", "discover-dda", "jcb-dda", "maestro-sda", "unionpay-qpboc"}

// replay answers with the recorded responses of one tap, in order. The
// kernel's unpredictable number is fixed, so its commands are the recorded
// ones and the card's signatures verify every time: the benchmark measures
// the gate, not the software card's private-key signing.
type replay struct {
	tr emv.Transcript
	i  int
}

func (r *replay) Transmit(_ context.Context, _ []byte) ([]byte, error) {
	resp := r.tr[r.i%len(r.tr)].Response
	r.i++
	return resp, nil
}

type constant byte

func (c constant) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

func benchVerifier(b testing.TB, cacheSize int) *oda.Verifier {
	v, err := cardsim.TestVerifier(oda.Options{CacheSize: cacheSize})
	require.NoError(b, err)
	return v
}

func benchKernel(b testing.TB, v *oda.Verifier, record bool) *emv.Kernel {
	k, err := emv.NewKernel(emv.Config{
		Authenticator: v,
		Now:           func() time.Time { return txDate },
		Rand:          constant(0x42),
		Record:        record,
	})
	require.NoError(b, err)
	return k
}

// record taps the software card once and returns the transcript and tap.
func record(b testing.TB, name string) (emv.Transcript, *emv.Tap) {
	card, err := cardsim.LoadFS(faregate.TestData, "testdata/cards/"+name+".json", cardsim.Options{})
	require.NoError(b, err)
	tap, err := benchKernel(b, benchVerifier(b, -1), true).Tap(context.Background(), card)
	require.NoError(b, err)
	require.True(b, tap.ODA.OK, "%v", tap.ODA.Err)
	return tap.Transcript, tap
}

var cacheModes = []struct {
	name string
	size int
}{{"warm", 0}, {"cold", -1}}

// BenchmarkTap is a whole tap on the gate: kernel, ODA and decision, per
// scheme; "warm" with the issuer key cache of repeat issuers, "cold"
// without it.
func BenchmarkTap(b *testing.B) {
	for _, name := range benchCards {
		tr, _ := record(b, name)
		for _, mode := range cacheModes {
			b.Run(name+"/"+mode.name, func(b *testing.B) {
				k := benchKernel(b, benchVerifier(b, mode.size), false)
				r := &replay{tr: tr}
				rules := validator.Rules{}
				tap := new(emv.Tap) // a gate reuses one Tap per reader
				b.ReportAllocs()
				for b.Loop() {
					r.i = 0
					err := k.TapInto(context.Background(), r, tap)
					if d := rules.Decide(tap, err); d.Verdict != validator.Open {
						b.Fatalf("decision %v: %v %v", d, err, tap.ODA.Err)
					}
				}
			})
		}
	}
}

// BenchmarkTapWithCard includes the software card's own work (RSA private
// key signing of every dynamic signature): what a demo tap costs in
// process, not what a gate spends.
func BenchmarkTapWithCard(b *testing.B) {
	for _, name := range benchCards {
		b.Run(name, func(b *testing.B) {
			card, err := cardsim.LoadFS(faregate.TestData, "testdata/cards/"+name+".json", cardsim.Options{})
			require.NoError(b, err)
			k := benchKernel(b, benchVerifier(b, 0), false)
			for b.Loop() {
				if _, err := k.Tap(context.Background(), card); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// rsaOp is one raw public-key operation of a tap: sig^e mod n.
type rsaOp struct {
	sig, n *big.Int
	e      int
}

// floorOps lists the public-key operations ODA of a tap performs: the
// issuer certificate (cold only), the ICC certificate, and the dynamic
// signature (or, SDA, the signed static data).
func floorOps(b testing.TB, tap *emv.Tap, cold bool) []rsaOp {
	keys, err := cardsim.TestKeys()
	require.NoError(b, err)
	ca, ok := keys.Lookup(tap.AID[:5], tap.Data["8F"][0])
	require.True(b, ok)
	exp := func(e []byte) int { return int(new(big.Int).SetBytes(e).Int64()) }
	num := func(b []byte) *big.Int { return new(big.Int).SetBytes(b) }
	var ops []rsaOp
	if cold {
		ops = append(ops, rsaOp{num(tap.Data["90"]), num(ca.Modulus), exp(ca.Exponent)})
	}
	issuerN := num(tap.ODA.Recovered.IssuerPKModulus)
	if tap.ODA.Method == tapdata.MethodSDA {
		return append(ops, rsaOp{num(tap.Data["93"]), issuerN, exp(tap.Data["9F32"])})
	}
	ops = append(ops, rsaOp{num(tap.Data["9F46"]), issuerN, exp(tap.Data["9F32"])})
	return append(ops, rsaOp{num(tap.Data["9F4B"]), num(tap.ODA.Recovered.ICCPKModulus), exp(tap.Data["9F47"])})
}

// BenchmarkRSAFloor runs only the raw RSA public operations of the same
// taps as BenchmarkTap, with the arithmetic oda uses (square and multiply
// by Mul and QuoRem: fewer steps than big.Int.Exp for e = 3 and 65537).
func BenchmarkRSAFloor(b *testing.B) {
	for _, name := range benchCards {
		_, tap := record(b, name)
		for _, mode := range cacheModes {
			ops := floorOps(b, tap, mode.name == "cold")
			b.Run(name+"/"+mode.name, func(b *testing.B) {
				var t, q, y big.Int
				for b.Loop() {
					for _, op := range ops {
						steps := 1
						if op.e == 65537 {
							steps = 16
						}
						y.Set(op.sig)
						for range steps {
							t.Mul(&y, &y)
							q.QuoRem(&t, op.n, &y)
						}
						t.Mul(&y, op.sig)
						q.QuoRem(&t, op.n, &y)
					}
				}
			})
		}
	}
}
