package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

const seedRules = "../../testdata/capping/seed/rules.json"

// seedDay is a past service day under the seed rules (America/New_York).
var seedDay = capping.DateOf(2026, 11, 16)

func writeGatePub(t *testing.T, dir string) (string, ed25519.PrivateKey) {
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	p := filepath.Join(dir, "gate.pub")
	require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644))
	return p, key
}

func TestBackendGatesCLI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pub, _ := writeGatePub(t, dir)
	out, code := run(t, "backend", "gates", "add", "--id", "G-001", "--pub", pub, "--data", data)
	require.Equal(t, 0, code, out)
	out, code = run(t, "backend", "gates", "add", "--id", "G-001", "--pub", pub, "--data", data)
	require.Equal(t, 2, code, out)
	out, code = run(t, "backend", "gates", "add", "--id", "G 1", "--pub", pub, "--data", data)
	require.Equal(t, 2, code, out)
	out, code = run(t, "backend", "gates", "add", "--id", "G-002", "--pub", seedRules, "--data", data)
	require.Equal(t, 2, code, out)
	out, code = run(t, "backend", "gates", "disable", "--id", "G-001", "--data", data)
	require.Equal(t, 0, code, out)
	out, code = run(t, "backend", "gates", "disable", "--id", "G-404", "--data", data)
	require.Equal(t, 2, code, out)
	out, code = run(t, "backend", "gates", "list", "--json", "--data", data)
	require.Equal(t, 0, code, out)
	var got struct {
		Gates []struct {
			ID       string `json:"id"`
			Disabled bool   `json:"disabled"`
		} `json:"gates"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got.Gates, 1)
	require.True(t, got.Gates[0].Disabled)
	out, code = run(t, "backend", "gates", "list")
	require.Equal(t, 2, code, out)
	out, code = run(t, "backend", "gates", "list", "--data", data, "--db", "postgres://x")
	require.Equal(t, 2, code, out)
}

// seedStore stores riders × perRider taps of seedDay at one gate.
func seedStore(t testing.TB, dir string, riders, perRider int) {
	ctx := context.Background()
	s, err := backend.OpenSQLite(ctx, dir)
	require.NoError(t, err)
	defer s.Close()
	pub, _, _ := ed25519.GenerateKey(nil)
	require.NoError(t, s.AddGate(ctx, "G-1", pub, time.Now()))
	rules, err := capping.ParseRules(mustRead(t, seedRules))
	require.NoError(t, err)
	start, _ := backend.DayBounds(rules, seedDay)
	rng := rand.New(rand.NewPCG(7, 7))
	b := &tap.Batch{Gate: "G-1"}
	var seq uint64
	flush := func() {
		_, err := s.StoreBatches(ctx, []*tap.Batch{b}, start.Add(23*time.Hour))
		require.NoError(t, err)
		b.Taps = b.Taps[:0]
	}
	for i := range riders {
		tk := rider.NewToken([]byte("k"), fmt.Sprintf("5413%012d", i), "00")
		n := 1 + rng.IntN(2*perRider-1)
		for j := range n {
			seq++
			at := start.Add(time.Duration(j)*time.Hour + time.Duration(rng.IntN(3600))*time.Second)
			b.Taps = append(b.Taps, tap.Record{ID: uuid.Must(uuid.NewV7()), Gate: "G-1", Seq: seq, Time: at, Kind: tap.KindEMV, Token: tk,
				Decision: tap.Open, Reason: "ok", Location: tap.Location{Mode: "bus"}})
			if len(b.Taps) == tap.MaxBatchTaps {
				flush()
			}
		}
	}
	if len(b.Taps) > 0 {
		flush()
	}
}

func mustRead(t testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

func TestSettleCLI(t *testing.T) {
	data := t.TempDir()
	seedStore(t, data, 50, 4)
	out, code := run(t, "settle", "--day", seedDay.String(), "--rules", seedRules, "--data", data, "--json")
	require.Equal(t, 0, code, out)
	var sum map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &sum))
	require.Equal(t, seedDay.String(), sum["day"])
	require.EqualValues(t, 50, sum["riders"])
	require.Contains(t, sum, "charged")
	require.Contains(t, sum, "adjustments")
	require.Contains(t, sum, "refunds")
	out, code = run(t, "settle", "--day", seedDay.String(), "--rules", seedRules, "--data", data, "--json")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, `"riders":0`, "re-running a day changes nothing")
	for _, args := range [][]string{
		{"settle", "--day", "2026-13-01", "--rules", seedRules, "--data", data},
		{"settle", "--day", seedDay.String(), "--shard", "2/2", "--rules", seedRules, "--data", data},
		{"settle", "--day", seedDay.String(), "--shard", "x", "--rules", seedRules, "--data", data},
		{"settle", "--day", seedDay.String(), "--data", data},
	} {
		out, code := run(t, args...)
		require.Equal(t, 2, code, "%v: %s", args, out)
	}
}

func chargesOf(t testing.TB, dir string, day capping.Date) []string {
	s, err := backend.OpenSQLite(context.Background(), dir)
	require.NoError(t, err)
	defer s.Close()
	cs, err := s.Charges(context.Background(), day)
	require.NoError(t, err)
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s %s %d %d %d %d", c.Token, c.Day, c.Amount, c.DayAmount, c.Adjustment, c.Taps))
	}
	return out
}

func copyDir(t testing.TB, from, to string) {
	require.NoError(t, os.MkdirAll(to, 0o700))
	ents, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), b, 0o600))
	}
}

// TestSettleCrash: faregate settle killed with SIGKILL at random points,
// 20 times (5 rounds from the same stored taps, 4 kills each), then run to
// the end, leaves exactly the charges of a clean run: none missing, none
// doubled.
func TestSettleCrash(t *testing.T) {
	if testing.Short() || raceOn {
		t.Skip("builds the binary and settles 10 000 riders 25 times (the binary is not race-instrumented: skipped under -race)")
	}
	const riders = 10000
	bin := faregateBinary(t)
	dir := t.TempDir()
	seeded, clean := filepath.Join(dir, "seeded"), filepath.Join(dir, "clean")
	seedStore(t, seeded, riders, 3)
	copyDir(t, seeded, clean)
	args := func(data string) []string {
		return []string{"settle", "--day", seedDay.String(), "--rules", seedRules, "--data", data, "--json"}
	}
	began := time.Now()
	out, err := exec.Command(bin, args(clean)...).CombinedOutput()
	require.NoError(t, err, string(out))
	cleanTook := time.Since(began)
	var cleanSum backend.Summary
	require.NoError(t, json.Unmarshal(out, &cleanSum))
	require.Equal(t, riders, cleanSum.Riders)
	want := chargesOf(t, clean, seedDay)
	require.Len(t, want, riders)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills, midWrite := 0, 0
	for round := range 5 {
		crashed := filepath.Join(dir, fmt.Sprintf("crashed-%d", round))
		copyDir(t, seeded, crashed)
		var partial []int
		for range 4 {
			cmd := exec.Command(bin, args(crashed)...)
			require.NoError(t, cmd.Start())
			// Anywhere from start-up to the end of a run as long as the clean one.
			time.Sleep(time.Duration(rng.Int64N(int64(cleanTook))))
			if cmd.Process.Signal(syscall.SIGKILL) == nil {
				kills++
			}
			cmd.Wait()
			n := len(chargesOf(t, crashed, seedDay))
			if n > 0 && n < riders {
				midWrite++
			}
			partial = append(partial, n)
		}
		out, err = exec.Command(bin, args(crashed)...).CombinedOutput()
		require.NoError(t, err, string(out))
		require.Equal(t, want, chargesOf(t, crashed, seedDay), "round %d: after kills with %v charges stored, the charges equal a clean run's", round, partial)
		t.Logf("round %d: charges stored after each kill: %v", round, partial)
	}
	require.GreaterOrEqual(t, kills, 20)
	t.Logf("%d SIGKILLs, %d of them while charges were being written; every round ends with the clean run's charges", kills, midWrite)
}

// TestBackendBinary runs faregate backend for real: a gate registered with
// gates add uploads signed batches over HTTP, the operator reads them
// back, and SIGTERM shuts the server down cleanly.
func TestBackendBinary(t *testing.T) {
	bin := faregateBinary(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pubPath, key := writeGatePub(t, dir)
	out, err := exec.Command(bin, "backend", "gates", "add", "--id", "G-1", "--pub", pubPath, "--data", data).CombinedOutput()
	require.NoError(t, err, string(out))
	vk, err := tap.GenerateVaultKey(nil)
	require.NoError(t, err)
	vkPEM, err := tap.MarshalVaultKey(vk)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vault.key"), vkPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "operator"), []byte("op-token\n"), 0o600))
	_, dlKey, err := denylist.GenerateKey(nil)
	require.NoError(t, err)
	dlPEM, err := denylist.MarshalPrivateKey(dlKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "denylist.key"), dlPEM, 0o600))
	users, msg, code := dlRun(t, "an operator's password\n", "backend", "hash-password", "--user", "ops")
	require.Equal(t, 0, code, msg)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "users"), []byte(users), 0o600))
	addr := freeAddr(t)
	// Most settings from the config file; --listen on the command line
	// wins over the file's.
	conf, err := json.Marshal(map[string]any{"data": data, "listen": "127.0.0.1:1", "rules": seedRules,
		"vault-key": filepath.Join(dir, "vault.key"), "operator-token": filepath.Join(dir, "operator"),
		"denylist-key": filepath.Join(dir, "denylist.key"), "console-users": filepath.Join(dir, "users"),
		"grace": "3h", "no-settle": false})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "backend.json"), conf, 0o600))
	cmd := exec.Command(bin, "backend", "--config", filepath.Join(dir, "backend.json"), "--listen", addr)
	base, logs := startBackend(t, cmd, addr)

	tk := rider.NewToken([]byte("k"), "5413330089020011", "00")
	now := time.Now().UTC()
	var ids []uuid.UUID
	b := tap.Batch{Gate: "G-1", Backlog: 3}
	for i := range 3 {
		id := uuid.Must(uuid.NewV7())
		ids = append(ids, id)
		sealed, err := tap.SealCardData(vk.PublicKey(), "G-1", id, tap.CardData{PAN: "5413330089020011", PSN: "00"})
		require.NoError(t, err)
		b.Taps = append(b.Taps, tap.Record{ID: id, Gate: "G-1", Seq: uint64(i + 1), Time: now.Add(time.Duration(i-3) * time.Minute), Kind: tap.KindEMV,
			Token: tk, MaskedPAN: "541333******0011", Decision: tap.Open, Reason: "ok", Location: tap.Location{Mode: "bus"}, Sealed: sealed})
	}
	body, err := json.Marshal(b)
	require.NoError(t, err)
	req, err := http.NewRequest("POST", base+"/v1/taps", bytes.NewReader(body))
	require.NoError(t, err)
	tap.SignRequest(req, "G-1", key, now, body)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	ackBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, string(ackBody))
	var ack tap.Ack
	require.NoError(t, json.Unmarshal(ackBody, &ack))
	require.Equal(t, ids, ack.Stored)

	req, _ = http.NewRequest("GET", base+"/v1/gates", nil)
	req.Header.Set("Authorization", "Bearer op-token")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	gatesBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(gatesBody), `"last_seq":3`)
	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(metrics), `faregate_backend_ingest_taps_total{result="stored"} 3`)

	resp, err = http.Get(base + "/v1/denylist")
	require.NoError(t, err)
	resp.Body.Close()
	require.Contains(t, []int{200, 204}, resp.StatusCode, "the deny list is served to gates")
	require.NotEmpty(t, resp.Header.Get("ETag"))

	// The web console: / leads to it, it needs a login with the operator
	// token, then shows the read API's numbers.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar}
	resp, err = browser.Get(base + "/")
	require.NoError(t, err)
	loginPage, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "/console/login", resp.Request.URL.Path, "/ → /console/ → the login")
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f.]+)"`).FindSubmatch(loginPage)
	require.NotNil(t, csrf, string(loginPage))
	resp, err = browser.PostForm(base+"/console/login", url.Values{"token": {"op-token"}, "csrf": {string(csrf[1])}})
	require.NoError(t, err)
	overview, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "/console/", resp.Request.URL.Path)
	require.Contains(t, string(overview), `id="taps">3<`)
	require.Contains(t, string(overview), `id="debt-listed">0<`, "the deny list's debt, from the registry")
	// … or by user and password, from --console-users.
	jar, err = cookiejar.New(nil)
	require.NoError(t, err)
	browser = &http.Client{Jar: jar}
	resp, err = browser.Get(base + "/console/login")
	require.NoError(t, err)
	loginPage, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf = regexp.MustCompile(`name="csrf" value="([0-9a-f.]+)"`).FindSubmatch(loginPage)
	require.NotNil(t, csrf, string(loginPage))
	resp, err = browser.PostForm(base+"/console/login", url.Values{"user": {"ops"}, "password": {"an operator's password"}, "csrf": {string(csrf[1])}})
	require.NoError(t, err)
	overview, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "/console/", resp.Request.URL.Path)
	require.Contains(t, string(overview), `id="user-name">ops<`)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), logs.String())
	require.Contains(t, logs.String(), "back office stopped")
	require.NotContains(t, logs.String(), "5413330089020011")
	for _, f := range []string{"backoffice.db", "backoffice.db-wal"} {
		b, err := os.ReadFile(filepath.Join(data, f))
		if err == nil {
			require.False(t, bytes.Contains(b, []byte("5413330089020011")), "no clear PAN in %s", f)
		}
	}
}

// lockedBuffer collects a child process's output while the test reads it.
// startBackend starts a faregate backend process (cmd, listening on addr),
// kills it when the test ends, and waits until it answers /healthz. It
// returns the base URL and the process's log.
func startBackend(t testing.TB, cmd *exec.Cmd, addr string) (string, *lockedBuffer) {
	t.Helper()
	logs := new(lockedBuffer)
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck // already stopped by the test, often
		cmd.Wait()         //nolint:errcheck // likewise
	})
	base := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, logs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("faregate backend did not answer /healthz within 20 s; its log:\n%s", logs)
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
