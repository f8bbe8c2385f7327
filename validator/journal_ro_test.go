package validator_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/faregate/faregate/validator"
	"github.com/stretchr/testify/require"
)

// journal stats after a SIGKILL reads the journal as the kill left it: the
// database, its WAL with the last commits, and possibly no WAL index.
func TestJournalReadOnlyAfterKill(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.db")
	j := openJournal(t, path, validator.JournalOptions{})
	for i := range 5 {
		require.NoError(t, j.Append(ctx, fakeRecord(t, "G-1", i, txDate)))
	}
	// Copy the files while the writer holds them: what a kill leaves.
	killed := filepath.Join(dir, "killed")
	require.NoError(t, os.Mkdir(killed, 0o700))
	for _, suf := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(path + suf)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(killed, "journal.db"+suf), b, 0o600))
	}
	for _, name := range []string{"with its WAL index", "without its WAL index"} {
		if name == "without its WAL index" {
			require.NoError(t, os.Remove(filepath.Join(killed, "journal.db-shm")))
		}
		ro, err := validator.OpenJournal(ctx, filepath.Join(killed, "journal.db"), validator.JournalOptions{ReadOnly: true})
		require.NoError(t, err, name)
		require.Equal(t, int64(5), ro.Stats().Taps, "%s: the WAL's commits are seen", name)
		require.NoError(t, ro.Close())
	}
}
