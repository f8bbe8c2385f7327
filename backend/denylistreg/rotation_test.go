package denylistreg

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/denylist/dlsync"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestKeyRotation rotates the deny-list signing key end to end through the
// sync protocol: the old key announces the new one, the gate trusts both
// (across a restart), the back office switches, the gate follows and
// retires the old key. Unannounced keys and forged announcements are
// refused and the gate keeps its last good list.
func TestKeyRotation(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) { testKeyRotation(t, open(t)) })
	}
}

func testKeyRotation(t *testing.T, store Store) {
	ctx := context.Background()
	clock := &testClock{t0}
	oldKey := testKey
	oldPub := oldKey.Public().(ed25519.PublicKey)
	newKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize))
	newPub := newKey.Public().(ed25519.PublicKey)
	rogue := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	roguePub := rogue.Public().(ed25519.PublicKey)

	open := func(st Store, o Options) *Registry {
		t.Helper()
		o.ListID, o.Now = "test", clock.now
		r, err := New(ctx, st, o)
		require.NoError(t, err)
		return r
	}
	serve := func(r *Registry, o dlsync.ServerOptions) string {
		t.Helper()
		h, err := r.NewServer(o)
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	dir := t.TempDir()
	openGate := func() *denylist.Replica {
		t.Helper()
		g, err := denylist.OpenReplica(ctx, dir, denylist.ReplicaConfig{ListID: "test", PublicKey: oldPub})
		require.NoError(t, err)
		return g
	}
	var reg *prometheus.Registry
	sync := func(g *denylist.Replica, url string) error {
		t.Helper()
		clock.t = clock.t.Add(2 * time.Minute) // a new head each time
		reg = prometheus.NewRegistry()
		m, err := dlsync.NewMetrics(reg)
		require.NoError(t, err)
		c, err := dlsync.NewClient(dlsync.ClientOptions{Source: &dlsync.HTTPSource{BaseURL: url}, Replica: g, Now: clock.now, Metrics: m})
		require.NoError(t, err)
		return c.SyncOnce(ctx)
	}
	trusts := func(g *denylist.Replica, want ...ed25519.PublicKey) {
		t.Helper()
		require.ElementsMatch(t, want, g.TrustedKeys())
	}
	trustedMetric := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "faregate_denylist_trusted_keys" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no faregate_denylist_trusted_keys")
		return 0
	}

	// Version 1 under the old key.
	r := open(store, Options{Key: oldKey})
	_, err := r.Import(ctx, []denylist.Token{tok(1)}, ReasonImport, "migration")
	require.NoError(t, err)
	gate := openGate()
	require.NoError(t, sync(gate, serve(r, dlsync.ServerOptions{})))
	require.True(t, gate.Contains(tok(1)))
	trusts(gate, oldPub)

	// A forged announcement (head signed by an unknown key naming itself)
	// and a list signed by an unannounced key are refused; the gate keeps
	// its list and its trust.
	other := open(stores()["sqlite"](t), Options{Key: rogue})
	_, err = other.Import(ctx, []denylist.Token{tok(1)}, ReasonImport, "x")
	require.NoError(t, err)
	_, err = other.Import(ctx, []denylist.Token{tok(9)}, ReasonImport, "x")
	require.NoError(t, err)
	err = sync(gate, serve(other, dlsync.ServerOptions{NextKey: roguePub}))
	require.ErrorIs(t, err, denylist.ErrSignature)
	require.Equal(t, uint64(1), gate.List().Version())
	require.False(t, gate.Contains(tok(9)))
	trusts(gate, oldPub)
	// The old key's statement announcing the new key, re-signed by a rogue
	// key: refused too.
	err = sync(gate, serve(r, dlsync.ServerOptions{Key: rogue, NextKey: newPub}))
	require.ErrorIs(t, err, denylist.ErrSignature)
	trusts(gate, oldPub)

	// Announce: the old key signs heads naming the new key.
	r = open(store, Options{Key: oldKey, NextKey: newPub})
	require.NoError(t, sync(gate, serve(r, dlsync.ServerOptions{})))
	trusts(gate, oldPub, newPub)
	require.Equal(t, 2.0, trustedMetric())
	_, err = os.Stat(filepath.Join(dir, denylist.TrustFile))
	require.NoError(t, err)

	// A restart mid-overlap keeps the announced key.
	gate = openGate()
	trusts(gate, oldPub, newPub)
	require.True(t, gate.Contains(tok(1)))

	// Switch: the new key signs; the stored version was signed by the old.
	_, err = New(ctx, store, Options{ListID: "test", Key: newKey, Now: clock.now})
	require.ErrorIs(t, err, denylist.ErrInconsistent, "without the previous key the stored version is refused")
	r = open(store, Options{Key: newKey, PreviousKeys: []ed25519.PublicKey{oldPub}})
	url := serve(r, dlsync.ServerOptions{})
	// The first head under the new key confirms the list; the old key
	// still signs the gate's snapshot, so the gate fetches the new key's.
	require.NoError(t, sync(gate, url))
	trusts(gate, oldPub, newPub)
	require.NoError(t, sync(gate, url))
	trusts(gate, newPub) // retired
	require.Equal(t, 1.0, trustedMetric())
	_, err = r.AddLateDecline(ctx, tok(3), 450, eur, t0, "settlement")
	require.NoError(t, err)
	require.NoError(t, sync(gate, url))
	require.True(t, gate.Contains(tok(3)))
	require.True(t, gate.Contains(tok(1)))

	// The old key is no longer trusted: its statements are refused.
	old := open(stores()["sqlite"](t), Options{Key: oldKey, NextKey: newPub})
	for i := range 3 {
		_, err = old.Import(ctx, []denylist.Token{tok(10 + i)}, ReasonImport, "x")
		require.NoError(t, err)
	}
	err = sync(gate, serve(old, dlsync.ServerOptions{}))
	require.ErrorIs(t, err, denylist.ErrSignature)
	require.Equal(t, r.Current().Version(), gate.List().Version())
	require.False(t, gate.Contains(tok(10)))

	// After a restart the gate still trusts only the new key, configured
	// with the old one, and loads its list.
	gate = openGate()
	trusts(gate, newPub)
	require.True(t, gate.Contains(tok(3)))
	require.NoError(t, sync(gate, url))

	// The back office reopens under the new key alone once it has
	// published under it.
	again := open(store, Options{Key: newKey})
	require.Equal(t, r.Current().Version(), again.Current().Version())
}
