package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// BenchmarkCapVsPostgres is the end-to-end comparison of issue 13: a city's
// week as a taps file (100 000 riders × 10 taps by default, TfL-style daily
// £8.90 and Monday–Sunday £44.70 caps on a 04:30 London service day, in time
// order as a journal export would be), loaded into PostgreSQL with COPY and
// capped with a window-function query, against `faregate cap` run as a
// process on the same file in each output mode. Rounds interleave the two
// (the machine is shared); each round checks that every mode's grand total
// equals PostgreSQL's. It reports the best time of each, the ratios and the
// command's peak RSS per tap.
//
//	go test ./cmd/faregate -run '^$' -bench CapVsPostgres -benchtime 1x
//
// FAREGATE_BENCH_RIDERS sets the riders (500000 for the 5 M-tap run),
// FAREGATE_BENCH_ROUNDS the rounds (default 3), FAREGATE_BENCH_PG the
// database. Skips when PostgreSQL is unreachable.
func BenchmarkCapVsPostgres(b *testing.B) {
	dsn := os.Getenv("FAREGATE_BENCH_PG")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	conn, err := pgx.Connect(cctx, dsn)
	cancel()
	if err != nil {
		b.Skipf("PostgreSQL not reachable at %s (%v): skipping the comparison", dsn, err)
	}
	defer conn.Close(ctx)
	riders := benchEnvInt(b, "FAREGATE_BENCH_RIDERS", 100_000)
	rounds := benchEnvInt(b, "FAREGATE_BENCH_ROUNDS", 3)

	dir := b.TempDir()
	bin := filepath.Join(dir, "faregate")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(b, build.Run())
	rulesPath := filepath.Join(dir, "rules.json")
	require.NoError(b, os.WriteFile(rulesPath, []byte(capBenchRules), 0o644))
	tapsPath := filepath.Join(dir, "taps.csv")
	size := writeCapBenchTaps(b, tapsPath, riders)
	taps := riders * capBenchTapsPerRider
	b.Logf("%d riders × %d taps: %s, %.1f MB", riders, capBenchTapsPerRider, tapsPath, float64(size)/1e6)

	pg := &capBenchPG{conn: conn, schema: fmt.Sprintf("faregate_capvspg_%d", os.Getpid())}
	defer pg.drop(ctx)

	modes := []string{"charges", "json", "table"}
	best := map[string]time.Duration{}
	cpu := map[string]time.Duration{} // the command's user + system time, least of the rounds
	rss := map[string]int64{}
	var pgBest time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for round := 0; round < rounds; round++ {
			pgTime, pgRiders, pgTotal := pg.run(b, ctx, tapsPath)
			require.Equal(b, int64(riders), pgRiders)
			if pgBest == 0 || pgTime < pgBest {
				pgBest = pgTime
			}
			line := fmt.Sprintf("round %d: PostgreSQL COPY + query %v", round+1, pgTime.Round(time.Millisecond))
			for _, mode := range modes {
				out := filepath.Join(dir, "out."+mode)
				d, c, maxRSS := runCapBench(b, bin, rulesPath, tapsPath, out, mode)
				if cpu[mode] == 0 || c < cpu[mode] {
					cpu[mode] = c
				}
				require.Equal(b, pgTotal, capBenchTotal(b, out, mode), "%s total against PostgreSQL", mode)
				if best[mode] == 0 || d < best[mode] {
					best[mode] = d
				}
				rss[mode] = max(rss[mode], maxRSS)
				line += fmt.Sprintf("; %s %v (%.2f×)", mode, d.Round(time.Millisecond), pgTime.Seconds()/d.Seconds())
				require.NoError(b, os.Remove(out))
			}
			b.Log(line + fmt.Sprintf("; totals equal (%d pence)", pgTotal))
		}
	}
	b.StopTimer()
	b.ReportMetric(pgBest.Seconds(), "pg-s")
	summary := fmt.Sprintf("best of %d: PostgreSQL %v", rounds, pgBest.Round(time.Millisecond))
	for _, mode := range modes {
		b.ReportMetric(best[mode].Seconds(), mode+"-s")
		b.ReportMetric(pgBest.Seconds()/best[mode].Seconds(), mode+"-x-vs-pg")
		b.ReportMetric(float64(rss[mode])/float64(taps), mode+"-rss-B/tap")
		b.ReportMetric(float64(cpu[mode].Nanoseconds())/float64(taps), mode+"-cpu-ns/tap")
		summary += fmt.Sprintf("; %s %v (%.2f× PostgreSQL, CPU %v = %.0f ns/tap, peak RSS %.0f MB = %.0f B/tap)", mode,
			best[mode].Round(time.Millisecond), pgBest.Seconds()/best[mode].Seconds(), cpu[mode].Round(time.Millisecond),
			float64(cpu[mode].Nanoseconds())/float64(taps), float64(rss[mode])/1e6, float64(rss[mode])/float64(taps))
	}
	b.Log(summary)
}

const capBenchRules = `{"currency":"GBP","time_zone":"Europe/London","service_day_start":"04:30","week_start":"monday",
  "caps":[{"id":"day","amount":"8.90","period":{"kind":"service_day"}},
          {"id":"week","amount":"44.70","period":{"kind":"calendar_week"}}]}`

const capBenchTapsPerRider = 10

func benchEnvInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(b, err, name)
	return n
}

// writeCapBenchTaps writes the taps file: riders with 32-hex-digit tokens,
// 10 taps each at random seconds of the week from Monday 2025-03-10 04:30
// (GMT, written +00:00), bus £1.75 or tube £2.90/£3.80, in time order.
func writeCapBenchTaps(b *testing.B, path string, riders int) int64 {
	type tap struct {
		at    uint32 // seconds into the week
		rider uint32
		fare  uint8
	}
	rng := rand.New(rand.NewPCG(13, uint64(riders)))
	all := make([]tap, 0, riders*capBenchTapsPerRider)
	for r := 0; r < riders; r++ {
		for k := 0; k < capBenchTapsPerRider; k++ {
			all = append(all, tap{at: uint32(rng.IntN(7 * 86400)), rider: uint32(r), fare: uint8(rng.IntN(3))})
		}
	}
	slices.SortFunc(all, func(a, b tap) int { return int(a.at) - int(b.at) })
	f, err := os.Create(path)
	require.NoError(b, err)
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("token,time,mode,category,fare\n")
	start := time.Date(2025, 3, 10, 4, 30, 0, 0, time.UTC)
	modes := []string{"bus", "tube", "tube"}
	fares := []string{"1.75", "2.90", "3.80"}
	var tok [16]byte
	var line []byte
	for _, t := range all {
		tr := rand.NewPCG(uint64(t.rider), 0x746f6b656e)
		for i := 0; i < 16; i += 8 {
			v := tr.Uint64()
			for j := 0; j < 8; j++ {
				tok[i+j] = byte(v >> (8 * j))
			}
		}
		line = hex.AppendEncode(line[:0], tok[:])
		line = append(line, ',')
		line = start.Add(time.Duration(t.at)*time.Second).AppendFormat(line, "2006-01-02T15:04:05+00:00")
		line = append(line, ',')
		line = append(line, modes[t.fare]...)
		line = append(line, ",adult,"...)
		line = append(line, fares[t.fare]...)
		line = append(line, '\n')
		w.Write(line)
	}
	require.NoError(b, w.Flush())
	st, err := f.Stat()
	require.NoError(b, err)
	require.NoError(b, f.Close())
	return st.Size()
}

type capBenchPG struct {
	conn   *pgx.Conn
	schema string
}

func (p *capBenchPG) drop(ctx context.Context) {
	_, _ = p.conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+p.schema+" CASCADE")
}

// capBenchSQL: the service day from the London wall clock minus 04:30; per
// leg the daily cap on running fare sums, then the weekly cap on running
// sums of the day-capped charges (equal to the engine for nested caps).
const capBenchSQL = `
WITH legs AS (
  SELECT token, time, (fare * 100)::bigint AS fare,
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
), riders AS (
  SELECT token, SUM(charged)::bigint AS total FROM week_capped GROUP BY token
)
SELECT count(*), COALESCE(SUM(total), 0)::bigint FROM riders`

// run creates a fresh unlogged table, COPYs the file in and runs the
// query: the time is the COPY and the query, wall clock.
func (p *capBenchPG) run(b *testing.B, ctx context.Context, tapsPath string) (time.Duration, int64, int64) {
	p.drop(ctx)
	for _, sql := range []string{
		"CREATE SCHEMA " + p.schema,
		"CREATE UNLOGGED TABLE " + p.schema + ".taps (token text NOT NULL, time timestamptz NOT NULL, mode text, category text, fare numeric(12,2) NOT NULL)",
		"SET work_mem = '256MB'",
	} {
		_, err := p.conn.Exec(ctx, sql)
		require.NoError(b, err, sql)
	}
	f, err := os.Open(tapsPath)
	require.NoError(b, err)
	defer f.Close()
	start := time.Now()
	tag, err := p.conn.PgConn().CopyFrom(ctx, f, "COPY "+p.schema+".taps FROM STDIN (FORMAT csv, HEADER true)")
	require.NoError(b, err)
	var riders, total int64
	require.NoError(b, p.conn.QueryRow(ctx, fmt.Sprintf(capBenchSQL, p.schema)).Scan(&riders, &total))
	d := time.Since(start)
	require.Positive(b, tag.RowsAffected())
	return d, riders, total
}

// runCapBench runs the binary with stdout to a file and returns the wall
// time, the CPU time (user + system) and the peak RSS in bytes. The peak is the child's VmHWM, sampled
// every few milliseconds until it exits (rusage's maxrss would count this
// process's memory too: the child inherits it until exec).
func runCapBench(b *testing.B, bin, rules, taps, out, mode string) (time.Duration, time.Duration, int64) {
	f, err := os.Create(out)
	require.NoError(b, err)
	defer f.Close()
	cmd := exec.Command(bin, "cap", "--rules", rules, "--taps", taps, "--format", mode)
	cmd.Stdout = f
	cmd.Stderr = os.Stderr
	start := time.Now()
	require.NoError(b, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peak int64
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			require.NoError(b, err)
			d := time.Since(start)
			return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), peak
		case <-tick.C:
			if hwm := vmHWM(status); hwm > peak {
				peak = hwm
			}
		}
	}
}

// vmHWM reads a process's peak resident set in bytes (0 if unreadable).
func vmHWM(status string) int64 {
	data, err := os.ReadFile(status)
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(data, []byte("VmHWM:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(line)), " kB"), 10, 64)
	if err != nil {
		return 0
	}
	return kb * 1024
}

// capBenchTotal reads the grand total (in pence) from an output file.
func capBenchTotal(b *testing.B, path, mode string) int64 {
	data, err := os.ReadFile(path)
	require.NoError(b, err)
	var s string
	switch mode {
	case "json":
		head := data[:min(len(data), 200)]
		_, rest, ok := bytes.Cut(head, []byte(`"total":"`))
		require.True(b, ok)
		s, _, _ = strings.Cut(string(rest), `"`)
	case "table":
		i := bytes.LastIndex(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
		fields := strings.Fields(string(data[i+1:]))
		require.Equal(b, "total", fields[0])
		s = fields[1]
	case "charges":
		var sum int64
		lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
		require.Equal(b, "token,service_day,taps,fares,charged", string(lines[0]))
		for _, l := range lines[1:] {
			sum += pence(b, string(l[bytes.LastIndexByte(l, ',')+1:]))
		}
		return sum
	}
	return pence(b, s)
}

func pence(b *testing.B, s string) int64 {
	whole, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	require.NoError(b, err, s)
	return n
}
