//go:build pcsc

package reader

import (
	"context"
	"slices"
	"testing"
	"time"
)

// Latency through the real stack. Run with at least 200 samples:
//
//	go test -tags pcsc -run '^$' -bench . -benchtime 300x ./reader/
//
// p50-ms and p99-ms are per APDU (BenchmarkAPDU) or per session
// (BenchmarkSession: connect to the card already in the field, SELECT
// PPSE and seven more APDUs, as many as a tap, then disconnect).

func BenchmarkAPDU(b *testing.B) {
	for _, quick := range []bool{true, false} {
		b.Run(quickName(quick), func(b *testing.B) {
			r := openReader(b, Options{})
			present(b, newTestCard(atrT1), &VPCDOptions{NoQuickAck: !quick})
			s := waitCard(b, r)
			cmd := selectPPSE()
			var lat latencies
			for b.Loop() {
				start := time.Now()
				if _, err := s.Transmit(b.Context(), cmd); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			lat.report(b)
		})
	}
}

func BenchmarkSession(b *testing.B) {
	for _, quick := range []bool{true, false} {
		b.Run(quickName(quick), func(b *testing.B) {
			r := openReader(b, Options{})
			present(b, newTestCard(atrT1), &VPCDOptions{NoQuickAck: !quick})
			echo := []byte{0x80, insEcho, 0, 0, 4, 1, 2, 3, 4, 0}
			waitCard(b, r).Close() // pcscd has seen the card: keep detection out
			var lat latencies
			for b.Loop() {
				ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
				start := time.Now()
				s, err := r.WaitCard(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Transmit(ctx, selectPPSE()); err != nil {
					b.Fatal(err)
				}
				for range 7 {
					if _, err := s.Transmit(ctx, echo); err != nil {
						b.Fatal(err)
					}
				}
				s.Close()
				lat = append(lat, time.Since(start))
				cancel()
			}
			lat.report(b)
		})
	}
}

func quickName(on bool) string {
	if on {
		return "quickack=on"
	}
	return "quickack=off"
}

type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	at := func(p int) float64 {
		i := min(len(l)*p/100, len(l)-1)
		return float64(l[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(50), "p50-ms")
	b.ReportMetric(at(99), "p99-ms")
	b.ReportMetric(float64(len(l)), "samples")
}
