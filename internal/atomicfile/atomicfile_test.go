package atomicfile

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	require.NoError(t, Write(ctx, path, 0o600, writeString("one"), Options{}))
	require.NoError(t, Write(ctx, path, 0o644, writeString("two"), Options{}))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "two", string(b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o644), fi.Mode().Perm())

	// A failing writer leaves the old content and no temporary file.
	boom := errors.New("boom")
	err = Write(ctx, path, 0o644, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	}, Options{})
	require.ErrorIs(t, err, boom)
	b, _ = os.ReadFile(path)
	require.Equal(t, "two", string(b))
	require.Equal(t, []string{"f"}, names(t, dir))

	// So does a cancelled context, and a crash before the rename.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, Write(cctx, path, 0o644, writeString("three"), Options{}), context.Canceled)
	require.ErrorIs(t, Write(ctx, path, 0o644, writeString("three"), Options{BeforeRename: func(string) error { return boom }}), boom)
	b, _ = os.ReadFile(path)
	require.Equal(t, "two", string(b))
	require.Equal(t, []string{"f"}, names(t, dir))

	// NoReplace refuses an existing file and creates a new one whole.
	require.ErrorIs(t, Write(ctx, path, 0o600, writeString("x"), Options{NoReplace: true}), fs.ErrExist)
	require.NoError(t, Write(ctx, filepath.Join(dir, "g"), 0o600, writeString("new"), Options{NoReplace: true}))
	require.Equal(t, []string{"f", "g"}, names(t, dir))
}

func TestWriteRefusesNonRegular(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	require.NoError(t, os.WriteFile(target, []byte("keep"), 0o644))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(target, link))
	for _, p := range []string{link, dir, "/dev/null"} {
		require.ErrorIs(t, Write(ctx, p, 0o644, writeString("x"), Options{}), ErrNotRegular, p)
	}
	b, err := os.ReadFile(target)
	require.NoError(t, err)
	require.Equal(t, "keep", string(b))
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&fs.ModeSymlink)
	require.ElementsMatch(t, []string{"target", "link"}, names(t, dir))
}
