package backend

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchStores: SQLite in a temp dir, PostgreSQL when FAREGATE_TEST_POSTGRES
// is set; FAREGATE_BENCH_STORE=sqlite or postgres keeps one of them.
func benchStores(b *testing.B) map[string]Store {
	out := map[string]Store{}
	only := os.Getenv("FAREGATE_BENCH_STORE")
	if only == "" || only == "sqlite" {
		s, err := OpenSQLite(context.Background(), b.TempDir())
		require.NoError(b, err)
		b.Cleanup(func() { s.Close() })
		out["sqlite"] = s
	}
	if os.Getenv("FAREGATE_TEST_POSTGRES") != "" && (only == "" || only == "postgres") {
		p, err := OpenPostgres(context.Background(), testPostgresDB(b))
		require.NoError(b, err)
		b.Cleanup(func() { p.Close() })
		out["postgres"] = p
	}
	return out
}

func sqlOf(s Store) *sqlStore {
	switch s := s.(type) {
	case *SQLiteStore:
		return &s.sqlStore
	case *PostgresStore:
		return &s.sqlStore
	}
	panic("unknown store")
}

// seedRiders stores riders × 1–(2·perRider−1) bus and rail taps of day
// (perRider on average) at 100 gates, in batches of 10 000.
func seedRiders(b testing.TB, s Store, rules *capping.Rules, day capping.Date, riders, perRider int) int {
	ctx := context.Background()
	start, _ := DayBounds(rules, day)
	rng := rand.New(rand.NewPCG(3, 4))
	seqs := make([]uint64, 100)
	var batch []*tap.Batch
	pending, total := 0, 0
	flush := func() {
		_, err := s.StoreBatches(ctx, batch, start.Add(23*time.Hour))
		require.NoError(b, err)
		batch, pending = nil, 0
	}
	byGate := map[int]*tap.Batch{}
	for i := range riders {
		tk := rider.NewToken([]byte("bench"), fmt.Sprintf("4761%012d", i), "00")
		n := 1 + rng.IntN(2*perRider-1)
		at := start.Add(time.Duration(rng.IntN(4*3600)) * time.Second)
		for range n {
			g := rng.IntN(100)
			seqs[g]++
			mode, zones := "rail", []string{"1", "2"}
			if rng.IntN(2) == 0 {
				mode, zones = "bus", nil
			}
			bt := byGate[g]
			if bt == nil {
				bt = &tap.Batch{Gate: "G-" + strconv.Itoa(g)}
				byGate[g] = bt
				batch = append(batch, bt)
			}
			bt.Taps = append(bt.Taps, tap.Record{ID: uuid.Must(uuid.NewV7()), Gate: bt.Gate, Seq: seqs[g], Time: at, Kind: tap.KindEMV, Token: tk,
				Decision: tap.Open, Reason: "ok", Location: tap.Location{Mode: mode, Zones: zones, Stop: "Stop"}})
			at = at.Add(time.Duration(30+rng.IntN(120)) * time.Minute)
			pending++
			total++
			if pending == 10000 {
				flush()
				clear(byGate)
			}
		}
	}
	if pending > 0 {
		flush()
	}
	return total
}

// resetRuns forgets every run and charge (on PostgreSQL with TRUNCATE: a
// DELETE would leave the next run's inserts dead index entries to step over).
func resetRuns(b testing.TB, s Store) {
	ss := sqlOf(s)
	qs := []string{"DELETE FROM charges", "DELETE FROM run_shards", "DELETE FROM runs"}
	if ss.d.dollar {
		qs = []string{"TRUNCATE charges, run_shards, runs"}
	}
	for _, q := range qs {
		_, err := ss.db.Exec(q)
		require.NoError(b, err)
	}
}

// BenchmarkSettle settles one service day of FAREGATE_BENCH_RIDERS riders
// (default 20 000) with 5 taps each on average, on each store, and on
// PostgreSQL also with 2 shards settled at once. The figure:
//
//	FAREGATE_BENCH_RIDERS=1000000 FAREGATE_TEST_POSTGRES=postgres://… go test ./backend -run '^$' -bench Settle -benchtime 1x -timeout 60m
func BenchmarkSettle(b *testing.B) {
	riders := benchEnv("FAREGATE_BENCH_RIDERS", 20000)
	rules := testRules(b)
	day := capping.DateOf(2026, 11, 23)
	for name, s := range benchStores(b) {
		began := time.Now()
		taps := seedRiders(b, s, rules, day, riders, 5)
		b.Logf("%s: stored %d taps of %d riders in %v", name, taps, riders, time.Since(began).Round(time.Millisecond))
		if name == "postgres" {
			// What autovacuum does after a day of inserts: statistics, and the
			// visibility map that lets settlement's index-only scans skip the heap.
			_, err := sqlOf(s).db.Exec("VACUUM ANALYZE taps")
			require.NoError(b, err)
		}
		shardings := []int{1}
		if name == "postgres" {
			shardings = []int{1, 2}
		}
		for _, n := range shardings {
			b.Run(fmt.Sprintf("%s/shards=%d", name, n), func(b *testing.B) {
				cpu0, pg0 := cpuSeconds(), serverCPUSeconds(s)
				for b.Loop() {
					b.StopTimer()
					resetRuns(b, s)
					b.StartTimer()
					var wg sync.WaitGroup
					var settled atomic.Int64
					for i := range n {
						wg.Go(func() {
							st := &Settler{Store: s, Rules: rules}
							sum, err := st.Settle(context.Background(), day, Shard{i, n})
							require.NoError(b, err)
							settled.Add(int64(sum.Riders))
						})
					}
					wg.Wait()
					require.EqualValues(b, riders, settled.Load())
				}
				b.ReportMetric(float64(riders)*float64(b.N)/b.Elapsed().Seconds(), "riders/s")
				b.ReportMetric(cpuSeconds()-cpu0, "cpu-s")
				if pg := serverCPUSeconds(s); pg > 0 {
					b.ReportMetric(pg-pg0, "pg-cpu-s")
				}
			})
		}
	}
}

// BenchmarkIngest: FAREGATE_BENCH_GATES (default 50) gates post signed
// batches of FAREGATE_BENCH_BATCH taps (default 100) at once over
// loopback HTTP, each batch durably stored before its answer; reports
// taps/s and the p99 request latency, per store.
//
//	FAREGATE_TEST_POSTGRES=postgres://… go test ./backend -run '^$' -bench Ingest -benchtime 2000x
func BenchmarkIngest(b *testing.B) {
	gates := benchEnv("FAREGATE_BENCH_GATES", 50)
	size := benchEnv("FAREGATE_BENCH_BATCH", 100)
	for name, s := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			writers := 1
			if name == "postgres" {
				writers = 4
			}
			bo := newBackoffice(b, s, IngestOptions{Now: time.Now, Writers: writers, MaxInflight: 2 * gates})
			gs := make([]*testGate, gates)
			for i := range gs {
				pub, key, _ := ed25519.GenerateKey(nil)
				id := fmt.Sprintf("%s-bench-%d-%d", name, b.N, i)
				require.NoError(b, s.AddGate(context.Background(), id, pub, time.Now()))
				gs[i] = &testGate{id: id, key: key}
			}
			// Bodies made before the clock starts: the gate's cost is not ours.
			perGate := (b.N + gates - 1) / gates
			bodies := make([][][]byte, gates)
			for i, g := range gs {
				for range perGate {
					recs := make([]tap.Record, size)
					for k := range recs {
						recs[k] = g.tap(b, testCard(rand.IntN(1_000_000)), time.Now(), "bus")
					}
					body, err := json.Marshal(tap.Batch{Gate: g.id, Taps: recs, Backlog: int64(size)})
					require.NoError(b, err)
					bodies[i] = append(bodies[i], body)
				}
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: gates}}
			lat := make([][]time.Duration, gates)
			var retries atomic.Int64
			b.ResetTimer()
			cpu0 := cpuSeconds()
			var wg sync.WaitGroup
			for i, g := range gs {
				wg.Go(func() {
					for _, body := range bodies[i] {
						for {
							t := time.Now()
							resp, _ := g.postBody(b, client, bo.srv.URL, time.Now(), body)
							if resp.StatusCode == http.StatusOK {
								lat[i] = append(lat[i], time.Since(t))
								break
							}
							retries.Add(1)
							time.Sleep(50 * time.Millisecond)
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			taps := len(all) * size
			b.ReportMetric(float64(taps)/b.Elapsed().Seconds(), "taps/s")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(retries.Load()), "retries")
			b.ReportMetric(cpuSeconds()-cpu0, "cpu-s")
			n, err := s.CountTaps(context.Background())
			require.NoError(b, err)
			require.GreaterOrEqual(b, n, int64(taps))
		})
	}
}

// cpuSeconds is the CPU time this process has used (user + system): on a
// shared machine it says more than the wall clock.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// serverCPUSeconds is the CPU time the PostgreSQL server processes of the
// store's database have used (user + system, from /proc: a server on this
// machine), counting its connections that are open now (the pool keeps
// them); 0 for SQLite or when it cannot tell.
func serverCPUSeconds(s Store) float64 {
	p, ok := s.(*PostgresStore)
	if !ok {
		return 0
	}
	var db string
	if err := p.db.QueryRow("SELECT current_database()").Scan(&db); err != nil {
		return 0
	}
	ents, _ := os.ReadDir("/proc")
	var ticks float64
	for _, e := range ents {
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.HasPrefix(string(cmd), "postgres: ") || !strings.Contains(string(cmd), " "+db+" ") {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat)[i+1:])
		if i < 0 || len(f) < 13 {
			continue
		}
		for _, v := range f[11:13] { // utime, stime
			n, _ := strconv.ParseFloat(v, 64)
			ticks += n
		}
	}
	return ticks / 100 // USER_HZ
}
