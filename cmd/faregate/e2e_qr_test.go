package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/tap"
)

// TestQRGateToCharge: QR fares end to end with the real processes. A card
// tap at one gate enrols a rider (card data in the vault); the rider gets a
// device credential through 'faregate qr issue --backend'; two 'faregate
// validator --qr-from' gates scan the rider's codes — one of them a copy
// of a code the other gate took — and upload to 'faregate backend
// --qr-key'. The back office confirms the real taps, refuses the copy as a
// replay, and settles the rider's card and QR taps together through the
// caps, equal to the capping engine on the confirmed legs; the charge goes
// to the acquirer (faregate acquirer-sim) on the rider's card, like any
// card rider's.
func TestQRGateToCharge(t *testing.T) {
	if raceOn {
		t.Skip("runs several faregate processes (not race-instrumented): skipped under -race")
	}
	dir := t.TempDir()
	for _, k := range []string{"vault", "token", "qr", "denylist"} {
		out, err := faregateCmd("keys", k, "--out", dir).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	rulesPath := filepath.Join(dir, "rules.json")
	require.NoError(t, os.WriteFile(rulesPath, []byte(e2eRules), 0o644))
	operator := filepath.Join(dir, "operator")
	require.NoError(t, os.WriteFile(operator, []byte("op-token\n"), 0o600))
	data := filepath.Join(dir, "backoffice")
	gateIDs := []string{"G-CARD", "G-A", "G-B"}
	for _, id := range gateIDs {
		gd := filepath.Join(dir, id)
		out, err := faregateCmd("keys", "gate", "--out", gd).CombinedOutput()
		require.NoError(t, err, "%s", out)
		out, err = faregateCmd("backend", "gates", "add", "--id", id, "--pub", filepath.Join(gd, "gate.pub"), "--data", data).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	ledger := filepath.Join(dir, "ledger.jsonl")
	simAddr, stop := startSim(t, "--ledger", ledger)
	var simOnce sync.Once
	simCode := -1
	stopSim := func() int { simOnce.Do(func() { simCode = stop() }); return simCode }
	defer stopSim()
	addr := freeAddr(t)
	bo := faregateCmd("backend", "--data", data, "--listen", addr, "--rules", rulesPath, "--no-settle",
		"--vault-key", filepath.Join(dir, "vault.key"), "--token-key", filepath.Join(dir, "token.key"),
		"--operator-token", operator, "--qr-key", filepath.Join(dir, "qr-issuer.key"),
		"--denylist-key", filepath.Join(dir, "denylist.key"), "--acquirer", simAddr, "--charge-interval", "50ms")
	base, boLogs := startBackend(t, bo, addr)

	gate := func(id string, extra ...string) []tap.Record {
		t.Helper()
		gd := filepath.Join(dir, id)
		args := append([]string{"validator", "--data", filepath.Join(gd, "data"), "--gate-id", id,
			"--gate-key", filepath.Join(gd, "gate.key"), "--vault-pub", filepath.Join(dir, "vault.pub"),
			"--token-key", filepath.Join(dir, "token.key"), "--test-keys", "--passback", "0",
			"--location", "operator=metro,stop=" + id + ",zones=1,mode=bus,role=on,group=" + id,
			"--backend", base, "--upload-interval", "50ms"}, extra...)
		out, err := faregateCmd(args...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		out, err = faregateCmd("journal", "list", "--data", filepath.Join(gd, "data"), "--json").Output()
		require.NoError(t, err)
		var recs []tap.Record
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var r tap.Record
			require.NoError(t, json.Unmarshal([]byte(line), &r))
			recs = append(recs, r)
		}
		return recs
	}

	// The card tap: it enrols the rider.
	cards := filepath.Join(dir, "cards.txt")
	require.NoError(t, os.WriteFile(cards, []byte("visa-qvsdc\n"), 0o644))
	cardTaps := gate("G-CARD", "--cards-from", cards)
	require.Len(t, cardTaps, 1)
	require.Equal(t, tap.Open, cardTaps[0].Decision)
	token := cardTaps[0].Token

	device := filepath.Join(dir, "device.json")
	out, code := run(t, "qr", "issue", "--backend", base, "--operator-token", operator, "--token", token.String(),
		"--out", device, "--valid", "24h", "--from", time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
	require.Equal(t, 0, code, out)

	// Gate A scans two fresh codes; gate B a copy of the first.
	now := time.Now()
	first, second := gateQRCode(t, device, now.Add(-2*time.Second)), gateQRCode(t, device, now.Add(-time.Second))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte(first+"\n"+second+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.txt"), []byte(first+"\n"), 0o644))
	aTaps := gate("G-A", "--qr-issuer", filepath.Join(dir, "qr-issuer.pub"), "--qr-from", filepath.Join(dir, "a.txt"))
	bTaps := gate("G-B", "--qr-issuer", filepath.Join(dir, "qr-issuer.pub"), "--qr-from", filepath.Join(dir, "b.txt"))
	require.Len(t, aTaps, 2)
	require.Len(t, bTaps, 1)
	for _, r := range append(aTaps, bTaps...) {
		require.Equal(t, tap.Open, r.Decision, "each gate opens: it cannot know what the other saw")
		require.True(t, r.Provisional)
	}
	ctx := context.Background()
	s, err := backend.OpenSQLite(ctx, data)
	require.NoError(t, err)
	defer s.Close()
	rules, err := capping.ParseRules([]byte(e2eRules))
	require.NoError(t, err)
	stored, err := s.Taps(ctx, token, time.Time{}, now.Add(time.Hour))
	require.NoError(t, err)
	outcomes := map[string]backend.StoredTap{}
	for _, st := range stored {
		outcomes[st.ID.String()] = st
	}
	require.Len(t, outcomes, 4, "the card tap and the three QR taps")
	for _, r := range aTaps {
		require.Equal(t, backend.QRConfirmed, outcomes[r.ID.String()].QROutcome)
	}
	require.Equal(t, backend.QRRefused, outcomes[bTaps[0].ID.String()].QROutcome)
	require.Equal(t, "replay", outcomes[bTaps[0].ID.String()].QRReason)

	// Settle the day(s): the card tap and the two confirmed QR taps, capped.
	legs := []capping.Tap{}
	for _, r := range append(cardTaps, aTaps...) {
		legs = append(legs, capping.Tap{Token: r.Token.String(), Time: r.Time, Mode: r.Location.Mode, Category: r.Category})
	}
	var rd capping.Rider
	require.NoError(t, capping.NewEngine(rules).Rate(&rd, legs))
	first2, last := rules.ServiceDay(cardTaps[0].Time), rules.ServiceDay(bTaps[0].Time)
	_, end := backend.DayBounds(rules, last)
	st := &backend.Settler{Store: s, Rules: rules, Now: func() time.Time { return end.Add(time.Minute) }}
	var charged capping.Amount
	for d := first2; d <= last; d++ {
		_, err := st.Settle(ctx, d, backend.Shard{I: 0, N: 1})
		require.NoError(t, err)
		cs, err := s.RiderCharges(ctx, token)
		require.NoError(t, err)
		charged = 0
		for _, c := range cs {
			charged += c.Amount
		}
	}
	require.Equal(t, rd.Total, charged)
	require.Equal(t, "2.50", rules.Currency.Format(charged), "three rides at 1.00, capped at 2.50 a day")

	// The running back office sends the charge to the acquirer, on the
	// card in the vault.
	require.Eventually(t, func() bool {
		cs, err := s.RiderCharges(ctx, token)
		return err == nil && len(cs) > 0 && cs[len(cs)-1].Status == backend.ChargeApproved
	}, 20*time.Second, 50*time.Millisecond, boLogs.String())
	require.NoError(t, bo.Process.Signal(syscall.SIGTERM))
	require.NoError(t, bo.Wait(), boLogs.String())
	require.Equal(t, 0, stopSim())
	b, err := os.ReadFile(ledger)
	require.NoError(t, err)
	es, err := acquirer.ReadLedger(bytes.NewReader(b))
	require.NoError(t, err)
	var sent capping.Amount
	for _, e := range es {
		if e.MTI == "0200" && e.ResponseCode == "00" {
			sent += capping.Amount(e.Amount)
			require.Equal(t, cardTaps[0].MaskedPAN, e.MaskedPAN)
		}
	}
	require.Equal(t, charged, sent, "the acquirer charged the rider's card the settled amount")
}
