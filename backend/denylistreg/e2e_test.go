package denylistreg

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/denylist/dlsync"
	"github.com/stretchr/testify/require"
)

// TestDenylistReachesGates runs the back office's handler and three gates
// polling it: a late decline reaches every gate, and so does the debt
// recovery that lifts it.
func TestDenylistReachesGates(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newTestRegistry(t, stores()["sqlite"](t), &testClock{t0})
	_, err := r.Import(ctx, []denylist.Token{tok(1), tok(2)}, ReasonImport, "migration")
	require.NoError(t, err)
	handler, err := r.NewServer(dlsync.ServerOptions{})
	require.NoError(t, err)
	srv := httptest.NewServer(handler)
	defer srv.Close()

	var gates []*denylist.Replica
	var wg sync.WaitGroup
	for range 3 {
		rep, err := denylist.OpenReplica(ctx, t.TempDir(), denylist.ReplicaConfig{ListID: "test", PublicKey: r.PublicKey()})
		require.NoError(t, err)
		gates = append(gates, rep)
		s, err := dlsync.NewClient(dlsync.ClientOptions{
			Source:   &dlsync.HTTPSource{BaseURL: srv.URL},
			Replica:  rep,
			Interval: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond,
		})
		require.NoError(t, err)
		wg.Go(func() { s.Run(ctx) })
	}
	allGates := func(want bool, t0 denylist.Token) func() bool {
		return func() bool {
			for _, g := range gates {
				if g.Contains(t0) != want {
					return false
				}
			}
			return true
		}
	}
	require.Eventually(t, allGates(true, tok(1)), 5*time.Second, 5*time.Millisecond)

	_, err = r.AddLateDecline(ctx, tok(3), 450, eur, t0, "settlement")
	require.NoError(t, err)
	require.Eventually(t, allGates(true, tok(3)), 5*time.Second, 5*time.Millisecond)
	_, err = r.Remove(ctx, tok(1), ReasonDebtRecovered, "payments")
	require.NoError(t, err)
	require.Eventually(t, allGates(false, tok(1)), 5*time.Second, 5*time.Millisecond)
	for _, g := range gates {
		require.Equal(t, r.Current().Version(), g.List().Version())
		require.True(t, g.Contains(tok(2)))
	}
	cancel()
	wg.Wait()
}
