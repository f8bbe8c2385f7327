package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
)

// liveGate is a faregate validator process fed software cards on stdin;
// each tap's JSON line comes back on its stdout.
type liveGate struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	stder *lockedBuffer
}

type tapLineJSON struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	Token    string `json:"token"`
}

func (g *liveGate) tap(t *testing.T, profile string) tapLineJSON {
	t.Helper()
	_, err := fmt.Fprintln(g.in, profile)
	require.NoError(t, err)
	require.True(t, g.out.Scan(), "validator ended: %s", g.stder.String())
	var l tapLineJSON
	require.NoError(t, json.Unmarshal(g.out.Bytes(), &l), g.out.Text())
	return l
}

// testGateUpload posts records as one signed batch, as a gate would.
func testGateUpload(t *testing.T, base, gate string, key []byte, recs []tap.Record) {
	t.Helper()
	body, err := json.Marshal(tap.Batch{Gate: gate, Taps: recs})
	require.NoError(t, err)
	req, err := http.NewRequest("POST", base+"/v1/taps", bytes.NewReader(body))
	require.NoError(t, err)
	priv, err := tap.ParseGateKey(key)
	require.NoError(t, err)
	tap.SignRequest(req, gate, priv, time.Now(), body)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
}

func startSimProc(t *testing.T, addr, rules, ledger string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	c := faregateCmd("acquirer-sim", "--listen", addr, "--rules", rules, "--ledger", ledger)
	var logs lockedBuffer
	c.Stderr = &logs
	require.NoError(t, c.Start())
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "listening on") }, 20*time.Second, 20*time.Millisecond, logs.String())
	return c, &logs
}

func stopProc(t *testing.T, c *exec.Cmd, logs *lockedBuffer) {
	t.Helper()
	require.NoError(t, c.Process.Signal(syscall.SIGTERM))
	require.NoError(t, c.Wait(), logs.String())
}

// TestChargingEndToEnd is issue 12's done-means with real processes:
// faregate backend --acquirer sends what faregate settle charged, day by
// day, to faregate acquirer-sim; the simulator's ledger holds exactly what
// faregate cap computes; a card with insufficient funds is declined,
// deny-listed, and refused by a faregate validator that syncs the list;
// once the rider has funds, the card's next tap (refused, uploaded) makes
// the back office resubmit its debts, the approval takes it off the list,
// and the gate admits it. It measures approval → gate admitting the card.
func TestChargingEndToEnd(t *testing.T) {
	if raceOn {
		t.Skip("runs four faregate processes (not race-instrumented): skipped under -race")
	}
	t.Run("sqlite", func(t *testing.T) { chargingEndToEnd(t, "") })
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("FAREGATE_TEST_POSTGRES")
		if base == "" {
			t.Skip("FAREGATE_TEST_POSTGRES unset: PostgreSQL not tested (.ci/run sets it)")
		}
		admin, err := sql.Open("pgx", base)
		require.NoError(t, err)
		name := fmt.Sprintf("faregate_e2e_%d", time.Now().UnixNano())
		_, err = admin.Exec("CREATE DATABASE " + name)
		require.NoError(t, err)
		t.Cleanup(func() {
			_, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			require.NoError(t, err)
			admin.Close()
		})
		u, err := url.Parse(base)
		require.NoError(t, err)
		u.Path = "/" + name
		chargingEndToEnd(t, u.String())
	})
}

func chargingEndToEnd(t *testing.T, pg string) {
	dir := t.TempDir()
	for _, k := range []string{"vault", "token", "denylist"} {
		out, err := faregateCmd("keys", k, "--out", dir).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	rulesPath := filepath.Join(dir, "rules.json")
	require.NoError(t, os.WriteFile(rulesPath, []byte(e2eRules), 0o644))
	opPath := filepath.Join(dir, "operator.token")
	require.NoError(t, os.WriteFile(opPath, []byte("op-e2e-secret\n"), 0o600))
	data := filepath.Join(dir, "backoffice")
	storeArgs := []string{"--data", data}
	if pg != "" {
		storeArgs = []string{"--db", pg}
	}
	for _, g := range []string{"G-LIVE", "G-PAST"} {
		gd := filepath.Join(dir, g)
		out, err := faregateCmd("keys", "gate", "--out", gd).CombinedOutput()
		require.NoError(t, err, "%s", out)
		out, err = faregateCmd(append([]string{"backend", "gates", "add", "--id", g, "--pub", filepath.Join(gd, "gate.pub")}, storeArgs...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	ctx := context.Background()
	tokenKey, err := readTokenKey(ctx, filepath.Join(dir, "token.key"))
	require.NoError(t, err)
	vaultKey, err := readVaultKey(ctx, filepath.Join(dir, "vault.key"))
	require.NoError(t, err)

	// The back office, its acquirer not up yet (it keeps trying).
	simAddr, boAddr := freeAddr(t), freeAddr(t)
	bo := faregateCmd(append(append([]string{"backend"}, storeArgs...), "--listen", boAddr, "--rules", rulesPath,
		"--vault-key", filepath.Join(dir, "vault.key"), "--token-key", filepath.Join(dir, "token.key"), "--no-settle",
		"--denylist-key", filepath.Join(dir, "denylist.key"), "--operator-token", opPath,
		"--acquirer", simAddr, "--charge-interval", "200ms", "--acquirer-timeout", "2s", "--retap-spacing", "0s")...)
	base, boLogs := startBackend(t, bo, boAddr)

	// The live gate: uploads and deny-list polls every 200 ms
	// (FAREGATE_E2E_DENYLIST_INTERVAL=20s measures the default).
	poll := "200ms"
	if v := os.Getenv("FAREGATE_E2E_DENYLIST_INTERVAL"); v != "" {
		poll = v
	}
	gd := filepath.Join(dir, "G-LIVE")
	gateMetrics := freeAddr(t)
	vc := faregateCmd("validator", "--metrics", gateMetrics, "--data", filepath.Join(gd, "data"), "--gate-id", "G-LIVE",
		"--gate-key", filepath.Join(gd, "gate.key"), "--vault-pub", filepath.Join(dir, "vault.pub"),
		"--token-key", filepath.Join(dir, "token.key"), "--test-keys", "--passback", "0",
		"--denylist-pub", filepath.Join(dir, "denylist.pub"), "--denylist-interval", poll, "--upload-interval", "200ms",
		"--location", "operator=metro,stop=North,zones=1,mode=bus,role=on,group=N", "--backend", base, "--cards-from", "-")
	gate := &liveGate{cmd: vc, stder: &lockedBuffer{}}
	vc.Stderr = gate.stder
	gate.in, err = vc.StdinPipe()
	require.NoError(t, err)
	stdout, err := vc.StdoutPipe()
	require.NoError(t, err)
	gate.out = bufio.NewScanner(stdout)
	require.NoError(t, vc.Start())
	defer vc.Process.Kill()

	// The poor rider's card taps once today: the vault gets its card data.
	first := gate.tap(t, "visa-qvsdc")
	require.Equal(t, "open", first.Decision, first.Reason)
	poor, err := rider.ParseToken(first.Token)
	require.NoError(t, err)

	// The simulated acquirer: the poor rider has insufficient funds for
	// every charge (0200); account checks (0100) pass.
	ledger := filepath.Join(dir, "ledger.jsonl")
	poorRules := filepath.Join(dir, "sim-poor.json")
	require.NoError(t, os.WriteFile(poorRules, []byte(fmt.Sprintf(`{"token_key": %q, "rules": [
		{"name": "no funds", "mti": ["0200"], "tokens": [%q], "response_code": "51"}]}`, hex.EncodeToString(tokenKey), poor)), 0o644))
	sim, simLogs := startSimProc(t, simAddr, poorRules, ledger)
	defer sim.Process.Kill()

	// A signed test gate uploads three past service days of taps: the poor
	// rider and two others, three rides a day (the day cap is reached).
	rules, err := capping.ParseRules([]byte(e2eRules))
	require.NoError(t, err)
	today := rules.ServiceDay(time.Now())
	vaultPub := vaultKey.PublicKey()
	type synth struct {
		pan   string
		token rider.Token
	}
	others := []synth{{pan: "4000001234567899"}, {pan: "5413330089010608"}}
	for i := range others {
		others[i].token = rider.NewToken(tokenKey, others[i].pan, "01")
	}
	gateKey := mustRead(t, filepath.Join(dir, "G-PAST", "gate.key"))
	var recs []tap.Record
	seq := uint64(0)
	csvPath := filepath.Join(dir, "taps.csv")
	cf, err := os.Create(csvPath)
	require.NoError(t, err)
	cw := csv.NewWriter(cf)
	require.NoError(t, cw.Write([]string{"token", "time", "mode"}))
	days := []capping.Date{today - 3, today - 2, today - 1}
	for _, d := range days {
		start, _ := backend.DayBounds(rules, d)
		for _, h := range []time.Duration{5 * time.Hour, 9 * time.Hour, 14 * time.Hour} {
			at := start.Add(h).UTC()
			for i, tk := range []rider.Token{poor, others[0].token, others[1].token} {
				seq++
				id := uuid.Must(uuid.NewV7())
				tt := at.Add(time.Duration(i) * time.Minute)
				r := tap.Record{ID: id, Gate: "G-PAST", Seq: seq, Time: tt, LocalTime: tt.Format(time.RFC3339Nano),
					Location: tap.Location{Operator: "metro", Stop: "South", Zones: []string{"1"}, Mode: "bus", Role: tap.RoleEntry, Group: "S"},
					Kind:     tap.KindEMV, Token: tk, Scheme: "visa", MaskedPAN: "400000******7899",
					ODA: tap.ODA{Method: "fDDA", OK: true}, Decision: tap.Open, Reason: "ok"}
				if i > 0 { // the poor card's data came from the live gate
					o := others[i-1]
					r.MaskedPAN = o.pan[:6] + "******" + o.pan[12:]
					track2, err := hex.DecodeString(o.pan + "D29122010000000F")
					require.NoError(t, err)
					r.Sealed, err = tap.SealCardData(vaultPub, "G-PAST", id, tap.CardData{PAN: o.pan, PSN: "01", Expiry: "291231", Track2: track2, Scheme: "visa"})
					require.NoError(t, err)
				}
				recs = append(recs, r)
				require.NoError(t, cw.Write([]string{tk.String(), r.Time.Format(time.RFC3339Nano), "bus"}))
			}
		}
	}
	cw.Flush()
	require.NoError(t, cf.Close())
	testGateUpload(t, base, "G-PAST", gateKey, recs)

	// faregate settle, one process per day; the back office's link sends
	// each day's charges as they appear.
	for _, d := range days {
		out, err := faregateCmd(append([]string{"settle", "--day", d.String(), "--rules", rulesPath}, storeArgs...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	api := func(method, path string, v any) int {
		req, err := http.NewRequest(method, base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer op-e2e-secret")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		requireNoPANIn(t, append(softwarePANs(t), others[0].pan, others[1].pan), "API answer", b)
		if v != nil && resp.StatusCode == 200 {
			require.NoError(t, json.Unmarshal(b, v), "%s", b)
		}
		return resp.StatusCode
	}
	type chargesJSON struct {
		Charges []backend.ChargeJSON `json:"charges"`
	}
	settledAll := func() (map[rider.Token][]backend.ChargeJSON, bool) {
		by := map[rider.Token][]backend.ChargeJSON{}
		for _, d := range days {
			var cs chargesJSON
			if api("GET", "/v1/charges?day="+d.String(), &cs) != 200 {
				return nil, false
			}
			for _, c := range cs.Charges {
				if c.Status == backend.ChargePending {
					return nil, false
				}
				by[c.Token] = append(by[c.Token], c)
			}
		}
		return by, len(by) == 3
	}
	var byToken map[rider.Token][]backend.ChargeJSON
	require.Eventually(t, func() bool {
		var ok bool
		byToken, ok = settledAll()
		return ok
	}, 30*time.Second, 100*time.Millisecond, boLogs.String())
	for _, c := range byToken[poor] {
		require.Equal(t, backend.ChargeDeclined, c.Status)
		require.Equal(t, "51", c.Outcome)
	}
	for _, o := range others {
		for _, c := range byToken[o.token] {
			require.Equal(t, backend.ChargeApproved, c.Status, "%+v", c)
		}
	}

	// What faregate cap says each rider owes.
	out, code := run(t, "cap", "--rules", rulesPath, "--taps", csvPath, "--json")
	require.Equal(t, 0, code, out)
	var capOut struct {
		Riders []struct {
			Token string `json:"token"`
			Total string `json:"total"`
		} `json:"riders"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &capOut))
	capTotal := map[rider.Token]capping.Amount{}
	for _, rd := range capOut.Riders {
		tk, err := rider.ParseToken(rd.Token)
		require.NoError(t, err)
		a, err := rules.Currency.ParseAmount(rd.Total)
		require.NoError(t, err)
		capTotal[tk] = a
	}
	require.Len(t, capTotal, 3)
	ledgerHeld := func() (map[rider.Token]capping.Amount, []acquirer.LedgerEntry) {
		b, err := os.ReadFile(ledger)
		require.NoError(t, err)
		es, err := acquirer.ReadLedger(bytes.NewReader(b))
		require.NoError(t, err)
		m := map[rider.Token]capping.Amount{}
		for _, e := range es {
			if e.Effect != 0 {
				require.NotNil(t, e.Token)
				m[*e.Token] += e.Effect
			}
		}
		return m, es
	}
	got, _ := ledgerHeld()
	for _, o := range others {
		require.Equal(t, capTotal[o.token], got[o.token], "the acquirer holds what capping charged")
	}
	require.Zero(t, got[poor], "nothing taken from the card without funds")

	// The declined card is on the next list version: the gate (polling
	// it) refuses it.
	gateVersion := func() int {
		resp, err := http.Get("http://" + gateMetrics + "/metrics")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "faregate_denylist_version "); ok {
				var n int
				fmt.Sscan(v, &n)
				return n
			}
		}
		return -1
	}
	require.Eventually(t, func() bool { return gateVersion() >= 1 }, 60*time.Second, 20*time.Millisecond, gate.stder.String())
	l := gate.tap(t, "visa-qvsdc")
	require.Equal(t, "reject", l.Decision)
	require.Equal(t, "denied", l.Reason)
	listed := gateVersion()
	var debt struct {
		Owed   string `json:"owed"`
		Listed bool   `json:"deny_listed"`
	}
	require.Equal(t, 200, api("GET", "/v1/riders/"+poor.String()+"/debt", &debt))
	require.Equal(t, rules.Currency.Format(capTotal[poor]), debt.Owed)
	require.True(t, debt.Listed)

	// The rider tops up: the acquirer now approves (the simulator restarts
	// on the same ledger without the rule).
	stopProc(t, sim, simLogs)
	okRules := filepath.Join(dir, "sim-ok.json")
	require.NoError(t, os.WriteFile(okRules, []byte(fmt.Sprintf(`{"token_key": %q}`, hex.EncodeToString(tokenKey))), 0o644))
	sim, simLogs = startSimProc(t, simAddr, okRules, ledger)
	defer sim.Process.Kill()

	// The card taps again: refused, uploaded; the back office resubmits
	// its debts; on approval the token leaves the list and the gate, on its
	// next poll, admits the card.
	require.Equal(t, "reject", gate.tap(t, "visa-qvsdc").Decision)
	require.Eventually(t, func() bool {
		got, _ := ledgerHeld()
		return got[poor] == capTotal[poor]
	}, 60*time.Second, 20*time.Millisecond, boLogs.String())
	require.Eventually(t, func() bool { return gateVersion() > listed }, 60*time.Second, 20*time.Millisecond, gate.stder.String())
	admitted := time.Now()
	require.Equal(t, "open", gate.tap(t, "visa-qvsdc").Decision)
	got, es := ledgerHeld()
	require.Equal(t, capTotal[poor], got[poor], "the debt was taken in full, once")
	for tk, want := range capTotal {
		require.Equal(t, want, got[tk], "rider %s", tk)
	}
	var approved time.Time
	for _, e := range es {
		if e.Token != nil && *e.Token == poor && e.MTI == "0200" && e.ResponseCode == "00" && e.Time.After(approved) {
			approved = e.Time
		}
	}
	require.False(t, approved.IsZero())
	latency := admitted.Sub(approved)
	require.Less(t, latency, 5*time.Minute)
	t.Logf("approval of the last debt → the gate admits the card: %v (gate polls every %s, back office link every 200 ms)", latency.Round(time.Millisecond), poll)
	require.Equal(t, 200, api("GET", "/v1/riders/"+poor.String()+"/debt", &debt))
	require.Equal(t, rules.Currency.Format(0), debt.Owed)
	require.False(t, debt.Listed)

	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(metrics), `faregate_backend_acquirer_charges_total{result="declined"} `)
	require.Contains(t, string(metrics), "faregate_backend_acquirer_retap_resubmissions_total ")

	// No PAN anywhere outside the vault: logs, tables, the ledger holds
	// masked PANs only.
	require.NoError(t, gate.in.Close())
	require.NoError(t, vc.Wait(), gate.stder.String())
	stopProc(t, sim, simLogs)
	require.NoError(t, bo.Process.Signal(syscall.SIGTERM))
	require.NoError(t, bo.Wait(), boLogs.String())
	pans := append(softwarePANs(t), others[0].pan, others[1].pan)
	requireNoPANIn(t, pans, "back office log", []byte(boLogs.String()))
	requireNoPANIn(t, pans, "gate log", []byte(gate.stder.String()))
	requireNoPANIn(t, pans, "acquirer-sim log", []byte(simLogs.String()))
	requireNoPANIn(t, pans, "ledger", mustRead(t, ledger))
	if pg != "" {
		requireNoPANIn(t, pans, "PostgreSQL tables", postgresText(t, pg))
		return
	}
	files, err := filepath.Glob(filepath.Join(data, "*"))
	require.NoError(t, err)
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			requireNoPANIn(t, pans, f, b)
		}
	}
}

// postgresText is every row of every table of the database, as text, with
// bytea values decoded.
func postgresText(t *testing.T, dsn string) []byte {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		tables = append(tables, n)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Contains(t, tables, "vault")
	hexRun := regexp.MustCompile(`\\+x([0-9a-f]+)`)
	var out bytes.Buffer
	for _, tb := range tables {
		rows, err := db.Query(fmt.Sprintf(`SELECT CAST(t AS TEXT) FROM %q t`, tb))
		require.NoError(t, err)
		for rows.Next() {
			var v string
			require.NoError(t, rows.Scan(&v))
			out.WriteString(v)
			for _, m := range hexRun.FindAllStringSubmatch(v, -1) {
				if b, err := hex.DecodeString(m[1][:len(m[1])&^1]); err == nil {
					out.Write(b)
				}
			}
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	require.Contains(t, out.String(), `"masked_pan"`, "the taps' records (bytea) were decoded")
	return out.Bytes()
}
