package denylistreg

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/denylist/dlsync"
	"github.com/stretchr/testify/require"
)

// stores are the store implementations the registry tests run on:
// SQLite, and PostgreSQL when FAREGATE_TEST_POSTGRES names a server (each
// test gets a database of its own).
func stores() map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"sqlite": func(t *testing.T) Store {
			s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "denylist.db"))
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			return s
		},
		"postgres": func(t *testing.T) Store {
			s, err := OpenPostgres(context.Background(), testPostgresDB(t))
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			return s
		},
	}
}

// testPostgresDB creates a database on the server FAREGATE_TEST_POSTGRES
// names and drops it when the test ends; it skips without the variable.
func testPostgresDB(t testing.TB) string {
	base := os.Getenv("FAREGATE_TEST_POSTGRES")
	if base == "" {
		t.Skip("FAREGATE_TEST_POSTGRES unset: PostgreSQL store not tested (.ci/run sets it)")
	}
	admin, err := sql.Open("pgx", base)
	require.NoError(t, err)
	name := fmt.Sprintf("faregate_dl_test_%d_%d", time.Now().UnixNano(), rand.IntN(1e6))
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
	return u.String()
}

// rawDB is a store's database, for tests that look behind the registry.
func rawDB(s Store) (*sql.DB, func(string) string) {
	switch s := s.(type) {
	case *SQLiteStore:
		return s.db, s.q
	case *PostgresStore:
		return s.db, s.q
	}
	panic("unknown store")
}

var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

// newTestRegistry opens a registry; at cleanup it checks that a registry
// reopened on the same store publishes the same version.
func newTestRegistry(t *testing.T, store Store, clock *testClock) *Registry {
	t.Helper()
	opts := Options{ListID: "test", Key: testKey, Now: clock.now}
	r, err := New(context.Background(), store, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		again, err := New(context.Background(), store, opts)
		require.NoError(t, err, "store consistent at the end of the test")
		require.Equal(t, r.Current().Version(), again.Current().Version())
		require.Equal(t, r.Current().Signature(), again.Current().Signature())
	})
	return r
}

// tok returns test token i: SHA-256("token i"), truncated.
// eur is the currency of the tests' debts.
var eur = capping.Currency{Code: "EUR", Digits: 2}

func tok(i int) denylist.Token {
	h := sha256.Sum256([]byte("token " + strconv.Itoa(i)))
	return denylist.Token(h[:16])
}

// collidingToken returns a different token with t's fingerprint.
func collidingToken(t denylist.Token, salt uint64) denylist.Token {
	var u denylist.Token
	lo := binary.BigEndian.Uint64(t[8:]) ^ salt
	binary.BigEndian.PutUint64(u[8:], lo)
	binary.BigEndian.PutUint64(u[:8], denylist.Fingerprint(t)^lo*0x9E3779B97F4A7C15)
	return u
}

var t0 = time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)

func TestRegistryLifecycle(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clock := &testClock{t0}
			r := newTestRegistry(t, open(t), clock)
			require.Equal(t, uint64(0), r.Current().Version())

			declined := t0.Add(-48 * time.Hour)
			v, err := r.AddLateDecline(ctx, tok(1), 290, eur, declined, "settlement 2026-11-21")
			require.NoError(t, err)
			require.Equal(t, uint64(1), v)
			require.True(t, r.Current().Contains(tok(1)))
			e, ok, err := r.Entry(ctx, tok(1))
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, Entry{
				Token: tok(1), Reason: ReasonLateDecline, Actor: "settlement 2026-11-21", Owed: 290,
				Currency: "EUR", DeclinedAt: declined, ListedAt: t0, Version: 1,
			}, e)

			// Listing it again changes nothing: no new version.
			v, err = r.AddLateDecline(ctx, tok(1), 500, eur, t0, "settlement 2026-11-22")
			require.NoError(t, err)
			require.Equal(t, uint64(1), v)
			e, _, _ = r.Entry(ctx, tok(1))
			require.Equal(t, capping.Amount(290), e.Owed)

			clock.t = t0.Add(time.Minute)
			v, err = r.Import(ctx, []denylist.Token{tok(2), tok(3), tok(1), tok(2)}, ReasonImport, "migration")
			require.NoError(t, err)
			require.Equal(t, uint64(2), v)
			require.Equal(t, 3, r.Current().Len())

			v, err = r.Remove(ctx, tok(1), ReasonDebtRecovered, "payments")
			require.NoError(t, err)
			require.Equal(t, uint64(3), v)
			require.False(t, r.Current().Contains(tok(1)))
			_, ok, err = r.Entry(ctx, tok(1))
			require.NoError(t, err)
			require.False(t, ok)
			v, err = r.Remove(ctx, tok(9), ReasonOperator, "ops")
			require.NoError(t, err)
			require.Equal(t, uint64(3), v, "removing an absent token is no change")

			// Add and remove in one batch: no net change, no version.
			v, err = r.Apply(ctx, []Change{
				{Token: tok(5), Reason: ReasonOperator}, {Token: tok(5), Remove: true, Reason: ReasonOperator},
			})
			require.NoError(t, err)
			require.Equal(t, uint64(3), v)
			_, err = r.Apply(ctx, []Change{{Token: tok(6)}})
			require.ErrorIs(t, err, ErrNoReason)

			// The audit trail keeps every change.
			db, _ := rawDB(r.store)
			var events int
			require.NoError(t, db.QueryRow(`SELECT count(*) FROM denylist_events`).Scan(&events))
			require.Equal(t, 4, events) // add 1, add 2, add 3, remove 1
			var reason string
			require.NoError(t, db.QueryRow(`SELECT reason FROM denylist_events WHERE action = 'remove'`).Scan(&reason))
			require.Equal(t, ReasonDebtRecovered, reason)
		})
	}
}

// TestDenylistRegistryDeltas is the back-office property test: after random
// batches, the delta from every retained version, applied to the list the
// gate holds at that version, gives the current snapshot byte for byte —
// including tokens that share a fingerprint.
func TestRegistryDeltas(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clock := &testClock{t0}
			r := newTestRegistry(t, open(t), clock)
			rng := rand.New(rand.NewPCG(1, 2))
			pool := make([]denylist.Token, 0, 60)
			for i := range 50 {
				pool = append(pool, tok(i))
			}
			for i := range 10 { // five pairs of colliding tokens
				pool = append(pool, collidingToken(pool[i%5], uint64(i+1)))
			}
			versions := map[uint64]*denylist.List{}
			for range 40 {
				var batch []Change
				for range 1 + rng.IntN(8) {
					batch = append(batch, Change{Token: pool[rng.IntN(len(pool))], Remove: rng.IntN(2) == 0, Reason: ReasonOperator})
				}
				clock.t = clock.t.Add(time.Minute)
				_, err := r.Apply(ctx, batch)
				require.NoError(t, err)
				versions[r.Current().Version()] = r.Current()
			}
			cur := r.Current()
			require.Greater(t, cur.Version(), uint64(20))
			want := &bytes.Buffer{}
			require.NoError(t, r.WriteSnapshot(want))

			deltas := 0
			for v, old := range versions {
				if v == cur.Version() {
					continue
				}
				b, err := r.Delta(ctx, v)
				require.NoError(t, err)
				if b == nil {
					continue // a snapshot is smaller
				}
				deltas++
				d, err := denylist.ReadDelta(bytes.NewReader(b), pub)
				require.NoError(t, err)
				next, err := old.Apply(d)
				require.NoError(t, err, "delta from %d", v)
				got := &bytes.Buffer{}
				require.NoError(t, next.WriteVerified(got, pub), "delta from %d", v)
				require.Equal(t, want.Bytes(), got.Bytes())
			}
			require.Greater(t, deltas, 10)
			// The gate-side set holds exactly the listed tokens' fingerprints.
			listed, err := r.store.Entries(ctx, pool)
			require.NoError(t, err)
			for _, tk := range pool {
				_, in := listed[tk]
				require.Equal(t, in || anyListedWithFingerprint(listed, tk), cur.Contains(tk))
			}
		})
	}
}

func anyListedWithFingerprint(listed map[denylist.Token]Entry, t denylist.Token) bool {
	for u := range listed {
		if denylist.Fingerprint(u) == denylist.Fingerprint(t) {
			return true
		}
	}
	return false
}

func TestRegistryCollisions(t *testing.T) {
	ctx := context.Background()
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			r := newTestRegistry(t, open(t), &testClock{t0})
			a := tok(1)
			b := collidingToken(a, 42)
			require.NotEqual(t, a, b)
			require.Equal(t, denylist.Fingerprint(a), denylist.Fingerprint(b))
			_, err := r.Import(ctx, []denylist.Token{a, b}, ReasonImport, "")
			require.NoError(t, err)
			require.Equal(t, 1, r.Current().Len())
			_, err = r.Remove(ctx, a, ReasonDebtRecovered, "")
			require.NoError(t, err)
			require.True(t, r.Current().Contains(b), "b still listed: the fingerprint stays")
			require.Equal(t, uint64(2), r.Current().Version())
			_, err = r.Remove(ctx, b, ReasonDebtRecovered, "")
			require.NoError(t, err)
			require.Equal(t, 0, r.Current().Len())
		})
	}
}

// TestDenylistRetention: changes are kept for Retain; a gate older than
// that gets a snapshot, a gate offline for a week a delta.
func TestRetention(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) { testRetention(t, open(t)) })
	}
}

func testRetention(t *testing.T, store Store) {
	ctx := context.Background()
	pub := testKey.Public().(ed25519.PublicKey)
	clock := &testClock{t0}
	r := newTestRegistry(t, store, clock)
	lists := map[uint64]*denylist.List{}
	for day := range 15 {
		clock.t = t0.Add(time.Duration(day) * 24 * time.Hour)
		for i := range 4 {
			_, err := r.AddLateDecline(ctx, tok(day*10+i), 100, eur, clock.t, "s")
			require.NoError(t, err)
			lists[r.Current().Version()] = r.Current()
		}
	}
	head := r.Current().Version() // 60, created on day 14
	// Day 14 now: versions created before day 6 (more than 8 days ago)
	// are pruned, except the newest of them: 24 (day 5) is the oldest base.
	require.Equal(t, uint64(24), r.head.Load().deltasFrom)
	for _, tt := range []struct {
		since    uint64
		snapshot bool
	}{{1, true}, {23, true}, {24, false}, {28, false}, {59, false}} {
		b, err := r.Delta(ctx, tt.since)
		require.NoError(t, err)
		require.Equal(t, tt.snapshot, b == nil, "since %d", tt.since)
		if b != nil {
			d, err := denylist.ReadDelta(bytes.NewReader(b), pub)
			require.NoError(t, err)
			next, err := lists[tt.since].Apply(d)
			require.NoError(t, err)
			require.NoError(t, next.Verify(pub))
			require.Equal(t, head, next.Version())
		}
	}
	var rows int
	db, _ := rawDB(store)
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM denylist_changes WHERE version <= 24`).Scan(&rows))
	require.Zero(t, rows)
	// A gate that went offline a week ago (day 7, version 32) catches up by delta.
	b, err := r.Delta(ctx, 32)
	require.NoError(t, err)
	require.NotNil(t, b)
}

func TestRegistryRefusesTamperedStore(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) { testRegistryRefusesTamperedStore(t, open(t)) })
	}
}

func testRegistryRefusesTamperedStore(t *testing.T, store Store) {
	ctx := context.Background()
	opts := Options{ListID: "test", Key: testKey, Now: (&testClock{t0}).now}
	r, err := New(ctx, store, opts)
	require.NoError(t, err)
	_, err = r.Import(ctx, []denylist.Token{tok(1), tok(2)}, ReasonImport, "")
	require.NoError(t, err)
	// Someone deletes a row behind the registry's back.
	t1 := tok(1)
	db, q := rawDB(store)
	_, err = db.Exec(q(`DELETE FROM denylist_entries WHERE token = ?`), t1[:])
	require.NoError(t, err)
	_, err = New(ctx, store, opts)
	require.ErrorIs(t, err, denylist.ErrInconsistent)
	other := opts
	other.ListID = "other"
	_, err = New(ctx, store, other)
	require.ErrorIs(t, err, denylist.ErrInconsistent)
	_, err = New(ctx, store, Options{})
	require.Error(t, err)
}

func TestServer(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t0}
	r := newTestRegistry(t, stores()["sqlite"](t), clock)
	handler, err := r.NewServer(dlsync.ServerOptions{})
	require.NoError(t, err)
	srv := httptest.NewServer(handler)
	defer srv.Close()
	get := func(query, inm string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/denylist"+query, nil)
		require.NoError(t, err)
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	// Nothing published: a gate at 0 is up to date.
	require.Equal(t, http.StatusNoContent, get("?since=0", "").StatusCode)

	var tokens []denylist.Token
	for i := range 20 {
		tokens = append(tokens, tok(i))
	}
	_, err = r.Import(ctx, tokens, ReasonImport, "")
	require.NoError(t, err)
	clock.t = clock.t.Add(time.Minute)
	_, err = r.AddLateDecline(ctx, tok(100), 100, eur, t0, "s")
	require.NoError(t, err)

	resp := get("", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, denylist.MediaType, resp.Header.Get("Content-Type"))
	require.Equal(t, `"test-0-2-s"`, resp.Header.Get("ETag"))
	require.Equal(t, "public, max-age=10", resp.Header.Get("Cache-Control"))
	require.Equal(t, strconv.Itoa(denylist.HeaderSize+8*21+64), resp.Header.Get("Content-Length"))
	pub := r.PublicKey()
	snap, err := denylist.ReadSnapshot(resp.Body, pub)
	require.NoError(t, err)
	require.Equal(t, uint64(2), snap.Version())

	resp = get("?since=1", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, `"test-1-2-d"`, resp.Header.Get("ETag"))
	d, err := denylist.ReadDelta(resp.Body, pub)
	require.NoError(t, err)
	require.Equal(t, uint64(1), d.From)
	require.Len(t, d.Add, 1)

	require.Equal(t, http.StatusNotModified, get("?since=1", `W/"x", "test-1-2-d"`).StatusCode)
	resp = get("?since=2", "")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, http.StatusNotModified, get("?since=2", resp.Header.Get("ETag")).StatusCode)
	require.Equal(t, http.StatusConflict, get("?since=3", "").StatusCode)
	require.Equal(t, http.StatusBadRequest, get("?since=x", "").StatusCode)
	require.Equal(t, http.StatusBadRequest, get("?since=-1", "").StatusCode)

	head, err := http.Head(srv.URL + "/v1/denylist?since=1")
	require.NoError(t, err)
	head.Body.Close()
	require.Equal(t, http.StatusOK, head.StatusCode)

	// The signed head names the current version and its content, and is
	// re-signed after HeadInterval.
	resp = get("/head", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, denylist.HeadMediaType, resp.Header.Get("Content-Type"))
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	h, err := denylist.ParseHead(b, pub)
	require.NoError(t, err)
	require.Equal(t, denylist.Head{ListID: "test", Version: 2, Issued: clock.t, Expires: clock.t.Add(15 * time.Minute),
		ContentHash: r.Current().ContentHash()}, h)
	clock.t = clock.t.Add(30 * time.Second)
	b2, err := io.ReadAll(get("/head", "").Body)
	require.NoError(t, err)
	require.Equal(t, b, b2, "the same statement within HeadInterval")
	clock.t = clock.t.Add(31 * time.Second)
	b2, err = io.ReadAll(get("/head", "").Body)
	require.NoError(t, err)
	h2, err := denylist.ParseHead(b2, pub)
	require.NoError(t, err)
	require.Equal(t, clock.t, h2.Issued)
	require.Equal(t, http.StatusNotFound, get("/other", "").StatusCode)

	// Served through std ServeMux patterns.
	mux := http.NewServeMux()
	mux.Handle("GET "+dlsync.ListPath, handler)
	mux.Handle("GET "+dlsync.HeadPath, handler)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/denylist", nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

// TestRegistryListing: the listing, the debt and the versions the operator
// console shows, on both stores.
func TestRegistryListing(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clock := &testClock{t0}
			r := newTestRegistry(t, open(t), clock)
			n, owed, err := r.Debt(ctx)
			require.NoError(t, err)
			require.Zero(t, n)
			require.Empty(t, owed)
			_, ok, err := r.Version(ctx, 1)
			require.NoError(t, err)
			require.False(t, ok)

			_, err = r.AddLateDecline(ctx, tok(1), 290, eur, t0.Add(-time.Hour), "settlement")
			require.NoError(t, err)
			clock.t = t0.Add(time.Minute)
			_, err = r.AddLateDecline(ctx, tok(2), 1010, eur, t0, "settlement")
			require.NoError(t, err)
			clock.t = t0.Add(2 * time.Minute)
			_, err = r.Import(ctx, []denylist.Token{tok(3)}, ReasonImport, "migration")
			require.NoError(t, err)

			es, err := r.ListEntries(ctx, 10)
			require.NoError(t, err)
			require.Len(t, es, 3)
			require.Equal(t, []denylist.Token{tok(3), tok(2), tok(1)}, []denylist.Token{es[0].Token, es[1].Token, es[2].Token}, "newest first")
			require.Equal(t, capping.Amount(1010), es[1].Owed)
			es, err = r.ListEntries(ctx, 1)
			require.NoError(t, err)
			require.Len(t, es, 1)

			n, owed, err = r.Debt(ctx)
			require.NoError(t, err)
			require.Equal(t, 3, n)
			require.Equal(t, map[string]int64{"EUR": 1300}, owed)

			v, ok, err := r.Version(ctx, 2)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, uint64(2), v.Version)
			require.Equal(t, t0.Add(time.Minute), v.Created)
			require.Equal(t, 2, v.Entries)
		})
	}
}
