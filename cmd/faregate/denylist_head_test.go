package main

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/denylist/dlsync"
	"github.com/stretchr/testify/require"
)

// TestDenylistHeadRotation rotates the key of a gate fed from a directory:
// faregate denylist head announces the next key, the gate trusts both, the
// next key signs the following version and the gate retires the old key.
func TestDenylistHeadRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	feed := filepath.Join(dir, "feed")
	require.NoError(t, os.MkdirAll(feed, 0o755))
	oldPub, err := denylist.ParsePublicKey(mustReadFile(t, dlGolden("test.pub")))
	require.NoError(t, err)
	newPub, newKey, err := denylist.GenerateKey(nil)
	require.NoError(t, err)
	b, err := denylist.MarshalPrivateKey(newKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "new.key"), b, 0o600))
	b, err = denylist.MarshalPublicKey(newPub)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "new.pub"), b, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(feed, "v1.fgdl"), mustReadFile(t, dlGolden("snapshot-v1.fgdl")), 0o644))
	head := filepath.Join(feed, dlsync.HeadFile)
	issued := time.Now().Add(-time.Minute).UTC()

	out, code := run(t, "denylist", "head", "--list", filepath.Join(feed, "v1.fgdl"), "--key", dlGolden("test.key"),
		"--next-pub", filepath.Join(dir, "new.pub"), "--issued", issued.Format(time.RFC3339), "--out", head)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "announces next key sha256:")
	_, code = run(t, "denylist", "head", "--list", filepath.Join(feed, "v1.fgdl"), "--key", dlGolden("test.key"),
		"--next-pub", dlGolden("test.pub"), "--out", filepath.Join(dir, "x.fgdh"))
	require.Equal(t, 2, code, "announcing the signing key itself")

	gate, err := denylist.OpenReplica(ctx, filepath.Join(dir, "gate"), denylist.ReplicaConfig{ListID: "test", PublicKey: oldPub})
	require.NoError(t, err)
	client, err := dlsync.NewClient(dlsync.ClientOptions{Source: &dlsync.DirSource{Dir: feed}, Replica: gate})
	require.NoError(t, err)
	require.NoError(t, client.SyncOnce(ctx))
	require.Equal(t, uint64(1), gate.List().Version())
	require.ElementsMatch(t, []ed25519.PublicKey{oldPub, newPub}, gate.TrustedKeys())

	// Switch: the next key signs version 2 and its head, announcing nothing.
	out, code = run(t, "denylist", "build", "--tokens", dlGolden("tokens-v2.txt"), "--key", filepath.Join(dir, "new.key"),
		"--version", "2", "--list-id", "test", "--out", filepath.Join(feed, "v2.fgdl"))
	require.Equal(t, 0, code, out)
	out, code = run(t, "denylist", "head", "--list", filepath.Join(feed, "v2.fgdl"), "--key", filepath.Join(dir, "new.key"),
		"--issued", issued.Add(time.Second).Format(time.RFC3339), "--out", head)
	require.Equal(t, 0, code, out)
	require.NotContains(t, out, "announces")
	require.NoError(t, client.SyncOnce(ctx))
	require.Equal(t, uint64(2), gate.List().Version())
	require.NoError(t, client.SyncOnce(ctx)) // the old key signed no file any more
	require.Equal(t, []ed25519.PublicKey{newPub}, gate.TrustedKeys())

	// The old key's statement is refused from now on.
	out, code = run(t, "denylist", "head", "--list", filepath.Join(feed, "v1.fgdl"), "--key", dlGolden("test.key"),
		"--out", head)
	require.Equal(t, 0, code, out)
	require.ErrorIs(t, client.SyncOnce(ctx), denylist.ErrSignature)
	require.Equal(t, uint64(2), gate.List().Version())
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
