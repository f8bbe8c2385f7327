package validator

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/tap"
)

// TestJournalAppendInterrupted: an append whose context ends between the
// write and the commit leaves nothing behind and consumes no sequence
// number.
func TestJournalAppendInterrupted(t *testing.T) {
	ctx := context.Background()
	j, err := OpenJournal(ctx, filepath.Join(t.TempDir(), "journal.db"), JournalOptions{})
	require.NoError(t, err)
	defer j.Close()
	rec := func() *tap.Record {
		return &tap.Record{ID: uuid.Must(uuid.NewV7()), Gate: "G-1", Time: time.Now(), Kind: tap.KindEMV,
			Decision: tap.Reject, Reason: "oda_failed"}
	}
	require.NoError(t, j.Append(ctx, rec()))
	cctx, cancel := context.WithCancel(ctx)
	j.onWrite = cancel
	require.Error(t, j.Append(cctx, rec()))
	j.onWrite = nil
	r := rec()
	require.NoError(t, j.Append(ctx, r))
	require.Equal(t, uint64(2), r.Seq)
	require.Equal(t, int64(2), j.Stats().Taps)
	require.NoError(t, j.Check(ctx))
}
