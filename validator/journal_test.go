package validator_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/faregate/faregate/validator"
)

// fakeRecord is a tap as a station makes it, with card data sealed to the
// test vault (for tests of the journal and the uploader that need many).
func fakeRecord(t testing.TB, gate string, i int, at time.Time) *tap.Record {
	t.Helper()
	id, err := uuid.NewV7()
	require.NoError(t, err)
	r := &tap.Record{
		ID: id, Gate: gate, Time: at.UTC(), LocalTime: at.Format(time.RFC3339Nano),
		Location: tap.Location{Operator: "TfL", Line: "Central", Stop: "Bank", Zones: []string{"1"}, Role: tap.RoleEntry, Group: "BANK"},
		Kind:     tap.KindEMV, Token: rider.NewToken(testTokenKey, "4761739001010010", string(rune('0'+i%10))+"1"),
		MaskedPAN: "476173******0010", Scheme: "visa", ODA: tap.ODA{Method: "fDDA", OK: true},
		Decision: tap.Open, Reason: "ok", KernelMicros: 2100, DecideMicros: 2300, DenylistVersion: 17,
	}
	if i%20 == 19 {
		r.Decision, r.Reason = tap.Reject, "oda_failed"
		return r
	}
	r.Sealed, err = tap.SealCardData(testVault.PublicKey(), gate, id, tap.CardData{
		PAN: "4761739001010010", PSN: "01", Expiry: "311231",
		Track2: []byte{0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x10, 0xD3, 0x11, 0x22, 0x01, 0x12, 0x34, 0x50, 0x00, 0x00},
		EMV:    make([]byte, 180), AID: []byte{0xA0, 0, 0, 0, 3, 0x10, 0x10}, Scheme: "visa",
	})
	require.NoError(t, err)
	return r
}

func openJournal(t testing.TB, path string, o validator.JournalOptions) *validator.Journal {
	t.Helper()
	j, err := validator.OpenJournal(context.Background(), path, o)
	require.NoError(t, err)
	t.Cleanup(func() { j.Close() })
	return j
}

func TestJournalSequenceUploadPrune(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	clk := newClock(txDate)
	j := openJournal(t, path, validator.JournalOptions{Now: clk.Now, Retention: time.Hour})
	var ids []uuid.UUID
	for i := range 10 {
		r := fakeRecord(t, "G-1", i, clk.Now())
		require.NoError(t, j.Append(ctx, r))
		require.Equal(t, uint64(i+1), r.Seq)
		ids = append(ids, r.ID)
		clk.Advance(time.Second)
	}
	unsent, err := j.Unsent(ctx, 0, 4)
	require.NoError(t, err)
	require.Len(t, unsent, 4)
	require.Equal(t, uint64(1), unsent[0].Seq)

	// Only what an acknowledgement names is marked; unknown ids are ignored.
	n, err := j.MarkUploaded(ctx, append(ids[:3:3], uuid.Must(uuid.NewV7()), ids[0]), clk.Now())
	require.NoError(t, err)
	require.Equal(t, 3, n)
	st := j.Stats()
	require.Equal(t, int64(10), st.Taps)
	require.Equal(t, int64(7), st.Unsent)
	require.Equal(t, txDate.Add(3*time.Second).UTC(), *st.OldestUnsent)

	// Retention: uploaded taps go an hour after their acknowledgement.
	clk.Advance(30 * time.Minute)
	pruned, err := j.Prune(ctx)
	require.NoError(t, err)
	require.Zero(t, pruned)
	clk.Advance(31 * time.Minute)
	pruned, err = j.Prune(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, pruned)
	require.Equal(t, int64(7), j.Stats().Taps)

	// Sequence numbers are never reused, even once every tap is pruned.
	n, err = j.MarkUploaded(ctx, ids[3:], clk.Now())
	require.NoError(t, err)
	require.Equal(t, 7, n)
	require.Nil(t, j.Stats().OldestUnsent)
	clk.Advance(2 * time.Hour)
	pruned, err = j.Prune(ctx)
	require.NoError(t, err)
	require.Equal(t, 7, pruned)
	require.NoError(t, j.Close())
	j = openJournal(t, path, validator.JournalOptions{Now: clk.Now})
	r := fakeRecord(t, "G-1", 0, clk.Now())
	require.NoError(t, j.Append(ctx, r))
	require.Equal(t, uint64(11), r.Seq)
	require.NoError(t, j.Check(ctx))

	// A read-only journal answers beside the writer and refuses to write.
	ro := openJournal(t, path, validator.JournalOptions{ReadOnly: true})
	require.Equal(t, validator.JournalStats{Taps: 1, Opened: 1, Unsent: 1, OldestUnsent: &r.Time}, ro.Stats())
	require.ErrorIs(t, ro.Append(ctx, fakeRecord(t, "G-1", 1, clk.Now())), validator.ErrJournal)
	_, err = validator.OpenJournal(ctx, filepath.Join(t.TempDir(), "none.db"), validator.JournalOptions{ReadOnly: true})
	require.ErrorIs(t, err, validator.ErrJournal)
}

// TestJournalFull fills a small journal: uploaded taps make room whatever
// their age; unsent ones are never dropped, and the journal refuses more.
func TestJournalFull(t *testing.T) {
	ctx := context.Background()
	clk := newClock(txDate)
	j := openJournal(t, filepath.Join(t.TempDir(), "journal.db"), validator.JournalOptions{Now: clk.Now, MaxBytes: 256 << 10})
	var ids []uuid.UUID
	var err error
	for i := 0; ; i++ {
		r := fakeRecord(t, "G-1", i, clk.Now())
		if err = j.Append(ctx, r); err != nil {
			require.Zero(t, r.Seq, "a refused tap consumes no sequence number")
			break
		}
		ids = append(ids, r.ID)
		require.Less(t, i, 10000, "the journal never filled")
	}
	require.ErrorIs(t, err, validator.ErrJournalFull)
	full := len(ids)
	require.Greater(t, full, 50)
	require.Equal(t, int64(full), j.Stats().Unsent, "no unsent tap was dropped")

	// Half acknowledged: room again, though retention has not passed.
	_, err = j.MarkUploaded(ctx, ids[:full/2], clk.Now())
	require.NoError(t, err)
	r := fakeRecord(t, "G-1", 0, clk.Now())
	require.NoError(t, j.Append(ctx, r))
	require.Equal(t, uint64(full+1), r.Seq)
	require.Equal(t, int64(full-full/2+1), j.Stats().Unsent)
	require.NoError(t, j.Check(ctx))
}

// A gate killed while creating its journal leaves a file with no schema:
// a read-only look sees an empty journal, and the gate starts on it.
func TestJournalKilledBeforeSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	require.NoError(t, os.WriteFile(path, nil, 0o600))

	ro, err := validator.OpenJournal(ctx, path, validator.JournalOptions{ReadOnly: true})
	require.NoError(t, err)
	require.Equal(t, int64(0), ro.Stats().Taps)
	require.NoError(t, ro.Each(ctx, false, func(*tap.Record, bool) error { return nil }))
	require.NoError(t, ro.Close())

	j := openJournal(t, path, validator.JournalOptions{})
	r := fakeRecord(t, "G-1", 0, txDate)
	require.NoError(t, j.Append(ctx, r))
	require.Equal(t, uint64(1), r.Seq)
}
