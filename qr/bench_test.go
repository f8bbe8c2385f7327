package qr_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/faregate/faregate/qr"
)

// cpuTime is the CPU time this process has used (cputime_test.go).
var cpuTime = qr.CPUTime

func reportRate(b *testing.B, cpu0 time.Duration, unit string) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit+"/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), unit+"/cpu-s")
	}
}

// benchCodes makes n codes from devices riders each (one credential per
// rider, as at a real gate), counters increasing per device.
func benchCodes(b *testing.B, riders, n int) [][]byte {
	issuer := testKey("issuer 1")
	devs := make([]*qr.Device, riders)
	for i := range devs {
		devs[i] = newDevice(b, issuer, fmt.Sprintf("rider %d", i))
	}
	codes := make([][]byte, n)
	for i := range codes {
		codes[i] = code(b, devs[i%riders], t0, uint32(1+i/riders), nil)
	}
	return codes
}

// BenchmarkGateVerify is the gate's cost per code on one core: parse, the
// issuer signature (cached: each rider's credential is verified once), the
// device signature, validity, window, deny list and replay memory. Every
// code is accepted. Run with -cpu 1.
func BenchmarkGateVerify(b *testing.B) {
	for _, riders := range []int{256, 2048} {
		b.Run(fmt.Sprintf("riders=%d", riders), func(b *testing.B) {
			const pool = 8192
			codes := benchCodes(b, riders, pool)
			newG := func() *qr.Gate {
				g, err := qr.NewGate(qr.GateOptions{
					Issuers: issuers(b, testKey("issuer 1")), DenyList: denySet{},
					Now: func() time.Time { return t0 },
				})
				if err != nil {
					b.Fatal(err)
				}
				return g
			}
			g := newG()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if i%pool == 0 && i > 0 {
					b.StopTimer()
					g = newG() // the pool is used up: a fresh gate accepts it again
					b.StartTimer()
				}
				if _, err := g.Verify(codes[i%pool]); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, cpu0, "codes")
		})
	}
}

// BenchmarkGateVerifyFirstSight is a code whose credential the gate has not
// seen: two signature checks.
func BenchmarkGateVerifyFirstSight(b *testing.B) {
	codes := benchCodes(b, 256, 256)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		g, err := qr.NewGate(qr.GateOptions{Issuers: issuers(b, testKey("issuer 1")), Now: func() time.Time { return t0 }})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := g.Verify(codes[i%len(codes)]); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, cpu0, "codes")
}

// BenchmarkParse is the text decoder alone (Base45 and the strict binary
// parse): the gate's cost per code besides the signature check and a map
// look-up.
func BenchmarkParse(b *testing.B) {
	text := qr.Text(benchCodes(b, 1, 1)[0])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := qr.Parse(text); err != nil {
			b.Fatal(err)
		}
	}
}
