package backend

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// testStores are the stores the conformance suite runs on: SQLite always,
// PostgreSQL when FAREGATE_TEST_POSTGRES holds a URL (each test gets a
// database of its own, dropped at the end).
func testStores(t *testing.T) map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"sqlite": func(t *testing.T) Store {
			s, err := OpenSQLite(context.Background(), t.TempDir())
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			return s
		},
		"postgres": func(t *testing.T) Store {
			dsn := testPostgresDB(t)
			s, err := OpenPostgres(context.Background(), dsn)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			return s
		},
	}
}

// forEachStore runs f as a subtest on every store.
func forEachStore(t *testing.T, f func(t *testing.T, s Store)) {
	for name, open := range testStores(t) {
		t.Run(name, func(t *testing.T) { f(t, open(t)) })
	}
}

// testPostgresDB creates a fresh database on the server FAREGATE_TEST_POSTGRES
// names, drops it when the test ends, and returns its URL; it skips the
// test when the variable is unset.
func testPostgresDB(t testing.TB) string {
	base := os.Getenv("FAREGATE_TEST_POSTGRES")
	if base == "" {
		t.Skip("FAREGATE_TEST_POSTGRES unset: PostgreSQL store not tested (.ci/run sets it)")
	}
	admin, err := sql.Open("pgx", base)
	require.NoError(t, err)
	name := fmt.Sprintf("faregate_test_%d_%d", time.Now().UnixNano(), rand.IntN(1e6))
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

var st0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

func testRecord(t testing.TB, gate string, seq uint64, token rider.Token, at time.Time) tap.Record {
	t.Helper()
	return tap.Record{
		ID: uuid.Must(uuid.NewV7()), Gate: gate, Seq: seq, Time: at, LocalTime: at.Format(time.RFC3339Nano),
		Location: tap.Location{Operator: "metro", Stop: "Central", Zones: []string{"1", "2"}, Mode: "rail", Role: tap.RoleEntry},
		Kind:     tap.KindEMV, Token: token, MaskedPAN: "476173******0010", Scheme: "visa",
		ODA: tap.ODA{Method: "fDDA", OK: true}, Decision: tap.Open, Reason: "ok", DenylistVersion: 3,
		Sealed: []byte{1, 2, byte(seq)},
	}
}

func testToken(i int) rider.Token {
	return rider.NewToken([]byte("test token key"), fmt.Sprintf("47617390%08d", i), "00")
}

func TestStoreGates(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		pub, _, _ := ed25519.GenerateKey(nil)
		require.NoError(t, s.AddGate(ctx, "G-2", pub, st0))
		require.NoError(t, s.AddGate(ctx, "G-1", pub, st0))
		require.ErrorIs(t, s.AddGate(ctx, "G-1", pub, st0), ErrGateExists)
		require.NoError(t, s.SetGateDisabled(ctx, "G-2", true))
		require.ErrorIs(t, s.SetGateDisabled(ctx, "G-9", true), ErrNoGate)
		gs, err := s.Gates(ctx)
		require.NoError(t, err)
		require.Len(t, gs, 2)
		require.Equal(t, "G-1", gs[0].ID)
		require.Equal(t, pub, gs[0].Key)
		require.False(t, gs[0].Disabled)
		require.True(t, gs[1].Disabled)
		require.True(t, gs[0].Added.Equal(st0))
		require.True(t, gs[0].LastSeen.IsZero())
	})
}

func TestStoreBatches(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		pub, _, _ := ed25519.GenerateKey(nil)
		require.NoError(t, s.AddGate(ctx, "G-1", pub, st0))
		tk := testToken(1)
		a := &tap.Batch{Gate: "G-1", Backlog: 5, DenylistVersion: 3}
		for i := range 3 {
			a.Taps = append(a.Taps, testRecord(t, "G-1", uint64(i+1), tk, st0.Add(time.Duration(i)*time.Minute)))
		}
		rej := testRecord(t, "G-1", 4, rider.Token{}, st0.Add(5*time.Minute))
		rej.Decision, rej.Reason, rej.Sealed = tap.Reject, "oda_failed", nil
		a.Taps = append(a.Taps, rej)
		oldest := st0.Add(10 * time.Minute)
		b := &tap.Batch{Gate: "G-1", Taps: []tap.Record{a.Taps[2], testRecord(t, "G-1", 5, tk, st0.Add(20*time.Minute))}, Backlog: 3, OldestUnsent: &oldest, DenylistVersion: 4}

		recv := st0.Add(time.Hour)
		n, err := s.StoreBatches(ctx, []*tap.Batch{a, b}, recv)
		require.NoError(t, err)
		require.Equal(t, []int{4, 1}, n, "the repeated tap of b is stored once")
		n, err = s.StoreBatches(ctx, []*tap.Batch{b}, recv)
		require.NoError(t, err)
		require.Equal(t, []int{0}, n, "a replayed batch stores nothing")
		count, err := s.CountTaps(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 5, count)

		got, err := s.Taps(ctx, tk, st0, st0.Add(24*time.Hour))
		require.NoError(t, err)
		require.Len(t, got, 4)
		want := a.Taps[0]
		want.Sealed = nil
		require.Equal(t, want.ID, got[0].ID)
		require.True(t, want.Time.Equal(got[0].Time))
		got[0].Time = want.Time
		require.Equal(t, want, got[0].Record, "every field kept, sealed data only in the vault")
		require.True(t, got[0].Received.Equal(recv))
		var scanned []uint64
		require.NoError(t, s.ScanTaps(ctx, st0.Add(time.Minute), st0.Add(20*time.Minute), func(st *StoredTap) error {
			scanned = append(scanned, st.Seq)
			return nil
		}))
		slices.Sort(scanned)
		require.Equal(t, []uint64{2, 3, 4}, scanned, "time in [from, to), the reject included, each once")
		first, ok, err := s.FirstReceived(ctx)
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, first.Equal(recv))

		sc, ok, err := s.SealedCard(ctx, tk)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, b.Taps[1].ID, sc.TapID, "the newest tap's card data")
		require.Equal(t, b.Taps[1].Sealed, sc.Sealed)
		_, ok, err = s.SealedCard(ctx, testToken(2))
		require.NoError(t, err)
		require.False(t, ok)

		gs, err := s.Gates(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 5, gs[0].LastSeq)
		require.EqualValues(t, 5, gs[0].Taps, "duplicates are not counted")
		require.EqualValues(t, 1, gs[0].Backlog, "b reported 3 unacknowledged, itself (2) included")
		require.EqualValues(t, 4, gs[0].DenylistVersion)
		require.True(t, gs[0].OldestUnsent.Equal(st0.Add(20*time.Minute)), "what is left is newer than b's newest tap")

		// The gate sends its last tap and goes quiet: nothing is left.
		c := &tap.Batch{Gate: "G-1", Taps: []tap.Record{testRecord(t, "G-1", 6, tk, st0.Add(30*time.Minute))}, Backlog: 1, OldestUnsent: &oldest, DenylistVersion: 4}
		_, err = s.StoreBatches(ctx, []*tap.Batch{c}, recv)
		require.NoError(t, err)
		gs, err = s.Gates(ctx)
		require.NoError(t, err)
		require.Zero(t, gs[0].Backlog, "a drained gate shows no backlog")
		require.True(t, gs[0].OldestUnsent.IsZero())
		require.True(t, gs[0].LastSeen.Equal(recv))
	})
}

func TestStoreRunsAndCharges(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		day := capping.DateOf(2026, 11, 23)
		r, err := s.BeginRun(ctx, day, st0, st0)
		require.NoError(t, err)
		r2, err := s.BeginRun(ctx, day, st0.Add(time.Hour), st0.Add(time.Hour))
		require.NoError(t, err)
		require.True(t, r.Cutoff.Equal(r2.Cutoff), "a re-run keeps the first cutoff")
		require.False(t, r2.Complete())
		require.NoError(t, s.FinishShard(ctx, day, Shard{0, 2}, st0))
		require.NoError(t, s.FinishShard(ctx, day, Shard{0, 2}, st0))
		runs, err := s.Runs(ctx)
		require.NoError(t, err)
		require.False(t, runs[0].Complete())
		require.NoError(t, s.FinishShard(ctx, day, Shard{1, 2}, st0))
		runs, err = s.Runs(ctx)
		require.NoError(t, err)
		require.True(t, runs[0].Complete())

		cs := []Charge{
			{Token: testToken(1), Day: day, Amount: 290, DayAmount: 290, Taps: 1, Currency: "GBP", Status: ChargePending, Created: st0},
			{Token: testToken(2), Day: day, Amount: 0, Currency: "GBP", Status: ChargeNone, Created: st0},
			{Token: testToken(3), Day: day, Amount: -100, DayAmount: 0, Adjustment: -100, Currency: "GBP", Status: ChargePending, Created: st0},
		}
		require.NoError(t, s.AddCharges(ctx, cs))
		again := cs[0]
		again.Amount = 999
		require.NoError(t, s.AddCharges(ctx, []Charge{again}), "a charge is written once per token and day")
		got, err := s.Charges(ctx, day)
		require.NoError(t, err)
		require.Len(t, got, 3)
		byToken := map[rider.Token]Charge{}
		for _, c := range got {
			byToken[c.Token] = c
		}
		require.EqualValues(t, 290, byToken[testToken(1)].Amount)
		require.EqualValues(t, -100, byToken[testToken(3)].Adjustment)

		send, err := s.ChargesToSend(ctx, 10)
		require.NoError(t, err)
		require.Len(t, send, 2)
		require.NoError(t, s.RecordOutcome(ctx, send[0].ID, Outcome{Status: ChargeDeclined, Code: "51", Reference: "000123", At: st0}))
		require.ErrorIs(t, s.RecordOutcome(ctx, 999999, Outcome{Status: ChargeApproved}), ErrNoCharge)
		require.Error(t, s.RecordOutcome(ctx, send[0].ID, Outcome{Status: "maybe"}))
		send, err = s.ChargesToSend(ctx, 10)
		require.NoError(t, err)
		require.Len(t, send, 1)
		rc, err := s.RiderCharges(ctx, testToken(1))
		require.NoError(t, err)
		require.Len(t, rc, 1)
		require.Equal(t, ChargeDeclined, rc[0].Status)
		require.Equal(t, "51", rc[0].Outcome)
	})
}

func TestStoreRunTapsShards(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		b := &tap.Batch{Gate: "G-1"}
		for i := range 40 {
			b.Taps = append(b.Taps, testRecord(t, "G-1", uint64(2*i+1), testToken(i), st0.Add(time.Duration(i)*time.Second)))
			b.Taps = append(b.Taps, testRecord(t, "G-1", uint64(2*i+2), testToken(i), st0.Add(time.Hour+time.Duration(i)*time.Second)))
		}
		late := testRecord(t, "G-1", 100, testToken(0), st0.Add(25*time.Hour)) // after the day's end: not a leg of the run
		b.Taps = append(b.Taps, late)
		_, err := s.StoreBatches(ctx, []*tap.Batch{b}, st0.Add(2*time.Hour))
		require.NoError(t, err)
		day := capping.DateOf(2026, 11, 23)
		q := RunQuery{Day: day, DayEnd: st0.Add(16 * time.Hour), Cutoff: st0.Add(20 * time.Hour)}
		seen := map[rider.Token]int{}
		for i := range 3 {
			q.Shard = Shard{i, 3}
			var prev rider.Token
			require.NoError(t, s.RunTaps(ctx, q, func(r RunRider) error {
				require.Equal(t, i, int(shardKey(r.Token)%3))
				require.Less(t, prev.String(), r.Token.String(), "token order")
				prev = r.Token
				seen[r.Token] += len(r.Legs)
				require.True(t, r.Legs[0].Time.Before(r.Legs[1].Time))
				return nil
			}))
		}
		require.Len(t, seen, 40)
		for _, n := range seen {
			require.Equal(t, 2, n)
		}
		require.NoError(t, s.AddCharges(ctx, []Charge{{Token: testToken(5), Day: day, Amount: 100, Currency: "GBP", Status: ChargePending, Created: st0}}))
		q.Shard = Shard{0, 1}
		n := 0
		require.NoError(t, s.RunTaps(ctx, q, func(r RunRider) error {
			require.NotEqual(t, testToken(5), r.Token, "a token charged by the run is done")
			n++
			return nil
		}))
		require.Equal(t, 39, n)
		q.Cutoff = st0.Add(time.Hour) // received after the cutoff: not in the run
		require.NoError(t, s.RunTaps(ctx, q, func(r RunRider) error { t.Fatal("no tap before the cutoff"); return nil }))
	})
}
