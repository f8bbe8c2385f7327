package denylist

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func openReplica(t testing.TB, dir string) *Replica {
	t.Helper()
	pub, _ := testKey(1)
	r, err := OpenReplica(context.Background(), dir, ReplicaConfig{ListID: "test", PublicKey: pub})
	require.NoError(t, err)
	return r
}

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// history is a chain of versions 1..n of list "test" and their files.
type history struct {
	lists  []*List  // lists[i] is version i+1
	snaps  [][]byte // snapshot files
	deltas [][]byte // deltas[i] is i+1 → i+2
	tokens []Token
}

func newHistory(t testing.TB, n int) *history {
	t.Helper()
	_, key := testKey(1)
	h := &history{tokens: randTokens(42, 50*n)}
	for v := 1; v <= n; v++ {
		// version v lists tokens [10v, 50v)
		l := mustSign(t, key, uint64(v), NewSetOfTokens(h.tokens[10*v:50*v]))
		h.lists = append(h.lists, l)
		h.snaps = append(h.snaps, encodeList(t, l))
		if v > 1 {
			h.deltas = append(h.deltas, signedDelta(t, key, h.lists[v-2], l))
		}
	}
	return h
}

func update(t testing.TB, r *Replica, file []byte) Update {
	t.Helper()
	u, err := r.Update(context.Background(), bytes.NewReader(file))
	require.NoError(t, err)
	return u
}

func TestReplicaLifecycle(t *testing.T) {
	h := newHistory(t, 4)
	dir := t.TempDir()
	r := openReplica(t, dir)
	require.Equal(t, uint64(0), r.List().Version())
	require.Equal(t, uint64(0), r.Since())
	require.False(t, r.Contains(h.tokens[20]))

	u := update(t, r, h.snaps[0])
	require.Equal(t, Update{Kind: KindSnapshot, From: 0, To: 1, Entries: 40}, u)
	require.True(t, r.Contains(h.tokens[20]))
	u = update(t, r, h.deltas[0])
	require.Equal(t, Update{Kind: KindDelta, From: 1, To: 2, Entries: 80}, u)
	update(t, r, h.deltas[1])
	require.Equal(t, uint64(3), r.Since())
	require.Equal(t, 2, r.PendingDeltas())
	require.Equal(t, []string{"delta-00000000000000000001-00000000000000000002.fgdl",
		"delta-00000000000000000002-00000000000000000003.fgdl", SnapshotFile}, dirNames(t, dir))

	// Restart: snapshot + deltas give version 3.
	r2 := openReplica(t, dir)
	require.Equal(t, uint64(3), r2.List().Version())
	require.Equal(t, fpsOf(h.lists[2].Set()), fpsOf(r2.List().Set()))
	require.Equal(t, 2, r2.PendingDeltas())

	// Compaction folds the deltas into a snapshot equal to the back office's.
	require.NoError(t, r2.Compact(context.Background()))
	require.Equal(t, []string{SnapshotFile}, dirNames(t, dir))
	onDisk, err := os.ReadFile(filepath.Join(dir, SnapshotFile))
	require.NoError(t, err)
	require.Equal(t, h.snaps[2], onDisk)
	require.NoError(t, r2.Compact(context.Background()), "nothing to do")

	// A newer snapshot replaces the snapshot and the pending deltas.
	r3dir := t.TempDir()
	r3 := openReplica(t, r3dir)
	update(t, r3, h.snaps[0])
	update(t, r3, h.deltas[0])
	require.Equal(t, 1, r3.PendingDeltas())
	update(t, r3, h.snaps[3])
	require.Equal(t, 0, r3.PendingDeltas())
	require.Equal(t, []string{SnapshotFile}, dirNames(t, r3dir))
	require.Equal(t, uint64(4), openReplica(t, r3dir).List().Version())
}

func TestReplicaRefuses(t *testing.T) {
	h := newHistory(t, 4)
	_, key := testKey(1)
	_, otherKey := testKey(2)
	forgedSnap := encodeList(t, mustSign(t, otherKey, 9, NewSetOfTokens(h.tokens[:5])))
	otherList, err := Sign(key, "other", 9, testCreated, NewSetOfTokens(h.tokens[:5]))
	require.NoError(t, err)
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0x40
		return b
	}
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"forged snapshot", forgedSnap, ErrSignature},
		{"corrupted snapshot body", flip(h.snaps[3], HeaderSize+100), ErrSignature},
		{"corrupted delta body", flip(h.deltas[1], HeaderSize+3), ErrSignature},
		{"other list", encodeList(t, otherList), ErrListID},
		{"gap", h.deltas[2], ErrGap},
		{"replay of a delta", h.deltas[0], ErrReplay},
		{"replay of the current snapshot", h.snaps[1], ErrReplay},
		{"replay of an older snapshot", h.snaps[0], ErrReplay},
		{"truncated snapshot", h.snaps[3][:len(h.snaps[3])-1], ErrTruncated},
		{"truncated delta", h.deltas[1][:HeaderSize+10], ErrTruncated},
		{"truncated header", h.deltas[1][:10], ErrTruncated},
		{"empty", nil, ErrTruncated},
		{"not a deny list", bytes.Repeat([]byte("hello "), 20), ErrMalformed},
	}
	dir := t.TempDir()
	r := openReplica(t, dir)
	update(t, r, h.snaps[0])
	update(t, r, h.deltas[0])
	before := r.List()
	files := dirNames(t, dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Update(context.Background(), bytes.NewReader(tt.file))
			require.ErrorIs(t, err, tt.want)
			require.Same(t, before, r.List(), "last good list stays in force")
			require.Equal(t, files, dirNames(t, dir), "no file changed or left behind")
			require.Equal(t, uint64(2), r.Since())
		})
	}
	require.Equal(t, uint64(2), openReplica(t, dir).List().Version())

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = r.Update(ctx, bytes.NewReader(h.deltas[1]))
	require.ErrorIs(t, err, context.Canceled)
	require.Same(t, before, r.List())
}

// TestReplicaCrashBeforeRename stops an update after the new file is
// written and fsynced but before it is renamed into place — where a power
// cut would hurt most — and checks that the directory, as the crash left
// it, still opens to the old list.
func TestReplicaCrashBeforeRename(t *testing.T) {
	h := newHistory(t, 3)
	for _, tt := range []struct {
		name string
		file []byte
	}{{"snapshot", h.snaps[2]}, {"delta", h.deltas[1]}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r := openReplica(t, dir)
			update(t, r, h.snaps[0])
			update(t, r, h.deltas[0])
			crashDir := t.TempDir()
			errCrash := errors.New("power cut")
			r.beforeRename = func(tmp string) error {
				// Freeze the directory as it is at this instant.
				for _, name := range dirNames(t, dir) {
					b, err := os.ReadFile(filepath.Join(dir, name))
					require.NoError(t, err)
					require.NoError(t, os.WriteFile(filepath.Join(crashDir, name), b, 0o644))
				}
				require.FileExists(t, tmp)
				return errCrash
			}
			before := r.List()
			_, err := r.Update(context.Background(), bytes.NewReader(tt.file))
			require.ErrorIs(t, err, errCrash)
			require.Same(t, before, r.List())

			names := dirNames(t, crashDir)
			require.Len(t, names, 3, "snapshot, delta and the new temporary file")
			after := openReplica(t, crashDir)
			require.Equal(t, uint64(2), after.List().Version())
			require.Equal(t, fpsOf(h.lists[1].Set()), fpsOf(after.List().Set()))
			require.Equal(t, []string{"delta-00000000000000000001-00000000000000000002.fgdl", SnapshotFile},
				dirNames(t, crashDir), "leftover removed")

			// The interrupted replica recovers on the next attempt.
			r.beforeRename = nil
			update(t, r, tt.file)
			require.Equal(t, uint64(3), r.List().Version())
		})
	}
}

func TestReplicaCrashDuringCompaction(t *testing.T) {
	h := newHistory(t, 3)
	dir := t.TempDir()
	r := openReplica(t, dir)
	update(t, r, h.snaps[0])
	update(t, r, h.deltas[0])
	update(t, r, h.deltas[1])
	errCrash := errors.New("power cut")
	r.beforeRename = func(string) error { return errCrash }
	require.ErrorIs(t, r.Compact(context.Background()), errCrash)
	require.Equal(t, uint64(3), openReplica(t, dir).List().Version())
	r.beforeRename = nil
	require.NoError(t, r.Compact(context.Background()))

	// Crash after the snapshot's rename, before the deltas are removed:
	// they are older than the snapshot and dropped at the next open.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "delta-00000000000000000001-00000000000000000002.fgdl"), h.deltas[0], 0o644))
	r2 := openReplica(t, dir)
	require.Equal(t, uint64(3), r2.List().Version())
	require.Equal(t, []string{SnapshotFile}, dirNames(t, dir))
}

func TestReplicaDamagedFilesOnDisk(t *testing.T) {
	h := newHistory(t, 4)
	dir := t.TempDir()
	r := openReplica(t, dir)
	update(t, r, h.snaps[0])
	update(t, r, h.deltas[0])
	update(t, r, h.deltas[1])
	update(t, r, h.deltas[2])
	// Damage the middle delta: the chain stops before it.
	name := filepath.Join(dir, "delta-00000000000000000002-00000000000000000003.fgdl")
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	b[HeaderSize] ^= 1
	require.NoError(t, os.WriteFile(name, b, 0o644))
	r2 := openReplica(t, dir)
	require.Equal(t, uint64(2), r2.List().Version())
	require.Equal(t, []string{"delta-00000000000000000001-00000000000000000002.fgdl", SnapshotFile}, dirNames(t, dir))
	update(t, r2, h.deltas[1])

	// A damaged snapshot is an error: the caller decides.
	snap := filepath.Join(dir, SnapshotFile)
	b, err = os.ReadFile(snap)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(snap, b[:len(b)-1], 0o644))
	pub, _ := testKey(1)
	_, err = OpenReplica(context.Background(), dir, ReplicaConfig{ListID: "test", PublicKey: pub})
	require.ErrorIs(t, err, ErrTruncated)
	// So is a snapshot of another list.
	require.NoError(t, os.WriteFile(snap, h.snaps[0], 0o644))
	_, err = OpenReplica(context.Background(), dir, ReplicaConfig{ListID: "metro", PublicKey: pub})
	require.ErrorIs(t, err, ErrListID)
	_, err = OpenReplica(context.Background(), dir, ReplicaConfig{ListID: "Metro", PublicKey: pub})
	require.ErrorIs(t, err, ErrInvalidListID)
	_, err = OpenReplica(context.Background(), dir, ReplicaConfig{ListID: "test"})
	require.ErrorIs(t, err, ErrKey)
}

// TestReplicaRepairsDivergence: when a signed delta does not fit the list
// in force, the replica asks for a snapshot (Since 0) and accepts one of the
// same version to repair itself.
func TestReplicaRepairsDivergence(t *testing.T) {
	h := newHistory(t, 3)
	_, key := testKey(1)
	// The gate's v1 lacks one entry the back office's v1 has (think of a
	// back office restored from a backup and re-publishing version 1).
	diverged := mustSign(t, key, 1, NewSetOfTokens(h.tokens[11:50]))
	dir := t.TempDir()
	r := openReplica(t, dir)
	update(t, r, encodeList(t, diverged))

	_, err := r.Update(context.Background(), bytes.NewReader(h.deltas[0]))
	require.ErrorIs(t, err, ErrInconsistent)
	require.Equal(t, uint64(0), r.Since(), "ask for a snapshot")
	require.Equal(t, uint64(1), r.List().Version(), "keep the list meanwhile")
	update(t, r, h.snaps[0])
	require.Equal(t, uint64(1), r.Since())
	require.Equal(t, fpsOf(h.lists[0].Set()), fpsOf(r.List().Set()))
	_, err = r.Update(context.Background(), bytes.NewReader(h.snaps[0]))
	require.ErrorIs(t, err, ErrReplay, "same version again once repaired")

	// A divergence that deltas cannot see (same count, adds fit) is caught
	// by compaction.
	v1 := mustSign(t, key, 1, NewSetOfTokens(h.tokens[:3]))
	v2 := mustSign(t, key, 2, NewSetOfTokens(h.tokens[:4]))
	wrong := mustSign(t, key, 1, NewSetOfTokens([]Token{h.tokens[1], h.tokens[2], h.tokens[100]}))
	dir2 := t.TempDir()
	r2 := openReplica(t, dir2)
	update(t, r2, encodeList(t, wrong))
	update(t, r2, signedDelta(t, key, v1, v2)) // adds token 3: fits
	require.ErrorIs(t, r2.Compact(context.Background()), ErrInconsistent)
	require.Equal(t, uint64(0), r2.Since())
	require.Equal(t, 1, r2.PendingDeltas(), "files untouched")
	update(t, r2, encodeList(t, v2))
	require.Equal(t, 0, r2.PendingDeltas())
}

// TestReplicaConcurrentLookups runs lookups on several goroutines while
// versions are applied (run with -race). Entries listed in every version are
// always found and never-listed tokens never are: a lookup never sees a
// half-built list.
func TestReplicaConcurrentLookups(t *testing.T) {
	const n = 30
	h := newHistory(t, n) // version v lists tokens [10v, 50v)
	never := randTokens(777, 100)
	dir := t.TempDir()
	r := openReplica(t, dir)
	update(t, r, h.snaps[0])

	var stop atomic.Bool
	var lookups atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				l := r.List()
				v := int(l.Version())
				for i, tok := range h.tokens {
					want := i >= 10*v && i < 50*v
					if l.Contains(tok) != want {
						t.Errorf("version %d: token %d: got %v", v, i, !want)
						return
					}
				}
				for _, tok := range never {
					if r.Contains(tok) {
						t.Errorf("unlisted token found")
						return
					}
				}
				lookups.Add(1)
			}
		})
	}
	for i := range n - 1 {
		update(t, r, h.deltas[i])
		if i%7 == 6 {
			require.NoError(t, r.Compact(context.Background()))
		}
	}
	stop.Store(true)
	wg.Wait()
	require.Positive(t, lookups.Load())
	require.Equal(t, uint64(n), r.List().Version())
	require.True(t, slices.IsSorted(fpsOf(r.List().Set())))
}
