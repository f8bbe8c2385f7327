package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/tap"
	"github.com/stretchr/testify/require"
)

// startSim runs "faregate acquirer-sim" in process until stop is called.
func startSim(t *testing.T, args ...string) (addr string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	var stderr lockedBuffer
	root.SetOut(&stderr)
	root.SetErr(&stderr)
	root.SetArgs(append([]string{"acquirer-sim", "--listen", "127.0.0.1:0"}, args...))
	code := make(chan int, 1)
	go func() { code <- exitCode(root.ExecuteContext(ctx)) }()
	re := regexp.MustCompile(`listening on (\S+)`)
	for i := 0; ; i++ {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case c := <-code:
			t.Fatalf("acquirer-sim exited with %d: %s", c, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return addr, func() int { cancel(); return <-code }
}

func TestAcquirerSim(t *testing.T) {
	dir := t.TempDir()
	rules, ledger := filepath.Join(dir, "rules.json"), filepath.Join(dir, "ledger.jsonl")
	require.NoError(t, os.WriteFile(rules, []byte(`{"rules":[{"pan_ranges":[{"from":"5413","to":"5413"}],"response_code":"51","mac":"24"}]}`), 0o600))
	addr, stop := startSim(t, "--rules", rules, "--ledger", ledger)

	gbp := capping.Currency{Code: "GBP", Digits: 2}
	c, err := acquirer.Dial(context.Background(), acquirer.Options{Addr: addr, Merchant: acquirer.Merchant{AcquirerID: "1", ID: "M1", Name: "FAREGATE"}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Do(ctx, acquirer.Request{Reference: "a", Terminal: "G1", Amount: 290, Currency: gbp, Card: tap.CardData{PAN: "4761739001010119"}})
	require.NoError(t, err)
	require.Equal(t, "00", r.Code)
	r, err = c.Do(ctx, acquirer.Request{Reference: "b", Terminal: "G1", Amount: 560, Currency: gbp, Card: tap.CardData{PAN: "5413330089010434"}})
	require.NoError(t, err)
	require.Equal(t, "51", r.Code)
	require.Equal(t, "24", r.MAC)
	c.Close()
	require.Equal(t, 0, stop())

	b, err := os.ReadFile(ledger)
	require.NoError(t, err)
	require.NotContains(t, string(b), "4761739001010119")
	es, err := acquirer.ReadLedger(bytes.NewReader(b))
	require.NoError(t, err)
	var charges []acquirer.LedgerEntry
	for _, e := range es {
		if e.MTI == "0200" {
			charges = append(charges, e)
		}
	}
	require.Len(t, charges, 2)
	require.Equal(t, "476173******0119", charges[0].MaskedPAN)
	require.Equal(t, "00", charges[0].ResponseCode)
	require.EqualValues(t, 290, charges[0].Amount)
	require.Equal(t, "51", charges[1].ResponseCode)
	require.False(t, charges[0].Time.IsZero())
	require.NotEmpty(t, charges[0].STAN)

	// Restarted on the same ledger, the simulator still reverses the first
	// charge.
	addr, stop = startSim(t, "--ledger", ledger)
	c, err = acquirer.Dial(context.Background(), acquirer.Options{Addr: addr, Merchant: acquirer.Merchant{AcquirerID: "1", ID: "M1", Name: "FAREGATE"}})
	require.NoError(t, err)
	require.NoError(t, c.Reverse(ctx, acquirer.Original{MTI: "0200", STAN: charges[0].STAN, Transmitted: charges[0].Transmission, RRN: "a", Terminal: "G1", Amount: 290, Currency: gbp}))
	c.Close()
	require.Equal(t, 0, stop())
	b, err = os.ReadFile(ledger)
	require.NoError(t, err)
	es, err = acquirer.ReadLedger(bytes.NewReader(b))
	require.NoError(t, err)
	var last acquirer.LedgerEntry
	for _, e := range es {
		if e.MTI == "0400" {
			last = e
		}
	}
	require.Equal(t, charges[0].STAN, last.OriginalSTAN)
	require.EqualValues(t, -290, last.Effect)
}

func TestAcquirerSimUsage(t *testing.T) {
	_, code := run(t, "acquirer-sim")
	require.Equal(t, 2, code)
	dir := t.TempDir()
	bad := filepath.Join(dir, "rules.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"rules":[{"respons_code":"51"}]}`), 0o600))
	out, code := run(t, "acquirer-sim", "--rules", bad, "--ledger", filepath.Join(dir, "l"))
	require.Equal(t, 2, code, out)
}
