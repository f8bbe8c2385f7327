package acquirer_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faregate/faregate/acquirer"
	"github.com/stretchr/testify/require"
)

// BenchmarkAuthorize measures charges per second through the client's pool
// to the simulator over loopback, the simulator writing its ledger to a
// file, and reports the p99 latency of one Do.
func BenchmarkAuthorize(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "ledger.jsonl"))
	require.NoError(b, err)
	defer f.Close()
	ln := listen(b)
	h, err := acquirer.NewHost(acquirer.Rules{}, f, acquirer.HostOptions{})
	require.NoError(b, err)
	go h.Serve(ln)
	defer h.Close()
	c := dial(b, ln.Addr().String(), acquirer.Options{Connections: 4})
	card := testCard(b)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	b.SetParallelism(16)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			r, err := c.Do(context.Background(), acquirer.Request{Kind: acquirer.KindCharge, Reference: "bench", Terminal: "G0000001", Amount: 290, Currency: gbp, Card: card})
			if err != nil || !r.Approved() {
				b.Errorf("charge: %v %s", err, r.Code)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "auth/s")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		// CPU time of client and simulator together per charge: on a
		// shared machine auth/s follows the neighbours' load, this does not.
		b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/auth")
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
