package acquirer_test

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"testing"
	"time"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/backend/denylistreg"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/stretchr/testify/require"
)

// newRegistry opens the back office's deny-list registry on a fresh SQLite
// store: the only lines that name the back office's types.
func newRegistry(t *testing.T) *denylistreg.Registry {
	ctx := context.Background()
	store, err := denylistreg.OpenSQLite(ctx, filepath.Join(t.TempDir(), "denylist.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	_, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	reg, err := denylistreg.New(ctx, store, denylistreg.Options{Key: key})
	require.NoError(t, err)
	return reg
}

// TestLateDeclineOntoTheDenyList: a charge declined for insufficient funds
// puts the token on the registry's next signed version with its debt; the
// resubmission approved a day later takes it off in the version after.
func TestLateDeclineOntoTheDenyList(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)

	var ledger syncBuffer
	bo := newBackOffice()
	poor := bo.addRider(t, "4761739001010127")
	_, addr := startHost(t, acquirer.Rules{TokenKey: hexOf(testTokenKey), Rules: []acquirer.Rule{
		{Tokens: []rider.Token{poor}, ResponseCode: "51", Times: 1},
	}}, &ledger, nil)
	client := dial(t, addr, acquirer.Options{})
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	ch := acquirer.NewCharger(client, bo, bo, bo, acquirer.RegistryDenyList(reg), acquirer.ChargerOptions{Now: func() time.Time { return now }})

	v0 := reg.Current().Version()
	bo.pending["c1"] = acquirer.Charge{ID: "c1", Token: poor, Amount: 730, Currency: gbp, Gate: "gate-1"}
	_, err := ch.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, acquirer.StatusDeclined, bo.outcomes["c1"].Status)
	require.True(t, reg.Current().Contains(poor), "the next version lists the token")
	require.Equal(t, v0+1, reg.Current().Version())
	e, ok, err := reg.Entry(ctx, poor)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 730, e.Owed)
	require.Equal(t, "GBP", e.Currency)

	now = now.Add(24 * time.Hour)
	d := bo.outcomes["c1"].Decision
	bo.pending["c1"] = acquirer.Charge{ID: "c1", Token: poor, Amount: 730, Currency: gbp, Gate: "gate-1",
		History: acquirer.History{FirstDeclinedAt: d.FirstDeclinedAt, DeclinesSinceApproval: 1}}
	_, err = ch.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, acquirer.StatusApproved, bo.outcomes["c1"].Status)
	require.False(t, reg.Current().Contains(poor), "the version after takes it off")
	require.Equal(t, v0+2, reg.Current().Version())
	require.Equal(t, map[string]capping.Amount{"c1": 730}, held(ledger.entries(t)))
}
