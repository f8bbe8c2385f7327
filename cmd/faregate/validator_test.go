package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/tap"
	"github.com/faregate/faregate/validator"
)

// The crash test runs this test binary as the faregate command through
// TestMain (harden_test.go): FAREGATE_TEST_MAIN=1 makes it main().

// faregateCmd returns the faregate command line as a child process.
func faregateCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "FAREGATE_TEST_MAIN=1")
	return cmd
}

// panPattern finds the PANs of a card profile (tag 5A in a record, the
// digits before the separator of track 2).
var panPattern = regexp.MustCompile(`"(?:5A|57|9F6B)"\s*[,:]\s*"([0-9]{12,19})`)

func softwarePANs(t testing.TB) []string {
	t.Helper()
	names, err := fs.Glob(faregate.TestData, "testdata/cards/*.json")
	require.NoError(t, err)
	seen := map[string]bool{}
	var pans []string
	for _, n := range names {
		b, err := fs.ReadFile(faregate.TestData, n)
		require.NoError(t, err)
		for _, m := range panPattern.FindAllSubmatch(b, -1) {
			if p := string(m[1]); !seen[p] {
				seen[p] = true
				pans = append(pans, p)
			}
		}
	}
	require.GreaterOrEqual(t, len(pans), 6)
	return pans
}

func requireNoPANIn(t testing.TB, pans []string, what string, b []byte) {
	t.Helper()
	for _, p := range pans {
		require.False(t, bytes.Contains(b, []byte(p)), "%s holds the PAN %s…", what, p[:6])
	}
}

// tapReceiver is the back office's POST /v1/taps on the contract's own
// code: it stores taps by id and counts duplicates.
type tapReceiver struct {
	pub        ed25519.PublicKey
	mu         sync.Mutex
	stored     map[uuid.UUID]bool
	duplicates int
	fail       bool // answer 503 to everything
}

func (rc *tapReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, tap.MaxBatchBytes+1))
	if err != nil || len(body) > tap.MaxBatchBytes {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	gate, err := tap.VerifyRequest(req, body, func(string) ed25519.PublicKey { return rc.pub }, time.Now())
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	b, err := tap.DecodeBatch(body, gate)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(tap.Refusal{Error: err.Error()}) //nolint:errcheck // test server
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.fail {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var ack tap.Ack
	for _, r := range b.Taps {
		if rc.stored[r.ID] {
			rc.duplicates++
			ack.Duplicates++
		}
		rc.stored[r.ID] = true
		ack.Stored = append(ack.Stored, r.ID)
	}
	json.NewEncoder(w).Encode(ack) //nolint:errcheck // test server
}

func (rc *tapReceiver) count() (int, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.stored), rc.duplicates
}

// gateSetup writes the keys a gate needs into dir with the keys commands.
func gateSetup(t testing.TB, dir string) []string {
	t.Helper()
	for _, k := range []string{"gate", "vault", "token"} {
		out, err := faregateCmd("keys", k, "--out", dir).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	return []string{"--data", filepath.Join(dir, "data"), "--gate-id", "G-CRASH",
		"--gate-key", filepath.Join(dir, "gate.key"), "--vault-pub", filepath.Join(dir, "vault.pub"),
		"--token-key", filepath.Join(dir, "token.key"), "--test-keys", "--date", "2026-11-23",
		"--location", "operator=TfL,stop=Bank,zones=1,role=on,group=BANK", "--log-format", "json"}
}

// crashCards is the stream of taps: good cards of every scheme, refusals
// and a torn tap.
var crashCards = []string{"visa-qvsdc", "mastercard-cda", "amex-cda", "fault-bad-sdad", "discover-dda",
	"jcb-dda", "maestro-sda", "fault-card-removed", "unionpay-qpboc", "fault-expired-card", "visa-fdda-95-atc"}

// printed is a tap line the daemon printed.
type printed struct {
	ID       *uuid.UUID `json:"id"`
	Decision string     `json:"decision"`
}

// runGate starts the daemon with an endless stream of taps and collects
// what it prints until it exits. stop, when not nil, is called once the
// process runs; the caller kills it there or lets the stream end.
type gateRun struct {
	cmd    *exec.Cmd
	lines  chan printed
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	cards  int // cards to feed; 0: endless
}

func startGate(t testing.TB, args []string, cards int) *gateRun {
	t.Helper()
	g := &gateRun{cmd: faregateCmd(append([]string{"validator", "--cards-from", "-"}, args...)...),
		lines: make(chan printed, 1<<16), done: make(chan struct{}), cards: cards}
	stdin, err := g.cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := g.cmd.StdoutPipe()
	require.NoError(t, err)
	g.cmd.Stderr = &g.stderr
	require.NoError(t, g.cmd.Start())
	go func() {
		w := bufio.NewWriter(stdin)
		for i := 0; g.cards == 0 || i < g.cards; i++ {
			if _, err := fmt.Fprintln(w, crashCards[i%len(crashCards)]); err != nil {
				break
			}
			if i%8 == 7 && w.Flush() != nil {
				break
			}
		}
		w.Flush()
		stdin.Close()
	}()
	go func() {
		defer close(g.done)
		defer close(g.lines)
		sc := bufio.NewScanner(io.TeeReader(stdout, &g.stdout))
		for sc.Scan() {
			var p printed
			if err := json.Unmarshal(sc.Bytes(), &p); err == nil {
				g.lines <- p
			}
		}
	}()
	return g
}

// wait collects every complete line printed and waits for the exit.
func (g *gateRun) wait() []printed {
	var out []printed
	for p := range g.lines {
		out = append(out, p)
	}
	<-g.done
	g.cmd.Wait() //nolint:errcheck // killed on purpose
	return out
}

// checkJournal opens the journal after a crash: it opens cleanly, the
// integrity check passes, sequence numbers run 1…N without a gap or a
// duplicate, ids are unique, and every tap printed is there with the
// decision printed.
func checkJournal(t testing.TB, dir string, want map[uuid.UUID]string) (entries int, unsent int) {
	t.Helper()
	ctx := context.Background()
	j, err := validator.OpenJournal(ctx, filepath.Join(dir, "journal.db"), validator.JournalOptions{})
	require.NoError(t, err, "the journal opens after the crash")
	defer j.Close()
	require.NoError(t, j.Check(ctx))
	seen := make(map[uuid.UUID]tap.Decision, len(want))
	var next uint64 = 1
	require.NoError(t, j.Index(ctx, func(e validator.Entry) error {
		require.Equal(t, next, e.Seq, "sequence numbers without gaps or duplicates")
		next++
		_, dup := seen[e.ID]
		require.False(t, dup, "tap id %s twice", e.ID)
		seen[e.ID] = e.Decision
		if !e.Uploaded {
			unsent++
		}
		return nil
	}))
	require.Equal(t, next, j.NextSeq())
	for id, d := range want {
		got, ok := seen[id]
		require.True(t, ok, "tap %s was printed as decided but is not in the journal", id)
		require.Equal(t, d, string(got))
	}
	return len(seen), unsent
}

// scanJournalFiles looks for PANs in the journal, its WAL and its shared
// memory file.
func scanJournalFiles(t testing.TB, pans []string, data string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(data, "journal.db*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		requireNoPANIn(t, pans, f, b)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestValidatorCrash starts the daemon on a fast stream of software-card
// taps and SIGKILLs it at random moments (FAREGATE_CRASH_KILLS times,
// default 20; CI runs 200). After every kill the journal must open cleanly
// with every printed tap in it and a gapless sequence; the uploader
// resumes on every restart (the back office is down for a stretch in the
// middle); a last clean run drains the backlog to the back office, which
// then holds every journaled tap once. Finally no PAN is found in the
// journal files, the logs, stdout or /metrics.
func TestValidatorCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: not in -short")
	}
	kills := 20
	if s := os.Getenv("FAREGATE_CRASH_KILLS"); s != "" {
		var err error
		kills, err = strconv.Atoi(s)
		require.NoError(t, err)
	}
	dir := t.TempDir()
	args := gateSetup(t, dir)
	data := filepath.Join(dir, "data")
	b, err := os.ReadFile(filepath.Join(dir, "gate.pub"))
	require.NoError(t, err)
	pub, err := tap.ParseGatePublicKey(b)
	require.NoError(t, err)
	rc := &tapReceiver{pub: pub, stored: map[uuid.UUID]bool{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	args = append(args, "--backend", srv.URL, "--upload-interval", "20ms", "--passback", "0")

	pans := softwarePANs(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 10))
	want := map[uuid.UUID]string{}
	var logs, stdout bytes.Buffer
	var taps, lastStored, resumed int
	for k := range kills {
		rc.mu.Lock()
		rc.fail = k >= kills/3 && k < kills/2 // the back office is down for a stretch
		rc.mu.Unlock()
		g := startGate(t, args, 0)
		// Kill at a random moment: on even rounds from the start (start-up
		// included), on odd ones once the gate is tapping (mid-tap,
		// mid-commit, mid-upload), so a slow machine still taps.
		var lines []printed
		if k%2 == 1 {
			select {
			case p, ok := <-g.lines:
				if ok {
					lines = append(lines, p)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no tap within 30 s: %s", g.stderr.String())
			}
			time.Sleep(time.Duration(rng.Int64N(int64(150 * time.Millisecond))))
		} else {
			time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
		}
		require.NoError(t, g.cmd.Process.Kill())
		lines = append(lines, g.wait()...)
		for _, p := range lines {
			if p.ID != nil {
				want[*p.ID] = p.Decision
			}
		}
		taps += len(lines)
		logs.Write(g.stderr.Bytes())
		stdout.Write(g.stdout.Bytes())
		var roTaps float64 = -1
		_, statErr := os.Stat(filepath.Join(data, "journal.db"))
		if k%10 == 0 && statErr == nil { // (a kill during start-up may come before the journal exists)
			// Read-only inspection of the journal as the kill left it,
			// before anything opens it for writing.
			out, code := run(t, "journal", "stats", "--data", data)
			require.Equal(t, 0, code, out)
			var st map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &st), out)
			roTaps = st["taps"].(float64)
		}
		entries, _ := checkJournal(t, data, want)
		if roTaps >= 0 {
			require.Equal(t, float64(entries), roTaps, "journal stats read-only after the kill")
		}
		scanJournalFiles(t, pans, data) // the WAL is there after a kill
		if stored, _ := rc.count(); stored > lastStored {
			resumed++
			lastStored = stored
		}
	}
	require.Greater(t, len(want), kills, "taps were decided between kills")
	require.Greater(t, resumed, 1, "the uploader resumed after restarts")

	// A clean run to the end of its stream: the backlog drains.
	rc.mu.Lock()
	rc.fail = false
	rc.mu.Unlock()
	metrics := freeAddr(t)
	g := startGate(t, append(args, "--metrics", metrics), 50)
	var scraped []byte
	for p := range g.lines {
		taps++
		if p.ID != nil {
			want[*p.ID] = p.Decision
		}
		if scraped == nil {
			resp, err := http.Get("http://" + metrics + "/metrics")
			require.NoError(t, err)
			scraped, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
		}
	}
	<-g.done
	require.NoError(t, g.cmd.Wait(), "%s", g.stderr.String())
	logs.Write(g.stderr.Bytes())
	stdout.Write(g.stdout.Bytes())
	entries, unsent := checkJournal(t, data, want)
	require.Zero(t, unsent, "the backlog drained")
	stored, dups := rc.count()
	require.Equal(t, entries, stored, "the back office holds every journaled tap")
	require.Contains(t, string(scraped), "faregate_taps_total")
	require.Contains(t, logs.String(), `"msg":"gate in service"`)

	// No PAN at rest: journal (with WAL and shared memory), logs, stdout,
	// metrics.
	scanJournalFiles(t, pans, data)
	requireNoPANIn(t, pans, "logs", logs.Bytes())
	requireNoPANIn(t, pans, "stdout", stdout.Bytes())
	requireNoPANIn(t, pans, "/metrics", scraped)
	t.Logf("crash test: %d SIGKILLs, %d lines printed (%d taps journaled), all printed taps found; uploader resumed after %d restarts; back office: %d stored, %d duplicates; no PAN in the journal files after each kill, %d bytes of logs, %d of stdout, /metrics",
		kills, taps, entries, resumed, stored, dups, logs.Len(), stdout.Len())
}

// TestValidatorContract runs the daemon in process on a file of cards and
// checks the stdout contract, journal list/stats, the config file and the
// keys commands' files.
func TestValidatorContract(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"gate", "vault", "token"} {
		out, code := run(t, "keys", k, "--out", dir)
		require.Equal(t, 0, code, out)
	}
	for name, mode := range map[string]os.FileMode{"gate.key": 0o600, "gate.pub": 0o644, "vault.key": 0o600, "vault.pub": 0o644, "token.key": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Equal(t, mode, fi.Mode().Perm(), name)
	}
	out, code := run(t, "keys", "gate", "--out", dir)
	require.Equal(t, 2, code, "never overwrites a key: %s", out)

	cards := filepath.Join(dir, "cards.txt")
	require.NoError(t, os.WriteFile(cards, []byte("visa-qvsdc\n# a comment\n\nvisa-qvsdc\nfault-card-removed\nmastercard-cda\n"), 0o644))
	config := filepath.Join(dir, "gate.json")
	require.NoError(t, os.WriteFile(config, []byte(`{
  "data": "`+filepath.Join(dir, "data")+`", "gate_id": "G-7", "vault_pub": "`+filepath.Join(dir, "vault.pub")+`",
  "token_key": "`+filepath.Join(dir, "token.key")+`", "test_keys": true, "passback": 0, "date": "2026-11-23",
  "location": {"operator": "TfL", "stop": "Bank", "role": "off", "group": "BANK"}, "timezone": "Asia/Tokyo"
}`), 0o644))
	// The flag overrides the file's pass-back: the second Visa tap is refused.
	out, code = run(t, "validator", "--config", config, "--cards-from", cards, "--passback", "60")
	require.Equal(t, 0, code, out)
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue // the logs share the in-process output
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		lines = append(lines, m)
	}
	require.Len(t, lines, 4)
	for _, m := range lines {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		require.ElementsMatch(t, []string{"id", "time", "decision", "reason", "token", "scheme", "message"}, keys)
	}
	require.Equal(t, "open", lines[0]["decision"])
	require.Equal(t, "Goodbye", lines[0]["message"], "a tap-off gate")
	require.Equal(t, "already_tapped", lines[1]["reason"])
	require.Equal(t, "retry", lines[2]["decision"])
	require.Nil(t, lines[2]["id"], "a torn tap is not journaled")
	require.Equal(t, "mastercard", lines[3]["scheme"])

	out, code = run(t, "journal", "stats", "--data", filepath.Join(dir, "data"))
	require.Equal(t, 0, code, out)
	var stats map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &stats))
	require.Equal(t, map[string]any{"taps": 3.0, "opened": 2.0, "unsent": 3.0, "oldest_unsent": stats["oldest_unsent"]}, stats)
	_, err := time.Parse(time.RFC3339, stats["oldest_unsent"].(string))
	require.NoError(t, err)

	out, code = run(t, "journal", "list", "--data", filepath.Join(dir, "data"), "--unsent", "--json")
	require.Equal(t, 0, code, out)
	requireNoPANIn(t, softwarePANs(t), "journal list", []byte(out))
	var first map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &first))
	require.Equal(t, "476173******0010", first["masked_pan"])
	require.Equal(t, "G-7", first["gate"])
	require.Equal(t, false, first["uploaded"])
	require.NotContains(t, first, "sealed")
	require.Greater(t, first["sealed_bytes"].(float64), 100.0)
	require.Contains(t, first["local_time"], "+09:00", "the gate's time zone")

	// Usage errors: exit 2.
	for _, args := range [][]string{
		{"validator", "--config", config},                   // no card source
		{"validator", "--data", dir, "--cards-from", cards}, // no gate id …
		{"validator", "--config", config, "--cards-from", cards, "--location", "role=sideways"},
		{"journal", "stats", "--data", filepath.Join(dir, "nothing")},
	} {
		out, code := run(t, args...)
		require.Equal(t, 2, code, "%v: %s", args, out)
	}
}

// TestValidatorSIGTERM: SIGTERM finishes the tap under way, uploads the
// backlog and exits 0 with every printed tap journaled.
func TestValidatorSIGTERM(t *testing.T) {
	dir := t.TempDir()
	args := gateSetup(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "gate.pub"))
	require.NoError(t, err)
	pub, err := tap.ParseGatePublicKey(b)
	require.NoError(t, err)
	rc := &tapReceiver{pub: pub, stored: map[uuid.UUID]bool{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	g := startGate(t, append(args, "--backend", srv.URL, "--passback", "0"), 0)
	want := map[uuid.UUID]string{}
	for p := range g.lines {
		if p.ID != nil {
			want[*p.ID] = p.Decision
		}
		if len(want) == 30 {
			require.NoError(t, g.cmd.Process.Signal(syscall.SIGTERM))
			break
		}
	}
	for p := range g.lines {
		if p.ID != nil {
			want[*p.ID] = p.Decision
		}
	}
	<-g.done
	require.NoError(t, g.cmd.Wait(), "exit 0 after SIGTERM: %s", g.stderr.String())
	require.Contains(t, g.stderr.String(), `"msg":"draining"`)
	entries, unsent := checkJournal(t, filepath.Join(dir, "data"), want)
	require.Zero(t, unsent, "the drain uploaded the backlog")
	stored, _ := rc.count()
	require.Equal(t, entries, stored)
}
