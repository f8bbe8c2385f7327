package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/internal/atomicfile"
	"github.com/faregate/faregate/rider"
)

// writeDenylist writes a signed snapshot of n random tokens plus extra
// into the gate's replica directory, and the public key to dir/denylist.pub.
func writeDenylist(t testing.TB, dir string, n int, extra ...rider.Token) {
	t.Helper()
	pub, key, err := denylist.GenerateKey(nil)
	require.NoError(t, err)
	pp, err := denylist.MarshalPublicKey(pub)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "denylist.pub"), pp, 0o644))
	tokens := make([]denylist.Token, n, n+len(extra))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range tokens {
		binary.LittleEndian.PutUint64(tokens[i][:8], rng.Uint64())
		binary.LittleEndian.PutUint64(tokens[i][8:], rng.Uint64())
	}
	for _, e := range extra {
		tokens = append(tokens, denylist.Token(e))
	}
	list, err := denylist.Sign(key, denylist.DefaultListID, 3, time.Now(), denylist.NewSetOfTokens(tokens))
	require.NoError(t, err)
	tokens = nil
	replica := filepath.Join(dir, "data", "denylist")
	require.NoError(t, os.MkdirAll(replica, 0o755))
	require.NoError(t, atomicfile.Write(context.Background(), filepath.Join(replica, denylist.SnapshotFile), 0o644, func(w io.Writer) error {
		_, err := list.WriteTo(w)
		return err
	}, atomicfile.Options{}))
	runtime.GC()
}

// visaToken is the token of the visa-qvsdc software card under the key in
// dir/token.key.
func visaToken(t testing.TB, dir string) rider.Token {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "token.key"))
	require.NoError(t, err)
	k, err := parseTokenKey(b)
	require.NoError(t, err)
	return rider.NewToken(k, "4761739001010010", "01")
}

// procStatus reads a field of /proc/PID/status in kB.
func procStatus(t testing.TB, pid int, field string) float64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			require.NoError(t, err)
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// BenchmarkValidatorRSS is the daemon's resident memory with a deny list
// of FAREGATE_BENCH_DENYLIST entries (default 10 M) loaded, after 1 000 taps
// (run it with -benchtime 1x): RSS now and its peak (VmHWM, start-up
// included). The Visa card is on the list and must be refused.
func BenchmarkValidatorRSS(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc")
	}
	n := 10_000_000
	if s := os.Getenv("FAREGATE_BENCH_DENYLIST"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(b, err)
	}
	dir := b.TempDir()
	args := gateSetup(b, dir)
	writeDenylist(b, dir, n, visaToken(b, dir))
	args = append(args, "--denylist-pub", filepath.Join(dir, "denylist.pub"), "--passback", "0")
	for b.Loop() {
		g := startGate(b, args, 0)
		denied, seen := 0, 0
		for p := range g.lines {
			seen++
			if p.Decision == "reject" {
				denied++
			}
			if seen == 1000 {
				break
			}
		}
		rss := procStatus(b, g.cmd.Process.Pid, "VmRSS")
		hwm := procStatus(b, g.cmd.Process.Pid, "VmHWM")
		require.NoError(b, g.cmd.Process.Kill())
		for range g.lines {
		}
		g.wait()
		require.Contains(b, g.stderr.String(), `"denylist_version":3`)
		require.Greater(b, denied, 0)
		b.ReportMetric(rss/1024, "RSS-MB")
		b.ReportMetric(hwm/1024, "peak-RSS-MB")
		b.ReportMetric(float64(n), "entries")
		if i := strings.Index(g.stderr.String(), `"msg":"memory"`); i >= 0 {
			b.Log(strings.SplitN(g.stderr.String()[i:], "\n", 2)[0])
		}
	}
}

// TestValidatorDamagedDenylist: a corrupt snapshot at start is moved aside;
// the gate starts on an empty list, says so in its logs and metrics, and
// keeps tapping.
func TestValidatorDamagedDenylist(t *testing.T) {
	dir := t.TempDir()
	args := gateSetup(t, dir)
	writeDenylist(t, dir, 1000, visaToken(t, dir))
	snap := filepath.Join(dir, "data", "denylist", denylist.SnapshotFile)
	b, err := os.ReadFile(snap)
	require.NoError(t, err)
	b[len(b)/2] ^= 0xFF
	require.NoError(t, os.WriteFile(snap, b, 0o644))
	metrics := freeAddr(t)
	args = append(args, "--denylist-pub", filepath.Join(dir, "denylist.pub"), "--metrics", metrics)
	g := startGate(t, args, 0)
	var first printed
	for p := range g.lines {
		first = p
		break
	}
	resp, err := http.Get("http://" + metrics + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.NoError(t, g.cmd.Process.Kill())
	for range g.lines {
	}
	g.wait()
	require.Equal(t, "open", first.Decision, "the deny-listed Visa card passes on the empty list")
	require.Contains(t, string(body), "faregate_denylist_damaged_at_start 1")
	require.Contains(t, string(body), "faregate_denylist_version 0")
	require.Contains(t, g.stderr.String(), "starting on an EMPTY deny list")
	moved, err := filepath.Glob(snap + ".damaged-*")
	require.NoError(t, err)
	require.Len(t, moved, 1)
}

// TestValidatorDamagedTrustFile: a corrupt deny-list trust file at start is
// moved aside; the gate trusts --denylist-pub alone and keeps its list.
func TestValidatorDamagedTrustFile(t *testing.T) {
	dir := t.TempDir()
	args := gateSetup(t, dir)
	writeDenylist(t, dir, 1000, visaToken(t, dir))
	trust := filepath.Join(dir, "data", "denylist", denylist.TrustFile)
	require.NoError(t, os.WriteFile(trust, []byte("{not json"), 0o644))
	args = append(args, "--denylist-pub", filepath.Join(dir, "denylist.pub"))
	g := startGate(t, args, 0)
	var first printed
	for p := range g.lines {
		first = p
		break
	}
	require.NoError(t, g.cmd.Process.Kill())
	for range g.lines {
	}
	g.wait()
	require.Equal(t, "reject", first.Decision, "the list signed by --denylist-pub still loads")
	require.Contains(t, g.stderr.String(), "trust file damaged")
	moved, err := filepath.Glob(trust + ".damaged-*")
	require.NoError(t, err)
	require.Len(t, moved, 1)
}
