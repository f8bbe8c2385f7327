package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
)

// e2eRules: a $1.00 ride capped at $2.50 a day and $6.00 a week, so a rider
// who taps three times a day reaches the cap.
const e2eRules = `{
  "currency": "USD", "time_zone": "America/New_York", "service_day_start": "03:00", "week_start": "monday",
  "fares": [{"id": "ride", "price": "1.00"}],
  "caps": [
    {"id": "day", "amount": "2.50", "period": {"kind": "service_day"}},
    {"id": "week", "amount": "6.00", "period": {"kind": "calendar_week"}}
  ]
}`

// TestGateToCharge is the system end to end: two real faregate validator
// processes (software cards, real journals, sealed card data) upload to a
// real faregate backend process; the back office's settlement of the days
// gives every rider exactly what faregate cap computes on the taps the
// gates journaled; and the vault opens the card data of a charged rider.
func TestGateToCharge(t *testing.T) {
	if raceOn {
		t.Skip("runs three faregate processes (not race-instrumented): skipped under -race")
	}
	dir := t.TempDir()
	for _, k := range []string{"vault", "token"} {
		out, err := faregateCmd("keys", k, "--out", dir).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	rulesPath := filepath.Join(dir, "rules.json")
	require.NoError(t, os.WriteFile(rulesPath, []byte(e2eRules), 0o644))
	data := filepath.Join(dir, "backoffice")
	gates := []struct{ id, dir, location, cards string }{
		{"G-NORTH", filepath.Join(dir, "north"), "operator=metro,stop=North,zones=1,mode=rail,role=on,group=N",
			"visa-qvsdc\nmastercard-cda\nvisa-qvsdc\namex-cda\nfault-bad-sdad\nvisa-qvsdc\nmastercard-cda\n"},
		{"G-SOUTH", filepath.Join(dir, "south"), "operator=metro,stop=South,zones=1,mode=bus,role=on,group=S",
			"mastercard-cda\nvisa-qvsdc\ndiscover-dda\nfault-expired-card\nmastercard-cda\njcb-dda\n"},
	}
	for _, g := range gates {
		out, err := faregateCmd("keys", "gate", "--out", g.dir).CombinedOutput()
		require.NoError(t, err, "%s", out)
		out, err = faregateCmd("backend", "gates", "add", "--id", g.id, "--pub", filepath.Join(g.dir, "gate.pub"), "--data", data).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.NoError(t, os.WriteFile(filepath.Join(g.dir, "cards.txt"), []byte(g.cards), 0o644))
	}

	addr := freeAddr(t)
	bo := faregateCmd("backend", "--data", data, "--listen", addr, "--rules", rulesPath,
		"--vault-key", filepath.Join(dir, "vault.key"), "--token-key", filepath.Join(dir, "token.key"), "--no-settle")
	base, boLogs := startBackend(t, bo, addr)

	// Both gates tap their cards at once and upload as they go; each drains
	// its backlog when its card stream ends.
	errs := make(chan error, len(gates))
	for _, g := range gates {
		go func() {
			out, err := faregateCmd("validator", "--data", filepath.Join(g.dir, "data"), "--gate-id", g.id,
				"--gate-key", filepath.Join(g.dir, "gate.key"), "--vault-pub", filepath.Join(dir, "vault.pub"),
				"--token-key", filepath.Join(dir, "token.key"), "--test-keys", "--passback", "0",
				"--location", g.location, "--backend", base, "--cards-from", filepath.Join(g.dir, "cards.txt")).CombinedOutput()
			if err != nil {
				err = fmt.Errorf("%s: %w\n%s", g.id, err, out)
			}
			errs <- err
		}()
	}
	for range gates {
		require.NoError(t, <-errs)
	}

	// What the gates journaled, every tap acknowledged.
	var journaled []tap.Record
	for _, g := range gates {
		out, err := faregateCmd("journal", "stats", "--data", filepath.Join(g.dir, "data")).Output()
		require.NoError(t, err)
		var stats struct{ Taps, Unsent int }
		require.NoError(t, json.Unmarshal(out, &stats))
		require.Zero(t, stats.Unsent, "%s: every tap acknowledged by the back office", g.id)
		out, err = faregateCmd("journal", "list", "--data", filepath.Join(g.dir, "data"), "--json").Output()
		require.NoError(t, err)
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var r tap.Record
			require.NoError(t, json.Unmarshal([]byte(line), &r))
			journaled = append(journaled, r)
		}
	}
	require.NoError(t, bo.Process.Signal(syscall.SIGTERM))
	require.NoError(t, bo.Wait(), boLogs.String())

	// faregate cap on the journaled legs.
	csvPath := filepath.Join(dir, "taps.csv")
	f, err := os.Create(csvPath)
	require.NoError(t, err)
	w := csv.NewWriter(f)
	require.NoError(t, w.Write([]string{"token", "time", "mode"}))
	legs := 0
	for _, r := range journaled {
		if r.Decision == tap.Open && !r.Token.IsZero() && r.Location.Role != tap.RoleExit {
			require.NoError(t, w.Write([]string{r.Token.String(), r.Time.Format(time.RFC3339Nano), r.Location.Mode}))
			legs++
		}
	}
	w.Flush()
	require.NoError(t, f.Close())
	require.GreaterOrEqual(t, legs, 10)
	out, code := run(t, "cap", "--rules", rulesPath, "--taps", csvPath, "--json")
	require.Equal(t, 0, code, out)
	var capOut struct {
		Riders []struct {
			Token string `json:"token"`
			Total string `json:"total"`
		} `json:"riders"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &capOut))

	// The back office settles every service day the taps fall on (the
	// clock just after the last one ends: the same code as faregate settle).
	ctx := context.Background()
	s, err := backend.OpenSQLite(ctx, data)
	require.NoError(t, err)
	defer s.Close()
	rules, err := capping.ParseRules([]byte(e2eRules))
	require.NoError(t, err)
	first, last := rules.ServiceDay(journaled[0].Time), rules.ServiceDay(journaled[0].Time)
	for _, r := range journaled {
		first, last = min(first, rules.ServiceDay(r.Time)), max(last, rules.ServiceDay(r.Time))
	}
	_, end := backend.DayBounds(rules, last)
	st := &backend.Settler{Store: s, Rules: rules, Now: func() time.Time { return end.Add(time.Minute) }}
	charged := map[string]capping.Amount{}
	for d := first; d <= last; d++ {
		_, err := st.Settle(ctx, d, backend.Shard{I: 0, N: 1})
		require.NoError(t, err)
		cs, err := s.Charges(ctx, d)
		require.NoError(t, err)
		for _, c := range cs {
			charged[c.Token.String()] += c.Amount
		}
	}
	require.Len(t, charged, len(capOut.Riders))
	capped := 0
	for _, rd := range capOut.Riders {
		require.Equal(t, rd.Total, rules.Currency.Format(charged[rd.Token]), "rider %s", rd.Token)
		if rd.Total == "2.50" {
			capped++
		}
	}
	require.Positive(t, capped, "some rider reached the day cap")
	t.Logf("%d taps journaled by %d gates, %d legs, %d riders: every rider's charges equal faregate cap's (%d capped at the day cap)",
		len(journaled), len(gates), legs, len(capOut.Riders), capped)

	// The vault opens the card behind a charged token, and it hashes to it.
	tokenKey, err := readTokenKey(ctx, filepath.Join(dir, "token.key"))
	require.NoError(t, err)
	vaultKey, err := readVaultKey(ctx, filepath.Join(dir, "vault.key"))
	require.NoError(t, err)
	v := backend.NewVault(s, vaultKey, tokenKey)
	tk, err := rider.ParseToken(capOut.Riders[0].Token)
	require.NoError(t, err)
	card, err := v.CardData(ctx, tk)
	require.NoError(t, err)
	require.Equal(t, tk, rider.NewToken(tokenKey, card.PAN, card.PSN))
	requireNoPANIn(t, softwarePANs(t), "back office log", []byte(boLogs.String()))
	for _, name := range []string{"backoffice.db", "backoffice.db-wal"} {
		if b, err := os.ReadFile(filepath.Join(data, name)); err == nil {
			requireNoPANIn(t, softwarePANs(t), name, b)
		}
	}
}
