package main

import (
	"context"
	"crypto/ed25519"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/denylist/dlsync"
	"github.com/stretchr/testify/require"
)

// TestBackendDenylistRotation: --denylist-next-key announces the next key
// in the signed head; --denylist-switch signs with it over the store the
// old key wrote.
func TestBackendDenylistRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeKey := func(name string) (string, ed25519.PublicKey) {
		pub, key, err := denylist.GenerateKey(nil)
		require.NoError(t, err)
		b, err := denylist.MarshalPrivateKey(key)
		require.NoError(t, err)
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p, pub
	}
	oldPath, oldPub := writeKey("old.key")
	newPath, newPub := writeKey("new.key")
	sf := storeFlags{data: filepath.Join(dir, "data")}
	require.NoError(t, os.MkdirAll(sf.data, 0o755))
	head := func(rot dlRotation) []byte {
		t.Helper()
		reg, h, closeDL, err := openDenylistRegistry(ctx, sf, oldPath, rot)
		require.NoError(t, err)
		defer closeDL()
		if reg.Current().Version() == 0 {
			_, err = reg.Import(ctx, []denylist.Token{{1}}, "import", "test")
			require.NoError(t, err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", dlsync.HeadPath, nil))
		require.Equal(t, 200, rec.Code)
		b, _ := io.ReadAll(rec.Body)
		return b
	}
	b := head(dlRotation{})
	got, err := denylist.ParseHead(b, oldPub)
	require.NoError(t, err)
	require.Nil(t, got.NextKey)

	b = head(dlRotation{nextPath: newPath})
	got, err = denylist.ParseHead(b, oldPub)
	require.NoError(t, err)
	require.Equal(t, newPub, got.NextKey)

	b = head(dlRotation{nextPath: newPath, switchKeys: true})
	_, err = denylist.ParseHead(b, oldPub)
	require.ErrorIs(t, err, denylist.ErrSignature)
	got, err = denylist.ParseHead(b, newPub)
	require.NoError(t, err)
	require.Nil(t, got.NextKey)
	require.Equal(t, uint64(1), got.Version)

	_, _, _, err = openDenylistRegistry(ctx, sf, oldPath, dlRotation{nextPath: oldPath})
	require.Error(t, err, "the next key must differ")

	out, code := run(t, "backend", "--data", sf.data, "--rules", seedRules, "--vault-key", filepath.Join(dir, "none"),
		"--denylist-key", oldPath, "--denylist-switch")
	require.Equal(t, 2, code, out)
}
