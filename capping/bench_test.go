package capping

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// Benchmarks. The headline numbers come from
//
//	go test ./capping -run '^$' -bench CapVsSQL -benchtime 1x
//
// which rates 1 M riders × 10 taps with the engine on one goroutine and
// computes the same daily + weekly caps with a window-function query in
// PostgreSQL over the same taps (skipped when PostgreSQL is unreachable).
// FAREGATE_BENCH_RIDERS overrides the rider count (e.g. 100000 while
// developing); FAREGATE_BENCH_PG overrides the connection string.

// benchRules: a daily cap and a Monday-to-Sunday weekly cap on a 04:30
// service day in London (the window crosses the 2025-03-30 DST change).
const benchRules = `{"currency":"GBP","time_zone":"Europe/London","service_day_start":"04:30","week_start":"monday",
  "caps":[{"id":"day","amount":"8.90","period":{"kind":"service_day"}},
          {"id":"week","amount":"44.70","period":{"kind":"calendar_week"}}]}`

const (
	benchTapsPerRider = 10
	benchSpanSeconds  = 14 * 24 * 3600
)

var (
	benchStart = time.Date(2025, 3, 20, 0, 0, 0, 0, time.UTC)
	benchFares = []Amount{175, 290, 380}
)

func benchToken(i int) string { return fmt.Sprintf("tok-%08d", i) }

// genRider appends rider i's taps (deterministic, in random time order) to
// dst. The engine and the SQL load use the same generator. It allocates
// nothing, so that the timed rating does not pay for the generator's garbage.
func genRider(i int, token string, dst []Tap) []Tap {
	var pcg rand.PCG
	pcg.Seed(uint64(i), 0x6661726567617465)
	for k := 0; k < benchTapsPerRider; k++ {
		dst = append(dst, Tap{
			Token:   token,
			Time:    benchStart.Add(time.Duration(pcg.Uint64()%benchSpanSeconds) * time.Second),
			Fare:    benchFares[pcg.Uint64()%uint64(len(benchFares))],
			HasFare: true,
			Mode:    "tube",
		})
	}
	return dst
}

// benchTokens builds the riders' tokens once, before anything is timed.
func benchTokens(n int) []string {
	toks := make([]string, n)
	for i := range toks {
		toks[i] = benchToken(i)
	}
	return toks
}

func benchRiders(b *testing.B) int {
	if s := os.Getenv("FAREGATE_BENCH_RIDERS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err)
		return n
	}
	return 1_000_000
}

// BenchmarkEngine rates one rider (10 taps) per op from a pool of riders.
func BenchmarkEngine(b *testing.B) {
	r := mustRules(b, benchRules)
	benchEngine(b, r)
}

// BenchmarkEngineTfL rates with the full TfL example rules (6 caps, zones,
// Hopper transfers).
func BenchmarkEngineTfL(b *testing.B) {
	data, err := os.ReadFile(examplesDir + "/tfl/rules.json")
	require.NoError(b, err)
	r, err := ParseRules(data)
	require.NoError(b, err)
	benchEngine(b, r)
}

func benchEngine(b *testing.B, r *Rules) {
	const pool = 4096
	taps := make([]Tap, 0, pool*benchTapsPerRider)
	for i := 0; i < pool; i++ {
		taps = genRider(i, benchToken(i), taps)
	}
	for i := range taps {
		if i%3 == 0 {
			taps[i].Mode, taps[i].Zones = "bus", nil
		} else {
			taps[i].Zones = []string{"1"}
		}
		require.NoError(b, r.Resolve(&taps[i]))
	}
	e := NewEngine(r)
	var rd Rider
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % pool
		if err := e.Rate(&rd, taps[j*benchTapsPerRider:(j+1)*benchTapsPerRider]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchTapsPerRider)/b.Elapsed().Seconds(), "taps/s/core")
}

// rateAll rates riders [0, n) with the engine on this goroutine and returns
// the grand total, the per-rider totals of the sample and the time spent
// rating (generation excluded).
func rateAll(b *testing.B, r *Rules, tokens []string, sample map[string]Amount) (Amount, time.Duration) {
	n := len(tokens)
	// Riders are generated in batches, as a settlement job decodes them from
	// storage, and rated while the batch is in cache.
	const chunk = 1024
	e := NewEngine(r)
	var rd Rider
	var total Amount
	var spent time.Duration
	buf := make([]Tap, 0, chunk*benchTapsPerRider)
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		buf = buf[:0]
		for i := lo; i < hi; i++ {
			buf = genRider(i, tokens[i], buf)
		}
		for i := range buf {
			if err := r.Resolve(&buf[i]); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		for k := 0; k < hi-lo; k++ {
			if err := e.Rate(&rd, buf[k*benchTapsPerRider:(k+1)*benchTapsPerRider]); err != nil {
				b.Fatal(err)
			}
			total += rd.Total
			if _, ok := sample[rd.Token]; ok {
				sample[rd.Token] = rd.Total
			}
		}
		spent += time.Since(start)
	}
	return total, spent
}

// capSQL computes the benchmark's caps in SQL: the service day from the
// London wall clock minus 04:30, then per leg the daily cap on running fare
// sums and the weekly cap on running sums of the day-capped charges (with
// nested day-in-week windows this equals the engine leg by leg).
const capSQL = `
WITH legs AS (
  SELECT token, time, fare,
         ((time AT TIME ZONE 'Europe/London') - interval '4 hours 30 minutes')::date AS sday
  FROM %[1]s.taps
), day_capped AS (
  SELECT token, time, date_trunc('week', sday) AS week,
         LEAST(SUM(fare) OVER w, 890) - LEAST(SUM(fare) OVER w - fare, 890) AS charge
  FROM legs
  WINDOW w AS (PARTITION BY token, sday ORDER BY time ROWS UNBOUNDED PRECEDING)
), week_capped AS (
  SELECT token,
         LEAST(SUM(charge) OVER w, 4470) - LEAST(SUM(charge) OVER w - charge, 4470) AS charged
  FROM day_capped
  WINDOW w AS (PARTITION BY token, week ORDER BY time ROWS UNBOUNDED PRECEDING)
)
SELECT token, SUM(charged)::bigint AS total FROM week_capped GROUP BY token`

// BenchmarkCapVsSQL: the engine against PostgreSQL on the same taps.
func BenchmarkCapVsSQL(b *testing.B) {
	dsn := os.Getenv("FAREGATE_BENCH_PG")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	conn, err := pgx.Connect(cctx, dsn)
	cancel()
	if err != nil {
		b.Skipf("PostgreSQL not reachable at %s (%v): skipping the SQL comparison", dsn, err)
	}
	defer conn.Close(ctx)
	r := mustRules(b, benchRules)
	n := benchRiders(b)
	schema := fmt.Sprintf("faregate_capbench_%d", os.Getpid())
	exec := func(sql string) {
		b.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE")
	exec("CREATE SCHEMA " + schema)
	defer func() { _, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") }()
	exec("CREATE TABLE " + schema + ".taps (token text NOT NULL, time timestamptz NOT NULL, fare bigint NOT NULL)")

	loadStart := time.Now()
	var buf []Tap
	next, k := 0, 0
	rows, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "taps"}, []string{"token", "time", "fare"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if k == len(buf) {
				if next == n {
					return nil, nil
				}
				buf = genRider(next, benchToken(next), buf[:0])
				next, k = next+1, 0
			}
			t := buf[k]
			k++
			return []any{t.Token, t.Time, int64(t.Fare)}, nil
		}))
	require.NoError(b, err)
	require.Equal(b, int64(n*benchTapsPerRider), rows)
	exec("CREATE INDEX ON " + schema + ".taps (token, time)")
	exec("ANALYZE " + schema + ".taps")
	b.Logf("loaded %d taps into PostgreSQL in %v (COPY + index + analyze)", rows, time.Since(loadStart).Round(time.Millisecond))

	// The sample: every 997th rider, compared one by one.
	sample := map[string]Amount{}
	for i := 0; i < n; i += 997 {
		sample[benchToken(i)] = -1
	}

	tokens := benchTokens(n)
	runtime.GC()
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		engineTotal, engineTime := rateAll(b, r, tokens, sample)

		// The query as PostgreSQL runs it by default (it may add parallel
		// workers), then on one worker; the ratio uses the faster.
		exec("SET work_mem = '256MB'")
		var sqlRiders, sqlTotal int64
		timeSQL := func() time.Duration {
			start := time.Now()
			err := conn.QueryRow(ctx, "SELECT count(*), COALESCE(SUM(total), 0)::bigint FROM ("+fmt.Sprintf(capSQL, schema)+") t").Scan(&sqlRiders, &sqlTotal)
			require.NoError(b, err)
			return time.Since(start)
		}
		sqlTime := timeSQL()
		exec("SET max_parallel_workers_per_gather = 0")
		sqlOneWorker := timeSQL()
		exec("RESET max_parallel_workers_per_gather")
		sqlBest := min(sqlTime, sqlOneWorker)

		require.Equal(b, int64(n), sqlRiders)
		require.Equal(b, int64(engineTotal), sqlTotal, "SQL and engine grand totals")
		srows, err := conn.Query(ctx, "SELECT token, total FROM ("+fmt.Sprintf(capSQL, schema)+") t WHERE token = ANY($1)", keys(sample))
		require.NoError(b, err)
		checked := 0
		for srows.Next() {
			var tok string
			var tot int64
			require.NoError(b, srows.Scan(&tok, &tot))
			require.Equal(b, int64(sample[tok]), tot, "rider %s", tok)
			checked++
		}
		require.NoError(b, srows.Err())
		require.Equal(b, len(sample), checked)

		taps := float64(n * benchTapsPerRider)
		engineRate := taps / engineTime.Seconds()
		sqlRate := taps / sqlBest.Seconds()
		b.ReportMetric(engineRate, "taps/s/core")
		b.ReportMetric(sqlRate, "sql-taps/s")
		b.ReportMetric(engineRate/sqlRate, "x-vs-sql")
		b.Logf("%d riders × %d taps: engine %v (%.2f M taps/s/core); PostgreSQL query %v by default, %v on one worker (best %.2f M taps/s); engine %.1f× the SQL; totals equal (%d), %d sampled riders equal",
			n, benchTapsPerRider, engineTime.Round(time.Millisecond), engineRate/1e6, sqlTime.Round(time.Millisecond),
			sqlOneWorker.Round(time.Millisecond), sqlRate/1e6, engineRate/sqlRate, sqlTotal, checked)
	}
}

func keys(m map[string]Amount) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
