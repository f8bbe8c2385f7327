package validator_test

import (
	"context"
	"crypto/ed25519"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/tap"
	"github.com/faregate/faregate/validator"
)

// percentiles reports p50 and p99 of the samples as custom metrics.
func percentiles(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	at := func(p float64) float64 {
		return float64(samples[min(len(samples)-1, int(p*float64(len(samples))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkGateCommit is the cost of a tap at the gate with the journal,
// beside the floor it cannot beat, all in one run on the same disk
// (FAREGATE_BENCH_DIR, default the system's temporary directory, which
// must be a real disk for the numbers to mean anything):
//
//	fsync-300B       a bare 300-byte write + fsync of an open file
//	commit           Journal.Append of a sealed tap record (synchronous=FULL)
//	commit-nosync    the same without fsync (synchronous=NORMAL), for the difference
//	decide+commit    Station.Tap: kernel, ODA, rules, pass-back, sealing and the commit
//	                 (a Visa fDDA card replayed, so the software card's own RSA is not counted)
func BenchmarkGateCommit(b *testing.B) {
	dir := os.Getenv("FAREGATE_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	b.Run("fsync-300B", func(b *testing.B) {
		f, err := os.CreateTemp(dir, "fsync-*")
		require.NoError(b, err)
		defer os.Remove(f.Name())
		defer f.Close()
		buf := make([]byte, 300)
		samples := make([]time.Duration, 0, b.N)
		for b.Loop() {
			start := time.Now()
			if _, err := f.Write(buf); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(start))
		}
		percentiles(b, samples)
	})
	for _, mode := range []struct {
		name   string
		nosync bool
	}{{"commit", false}, {"commit-nosync", true}} {
		b.Run(mode.name, func(b *testing.B) {
			d, err := os.MkdirTemp(dir, "journal-*")
			require.NoError(b, err)
			defer os.RemoveAll(d)
			j := openJournal(b, filepath.Join(d, "journal.db"), validator.JournalOptions{NoSync: mode.nosync})
			recs := make([]*tap.Record, 256)
			for i := range recs {
				recs[i] = fakeRecord(b, "G-1", i, txDate)
			}
			samples := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				r := *recs[i%len(recs)]
				if i >= len(recs) {
					r.ID[15] ^= byte(i >> 8) // ids are unique
					r.ID[14] ^= byte(i >> 16)
					r.ID[13] ^= byte(i)
				}
				i++
				start := time.Now()
				if err := j.Append(context.Background(), &r); err != nil {
					b.Fatal(err)
				}
				samples = append(samples, time.Since(start))
			}
			percentiles(b, samples)
		})
	}
	b.Run("decide+commit", func(b *testing.B) {
		d, err := os.MkdirTemp(dir, "station-*")
		require.NoError(b, err)
		defer os.RemoveAll(d)
		tr, _ := record(b, "visa-qvsdc")
		g, err := validator.NewGate(benchKernel(b, benchVerifier(b, 0), false), validator.Rules{TokenKey: testTokenKey})
		require.NoError(b, err)
		j := openJournal(b, filepath.Join(d, "journal.db"), validator.JournalOptions{})
		st, err := validator.NewStation(context.Background(), validator.StationOptions{
			GateID: "G-1", Location: tap.Location{Role: tap.RoleEntry, Group: "A"}, Passback: time.Minute,
			Gate: g, Journal: j, Vault: testVault.PublicKey(),
		})
		require.NoError(b, err)
		r := &replay{tr: tr}
		samples := make([]time.Duration, 0, b.N)
		for b.Loop() {
			r.i = 0
			start := time.Now()
			out := st.Tap(context.Background(), r)
			samples = append(samples, time.Since(start))
			if out.Record == nil || out.Err != nil {
				b.Fatalf("%+v", out)
			}
		}
		percentiles(b, samples)
	})
}

// BenchmarkUploadDrain is the rate a backlog drains at against an
// in-process back office that answers at once (the contract's own
// verification and decoding on its side): per op, one batch of 1 000 taps
// from the journal (with fsync on the marking), signed, sent, acknowledged
// and marked.
func BenchmarkUploadDrain(b *testing.B) {
	key := gateKey(b)
	rc := newReceiver("G-1", key.Public().(ed25519.PublicKey))
	srv := httptest.NewServer(rc)
	defer srv.Close()
	j := openJournal(b, filepath.Join(b.TempDir(), "journal.db"), validator.JournalOptions{})
	u := newUploader(b, srv.URL, j, key, nil, 0)
	ctx := context.Background()
	var spent time.Duration
	taps := 0
	for b.Loop() {
		b.StopTimer()
		appendN(b, j, tap.MaxBatchTaps, txDate, time.Second)
		b.StartTimer()
		t0 := time.Now()
		n, err := u.UploadOnce(ctx)
		spent += time.Since(t0)
		if err != nil || n != tap.MaxBatchTaps {
			b.Fatalf("uploaded %d: %v", n, err)
		}
		taps += n
	}
	b.ReportMetric(float64(taps)/spent.Seconds(), "taps/s")
}
