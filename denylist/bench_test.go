package denylist

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

// The deny-list benchmarks, at 1 M and 10 M entries in one run:
//
//	go test ./denylist -run '^$' -bench . -benchtime 2s
//
// memory     B/entry of the Set and of map[[16]byte]struct{} with the same tokens
// lookup     ns per Contains (half hits, half misses), Set and map
// lookup-p50 median and 99th percentile of single timed lookups, Set and map
//            (latency of one cold lookup: about one DRAM access at 10 M)
// apply      a verified 100 k-change delta (50 k adds, 50 k removes) applied
// load       gate start: open a replica directory holding the snapshot
//
// Keep -bench to one size while developing: the 10 M fixture needs ~1.5 GB
// and ~20 s to build.

type benchFixture struct {
	n       int
	tokens  []Token // listed
	probes  []Token // half listed, half not, shuffled
	list    *List
	pub     ed25519.PublicKey
	delta   []byte // 100 k changes on list
	snapDir string
}

var benchFixtures = map[int]*benchFixture{}

func fixture(b *testing.B, n int) *benchFixture {
	if f, ok := benchFixtures[n]; ok {
		return f
	}
	b.Helper()
	pub, key := testKey(1)
	all := randTokens(uint64(n), n+n/2)
	f := &benchFixture{n: n, tokens: all[:n], pub: pub}
	f.probes = make([]Token, 0, 1<<20)
	for i := range 1 << 19 {
		f.probes = append(f.probes, all[(i*7919)%n], all[n+i%(n/2)])
	}
	rngShuffle(f.probes)
	list, err := Sign(key, "bench", 1, testCreated, NewSetOfTokens(f.tokens))
	if err != nil {
		b.Fatal(err)
	}
	f.list = list
	// Version 2: remove 50 k listed tokens, add 50 k new ones.
	const half = 50_000
	next := slices.Concat(f.tokens[half:], all[n:n+half])
	v2, err := Sign(key, "bench", 2, testCreated.Add(time.Minute), NewSetOfTokens(next))
	if err != nil {
		b.Fatal(err)
	}
	d, err := Diff(list, v2)
	if err != nil {
		b.Fatal(err)
	}
	if len(d.Add)+len(d.Remove) != 2*half {
		b.Fatalf("delta has %d changes", len(d.Add)+len(d.Remove))
	}
	if f.delta, err = d.Sign(key); err != nil {
		b.Fatal(err)
	}
	f.snapDir, err = os.MkdirTemp("", "denylist-bench-")
	if err != nil {
		b.Fatal(err)
	}
	err = writeFileAtomic(context.Background(), filepath.Join(f.snapDir, SnapshotFile), 0o644, func(w io.Writer) error {
		_, err := list.WriteTo(w)
		return err
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	benchFixtures[n] = f
	return f
}

func rngShuffle(ts []Token) {
	x := uint64(88172645463325252)
	for i := len(ts) - 1; i > 0; i-- {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		j := int(x % uint64(i+1))
		ts[i], ts[j] = ts[j], ts[i]
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range benchFixtures {
		os.RemoveAll(f.snapDir)
	}
	os.Exit(code)
}

// heapAfterGC returns the live heap.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

var sink bool

func BenchmarkDenylist(b *testing.B) {
	for _, n := range []int{1_000_000, 10_000_000} {
		name := fmt.Sprintf("%dM", n/1_000_000)
		b.Run(name+"/memory", func(b *testing.B) {
			f := fixture(b, n)
			var setB, mapB float64
			for b.Loop() {
				h0 := heapAfterGC()
				s := NewSetOfTokens(f.tokens)
				h1 := heapAfterGC()
				setB = float64(h1-h0) / float64(n)
				runtime.KeepAlive(s)
				s = nil
				h0 = heapAfterGC()
				m := make(map[[16]byte]struct{}, n)
				for _, t := range f.tokens {
					m[t] = struct{}{}
				}
				h1 = heapAfterGC()
				mapB = float64(h1-h0) / float64(n)
				runtime.KeepAlive(m)
			}
			b.ReportMetric(setB, "set-B/entry")
			b.ReportMetric(mapB, "map-B/entry")
			b.ReportMetric(mapB/setB, "map/set")
			b.ReportMetric(0, "ns/op")
		})
		b.Run(name+"/lookup/set", func(b *testing.B) {
			f := fixture(b, n)
			s := f.list.Set()
			b.ReportMetric(float64(s.SizeBytes())/float64(n), "B/entry")
			i := 0
			for b.Loop() {
				sink = s.Contains(f.probes[i&(1<<20-1)])
				i++
			}
		})
		b.Run(name+"/lookup/map", func(b *testing.B) {
			f := fixture(b, n)
			m := make(map[[16]byte]struct{}, n)
			for _, t := range f.tokens {
				m[t] = struct{}{}
			}
			i := 0
			b.ResetTimer()
			for b.Loop() {
				_, sink = m[f.probes[i&(1<<20-1)]]
				i++
			}
		})
		b.Run(name+"/lookup-p50/set", func(b *testing.B) {
			f := fixture(b, n)
			s := f.list.Set()
			latencies(b, func(t Token) bool { return s.Contains(t) }, f.probes)
		})
		b.Run(name+"/lookup-p50/map", func(b *testing.B) {
			f := fixture(b, n)
			m := make(map[[16]byte]struct{}, n)
			for _, t := range f.tokens {
				m[t] = struct{}{}
			}
			latencies(b, func(t Token) bool { _, ok := m[t]; return ok }, f.probes)
		})
		b.Run(name+"/apply/100k", func(b *testing.B) {
			f := fixture(b, n)
			d, err := ReadDelta(bytes.NewReader(f.delta), f.pub)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := f.list.Apply(d); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/apply/100k+read-delta", func(b *testing.B) {
			f := fixture(b, n)
			for b.Loop() {
				d, err := ReadDelta(bytes.NewReader(f.delta), f.pub)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.list.Apply(d); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/apply/verify-result", func(b *testing.B) {
			// What compaction adds: rebuild the snapshot of the result and
			// check the back office's signature over it.
			f := fixture(b, n)
			d, err := ReadDelta(bytes.NewReader(f.delta), f.pub)
			if err != nil {
				b.Fatal(err)
			}
			next, err := f.list.Apply(d)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := next.Verify(f.pub); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/load", func(b *testing.B) {
			f := fixture(b, n)
			for b.Loop() {
				r, err := OpenReplica(context.Background(), f.snapDir, ReplicaConfig{ListID: "bench", PublicKey: f.pub})
				if err != nil {
					b.Fatal(err)
				}
				if r.List().Len() != n {
					b.Fatal("wrong length")
				}
			}
		})
	}
}

// latencies times single lookups (each one alone between two clock reads,
// so without the overlap a tight loop gets) and reports the median and
// 99th percentile, less the median cost of an empty timed interval.
func latencies(b *testing.B, contains func(Token) bool, probes []Token) {
	const samples = 1 << 16
	lat := make([]time.Duration, samples)
	empty := make([]time.Duration, samples)
	i := 0
	for b.Loop() {
		for k := range samples {
			t0 := time.Now()
			empty[k] = time.Since(t0)
		}
		for k := range samples {
			tok := probes[i&(len(probes)-1)]
			i++
			t0 := time.Now()
			sink = contains(tok)
			lat[k] = time.Since(t0)
		}
	}
	slices.Sort(lat)
	slices.Sort(empty)
	overhead := empty[samples/2]
	b.ReportMetric(float64(lat[samples/2]-overhead), "p50-ns")
	b.ReportMetric(float64(lat[samples*99/100]-overhead), "p99-ns")
	b.ReportMetric(0, "ns/op")
}
