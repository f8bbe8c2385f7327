package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
)

// recordReceiver is POST /v1/taps on the contract's own code, keeping the
// records it stored.
type recordReceiver struct {
	pub ed25519.PublicKey
	mu  sync.Mutex
	got map[uuid.UUID]tap.Record
}

func (rc *recordReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/taps" {
		http.NotFound(w, req) // the deny-list sync: nothing here
		return
	}
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
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var ack tap.Ack
	for _, r := range b.Taps {
		rc.got[r.ID] = r
		ack.Stored = append(ack.Stored, r.ID)
	}
	json.NewEncoder(w).Encode(ack) //nolint:errcheck // test server
}

// qrLine is a line the daemon printed.
type qrLine struct {
	ID       *uuid.UUID `json:"id"`
	Decision string     `json:"decision"`
	Reason   string     `json:"reason"`
	Token    *string    `json:"token"`
	Scheme   string     `json:"scheme"`
	Message  string     `json:"message"`
}

// runQRGate runs the daemon on stdin's lines and returns what it printed.
func runQRGate(t *testing.T, args []string, stdin string) ([]qrLine, string) {
	t.Helper()
	cmd := faregateCmd(append([]string{"validator"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s", stderr.String())
	var lines []qrLine
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var l qrLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), sc.Text())
		var keys map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &keys))
		require.Len(t, keys, 7, "the contract's seven keys: %s", sc.Text())
		lines = append(lines, l)
	}
	return lines, stdout.String() + stderr.String()
}

// gateQRCode makes the device's next code at time at with 'faregate qr show'.
func gateQRCode(t *testing.T, device string, at time.Time) string {
	t.Helper()
	out, code := run(t, "qr", "show", "--device", device, "--text", "--at", at.UTC().Format(time.RFC3339))
	require.Equal(t, 0, code, out)
	return strings.TrimSpace(out)
}

func qrIssue(t *testing.T, key, token, out string, from time.Time, valid string) {
	t.Helper()
	o, code := run(t, "qr", "issue", "--key", key, "--token", token, "--out", out, "--category", "child",
		"--from", from.UTC().Format(time.RFC3339), "--valid", valid)
	require.Equal(t, 0, code, o)
}

// TestValidatorQR runs the gate daemon with a QR scanner on stdin next to
// software cards: accepted, expired, forged, replayed (also after a
// restart), skewed and deny-listed codes; the journal and the back office
// hold the QR taps with their payloads.
func TestValidatorQR(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"gate", "vault", "token", "qr", "denylist"} {
		out, code := run(t, "keys", k, "--out", dir)
		require.Equal(t, 0, code, out)
	}
	issuerKey := filepath.Join(dir, "qr-issuer.key")
	// A retired issuer key the gate still trusts, beside the current one.
	retired := t.TempDir()
	out, code := run(t, "keys", "qr", "--out", retired)
	require.Equal(t, 0, code, out)

	now := time.Now()
	alice, bob, old, paul := rider.NewToken([]byte("k"), "alice", "00"), rider.NewToken([]byte("k"), "bob", "00"),
		rider.NewToken([]byte("k"), "old", "00"), rider.NewToken([]byte("k"), "paul", "00")
	devA, devB, devOld, devExp, devPaul := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json"),
		filepath.Join(dir, "old.json"), filepath.Join(dir, "exp.json"), filepath.Join(dir, "paul.json")
	qrIssue(t, issuerKey, alice.String(), devA, now.Add(-time.Hour), "24h")
	qrIssue(t, issuerKey, bob.String(), devB, now.Add(-time.Hour), "24h")
	qrIssue(t, issuerKey, paul.String(), devPaul, now.Add(-time.Hour), "24h")
	qrIssue(t, filepath.Join(retired, "qr-issuer.key"), old.String(), devOld, now.Add(-time.Hour), "24h")
	qrIssue(t, issuerKey, alice.String(), devExp, now.Add(-48*time.Hour), "24h")

	// Bob is deny-listed: the replica's snapshot lists his token.
	data := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(filepath.Join(data, "denylist"), 0o700))
	tokens := filepath.Join(dir, "deny.txt")
	require.NoError(t, os.WriteFile(tokens, []byte(bob.String()+"\n"), 0o600))
	out, code = run(t, "denylist", "build", "--tokens", tokens, "--key", filepath.Join(dir, "denylist.key"),
		"--version", "1", "--out", filepath.Join(data, "denylist", denylist.SnapshotFile))
	require.Equal(t, 0, code, out)

	// Forgeries made with the library: a credential signed by a stranger
	// under the issuer's key id, and a code whose device signature is off.
	issuerPub := readPub(t, filepath.Join(dir, "qr-issuer.pub"))
	seed := sha256.Sum256([]byte("mallory"))
	mk := ed25519.NewKeyFromSeed(seed[:])
	mal := qr.Device{Key: mk, Credential: qr.Credential{Token: rider.NewToken([]byte("k"), "mallory", "00"),
		Device: qr.DeviceKey(mk.Public().(ed25519.PublicKey)), NotBefore: now.Add(-time.Hour).Truncate(time.Second),
		NotAfter: now.Add(time.Hour).Truncate(time.Second)}}
	require.NoError(t, mal.Credential.Sign(mk))
	mal.Credential.KeyID = qr.KeyIDOf(issuerPub)
	forged, err := mal.Code(now, 1, nil)
	require.NoError(t, err)
	badSig, err := qr.Parse(gateQRCode(t, devPaul, now))
	require.NoError(t, err)
	tampered := badSig.Payload()
	tampered[len(tampered)-1] ^= 1

	rc := &recordReceiver{pub: readGatePub(t, filepath.Join(dir, "gate.pub")), got: map[uuid.UUID]tap.Record{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	cards := filepath.Join(dir, "cards.txt")
	require.NoError(t, os.WriteFile(cards, []byte("visa-qvsdc\nmastercard-cda\n"), 0o644))
	args := []string{"--data", data, "--gate-id", "G-QR", "--gate-key", filepath.Join(dir, "gate.key"),
		"--vault-pub", filepath.Join(dir, "vault.pub"), "--token-key", filepath.Join(dir, "token.key"),
		"--test-keys", "--date", "2026-11-23", "--location", "operator=TfL,stop=Bank,role=on,group=BANK",
		"--backend", srv.URL, "--upload-interval", "50ms", "--denylist-pub", filepath.Join(dir, "denylist.pub"),
		"--qr-issuer", filepath.Join(dir, "qr-issuer.pub"), "--qr-issuer", filepath.Join(retired, "qr-issuer.pub"),
		"--qr-window", "60", "--log-format", "json"}

	first := gateQRCode(t, devA, now.Add(-time.Second))
	scans := []struct {
		text, reason string
		journaled    bool
	}{
		{first, "ok", true},
		{first, "replay", true},
		{gateQRCode(t, devOld, now), "ok", true}, // the retired key still verifies
		{gateQRCode(t, devExp, now), "expired", true},
		{qr.Text(forged), "bad_issuer_signature", true},
		{qr.Text(tampered), "bad_device_signature", true},
		{gateQRCode(t, devPaul, now.Add(90*time.Second)), "clock_skew", true},
		{gateQRCode(t, devPaul, now.Add(-90*time.Second)), "clock_skew", true},
		{gateQRCode(t, devB, now), "revoked", true},
		{"hello, scanner", "malformed", false},
		{gateQRCode(t, devA, now), "already_tapped", true}, // pass-back: alice again, a fresh code
	}
	var stdin strings.Builder
	for i, s := range scans {
		stdin.WriteString(s.text)
		if i%2 == 0 {
			stdin.WriteString("\r\n") // serial scanners
		} else {
			stdin.WriteString("\r") // keyboard-wedge scanners
		}
	}
	lines, logs := runQRGate(t, append(args, "--cards-from", cards, "--qr-from", "-"), stdin.String())
	require.Len(t, lines, len(scans)+2)
	var qrLines []qrLine
	cardsSeen := 0
	for _, l := range lines {
		if l.Scheme == "qr" {
			qrLines = append(qrLines, l)
		} else {
			cardsSeen++
			require.Equal(t, "open", l.Decision, "cards tapped beside the scanner")
		}
	}
	require.Equal(t, 2, cardsSeen)
	require.Len(t, qrLines, len(scans))
	ids := map[uuid.UUID]string{}
	for i, s := range scans {
		l := qrLines[i]
		require.Equal(t, s.reason, l.Reason, "scan %d: %+v", i, l)
		require.NotEmpty(t, l.Message)
		if s.reason == "ok" {
			require.Equal(t, "open", l.Decision)
			require.Equal(t, "Go ahead", l.Message)
			require.NotNil(t, l.Token)
		} else {
			require.Equal(t, "reject", l.Decision)
		}
		require.Equal(t, s.journaled, l.ID != nil, "scan %d", i)
		if l.ID != nil {
			ids[*l.ID] = s.text
		}
	}
	require.Equal(t, alice.String(), *qrLines[0].Token)
	require.Nil(t, qrLines[4].Token, "a forged credential's token is not trusted")
	require.Equal(t, bob.String(), *qrLines[8].Token)
	require.Equal(t, "Code declined – see staff", qrLines[8].Message)
	require.Equal(t, "Code already used – show a fresh code", qrLines[1].Message)

	// The journal holds every QR tap with its payload, and so does the
	// back office (the daemon uploads before it exits).
	checkQRTaps := func(rec func(uuid.UUID) (tap.Record, bool)) {
		for id, text := range ids {
			r, ok := rec(id)
			require.True(t, ok, "tap %s", id)
			require.Equal(t, tap.KindQR, r.Kind)
			require.True(t, r.Provisional)
			require.Equal(t, "qr", r.Scheme)
			c, err := qr.Parse(text)
			require.NoError(t, err)
			require.Equal(t, c.Payload(), r.QR)
			require.Empty(t, r.Sealed)
		}
	}
	journal := map[uuid.UUID]tap.Record{}
	out, code = run(t, "journal", "list", "--data", data, "--json")
	require.Equal(t, 0, code, out)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			tap.Record
		}
		require.NoError(t, json.Unmarshal([]byte(l), &r), l)
		journal[r.ID] = r.Record
	}
	require.Len(t, journal, len(ids)+2)
	checkQRTaps(func(id uuid.UUID) (tap.Record, bool) { r, ok := journal[id]; return r, ok })
	require.Equal(t, "child", journal[*qrLines[0].ID].Category)
	rc.mu.Lock()
	got := rc.got
	rc.mu.Unlock()
	require.Len(t, got, len(ids)+2, "the back office stored every tap")
	checkQRTaps(func(id uuid.UUID) (tap.Record, bool) { r, ok := got[id]; return r, ok })

	// A restart remembers: alice's first code is a replay, and her pass-back
	// holds; a new rider passes.
	lines, _ = runQRGate(t, append(args, "--qr-from", "-"),
		first+"\n"+gateQRCode(t, devA, time.Now())+"\n"+gateQRCode(t, devPaul, time.Now())+"\n")
	require.Len(t, lines, 3)
	require.Equal(t, "replay", lines[0].Reason)
	require.Equal(t, "already_tapped", lines[1].Reason)
	require.Equal(t, "ok", lines[2].Reason)

	pans := softwarePANs(t)
	requireNoPANIn(t, pans, "logs and stdout", []byte(logs))
	scanJournalFiles(t, pans, data)
}

// TestValidatorQRSocket: a scanner bridge connects to unix:PATH and writes
// codes; the gate decides them; the source serves a second connection.
func TestValidatorQRSocket(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"vault", "token", "qr"} {
		out, code := run(t, "keys", k, "--out", dir)
		require.Equal(t, 0, code, out)
	}
	dev := filepath.Join(dir, "a.json")
	qrIssue(t, filepath.Join(dir, "qr-issuer.key"), rider.NewToken([]byte("k"), "a", "00").String(), dev, time.Now().Add(-time.Hour), "24h")
	sock := filepath.Join(dir, "scanner.sock")
	metrics := freeAddr(t)
	cmd := faregateCmd("validator", "--metrics", metrics, "--data", filepath.Join(dir, "data"), "--gate-id", "G-S",
		"--vault-pub", filepath.Join(dir, "vault.pub"), "--token-key", filepath.Join(dir, "token.key"),
		"--qr-issuer", filepath.Join(dir, "qr-issuer.pub"), "--qr-from", "unix:"+sock, "--passback", "0")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	defer func() {
		cmd.Process.Signal(os.Interrupt) //nolint:errcheck // stopping it
		cmd.Wait()                       //nolint:errcheck // stopped
	}()
	var conn net.Conn
	require.Eventually(t, func() bool {
		conn, err = net.Dial("unix", sock)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "%s", &stderr)
	fi, err := os.Stat(sock)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	sc := bufio.NewScanner(stdout)
	next := func() qrLine {
		require.True(t, sc.Scan(), "%s", &stderr)
		var l qrLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		return l
	}
	_, err = io.WriteString(conn, gateQRCode(t, dev, time.Now())+"\r")
	require.NoError(t, err)
	require.Equal(t, "ok", next().Reason)
	_, err = conn.Write(append(bytes.Repeat([]byte("A"), 3*maxQRLine), '\n'))
	require.NoError(t, err)
	l := next()
	require.Equal(t, "malformed", l.Reason, "an overlong line is cut and refused")
	require.Nil(t, l.ID)
	conn.Close()
	// The bridge reconnects.
	conn, err = net.Dial("unix", sock)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, gateQRCode(t, dev, time.Now())+"\n")
	require.NoError(t, err)
	require.Equal(t, "ok", next().Reason)

	resp, err := http.Get("http://" + metrics + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	for _, m := range []string{`faregate_taps_total{decision="open",reason="ok",scheme="qr"} 2`,
		`faregate_taps_total{decision="reject",reason="malformed",scheme="qr"} 1`,
		"faregate_qr_verified_total 2", `faregate_qr_refused_total{reason="malformed"} 1`,
		"faregate_qr_replay_devices 1", "faregate_qr_replay_evicted_total 0"} {
		require.Contains(t, string(body), m+"\n")
	}
}

func readPub(t *testing.T, path string) ed25519.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	k, err := denylist.ParsePublicKey(b)
	require.NoError(t, err)
	return k
}

func readGatePub(t *testing.T, path string) ed25519.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	k, err := tap.ParseGatePublicKey(b)
	require.NoError(t, err)
	return k
}

// FuzzQRLines: whatever a scanner sends, the lines presented are
// non-empty, hold no CR or LF, are bounded, and are the input's bytes in
// order.
func FuzzQRLines(f *testing.F) {
	seeds := []string{"FQ:ABC\r\n", "\r\r\n\n", "a\rb\nc", strings.Repeat("Z", 2*maxQRLine) + "\nok\n", ""}
	// Real codes, as a serial scanner (CRLF) and a keyboard wedge (CR) send them.
	seed := sha256.Sum256([]byte("fuzz issuer"))
	ik := ed25519.NewKeyFromSeed(seed[:])
	d := qr.Device{Key: ik, Credential: qr.Credential{Device: qr.DeviceKey(ik.Public().(ed25519.PublicKey)),
		NotBefore: time.Unix(1_790_000_000, 0), NotAfter: time.Unix(1_800_000_000, 0)}}
	if err := d.Credential.Sign(ik); err != nil {
		f.Fatal(err)
	}
	for i := range uint32(2) {
		b, err := d.Code(time.Unix(1_795_000_000, 0), i, nil)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, qr.Text(b)+"\r\n"+qr.Text(b)+"\r")
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		q := newQRLines(t.Context(), bytes.NewReader(in))
		var got []string
		for {
			p, err := q.Next(t.Context())
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			require.NotEmpty(t, p.QR)
			require.LessOrEqual(t, len(p.QR), maxQRLine)
			require.False(t, strings.ContainsAny(p.QR, "\r\n"))
			got = append(got, p.QR)
		}
		var want []string
		for _, l := range strings.FieldsFunc(string(in), func(r rune) bool { return r == '\r' || r == '\n' }) {
			want = append(want, l[:min(len(l), maxQRLine)])
		}
		require.Equal(t, want, got)
	})
}

// TestValidatorQRUsage: QR flags that cannot work are usage errors.
func TestValidatorQRUsage(t *testing.T) {
	base := []string{"validator", "--data", t.TempDir(), "--gate-id", "G", "--vault-pub", "v", "--token-key", "k"}
	for _, args := range [][]string{
		{"--qr-from", "-"}, // no issuer key
		{"--qr-issuer", "x.pub", "--test-keys", "--cards-from", "-"}, // issuer without scanner
		{"--qr-from", "-", "--qr-issuer", "x.pub", "--qr-window", "0"},
		{"--qr-from", "-", "--qr-issuer", "x.pub", "--cards-from", "-", "--test-keys"},
	} {
		out, code := run(t, append(base, args...)...)
		require.Equal(t, 2, code, "%v: %s", args, out)
	}
}

// TestValidatorQRConfigFile: the QR settings from the config file, codes
// read from a file (as from a serial device), and --qr-window applied.
func TestValidatorQRConfigFile(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"vault", "token", "qr"} {
		out, code := run(t, "keys", k, "--out", dir)
		require.Equal(t, 0, code, out)
	}
	dev := filepath.Join(dir, "a.json")
	qrIssue(t, filepath.Join(dir, "qr-issuer.key"), rider.NewToken([]byte("k"), "a", "00").String(), dev, time.Now().Add(-time.Hour), "24h")
	now := time.Now()
	codes := filepath.Join(dir, "scanner")
	require.NoError(t, os.WriteFile(codes, []byte(gateQRCode(t, dev, now.Add(-45*time.Second))+"\r\n"+
		gateQRCode(t, dev, now.Add(-5*time.Second))+"\r\n"), 0o600))
	config := filepath.Join(dir, "gate.json")
	require.NoError(t, os.WriteFile(config, []byte(`{"data": "`+filepath.Join(dir, "data")+`", "gate_id": "G-F",
  "vault_pub": "`+filepath.Join(dir, "vault.pub")+`", "token_key": "`+filepath.Join(dir, "token.key")+`",
  "qr_from": "`+codes+`", "qr_issuer": ["`+filepath.Join(dir, "qr-issuer.pub")+`"], "qr_window": 30}`), 0o644))
	out, code := run(t, "validator", "--config", config)
	require.Equal(t, 0, code, out)
	var reasons []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "{") {
			var q qrLine
			require.NoError(t, json.Unmarshal([]byte(l), &q), l)
			require.Equal(t, "qr", q.Scheme)
			reasons = append(reasons, q.Reason)
		}
	}
	require.Equal(t, []string{"clock_skew", "ok"}, reasons, "a 45 s old code is outside a 30 s window")
	// The flag overrides the file.
	require.NoError(t, os.WriteFile(codes, []byte(gateQRCode(t, dev, time.Now().Add(-45*time.Second))+"\n"), 0o600))
	out, code = run(t, "validator", "--config", config, "--qr-window", "60", "--passback", "0")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, `"reason":"ok"`)
}
