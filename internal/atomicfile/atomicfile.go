// Package atomicfile writes files that appear whole or not at all: a
// temporary file in the same directory, fsynced, renamed over the target,
// the directory fsynced. Every file faregate writes (deny-list files, a
// gate's replica, transcripts, keys) goes through it.
package atomicfile

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// TempPrefix starts the name of every temporary file; a directory owner
// (the deny-list replica) removes leftovers of a crash at start.
const TempPrefix = ".tmp-"

// ErrNotRegular: the target exists and is not a regular file (a symlink, a
// device, a directory, a FIFO). Writing would replace or write through it;
// it is refused instead.
var ErrNotRegular = errors.New("atomicfile: target is not a regular file")

// ErrExist: Create found the target already there.
var ErrExist = fs.ErrExist

// Options tune Write.
type Options struct {
	// NoReplace refuses an existing target (ErrExist) instead of replacing
	// it, atomically: a hard link, not a rename, puts the file in place.
	NoReplace bool
	// BeforeRename, when set, runs after the temporary file is durable
	// and before it is renamed (tests: simulate a crash).
	BeforeRename func(tmp string) error
}

// Write replaces path with what write produces, so that after a crash at
// any point path holds either its old content or the complete new one. On
// error (write's, ctx's, the file system's) path is untouched and the
// temporary file removed. A target that is a symlink, a device or anything
// but a regular file is refused with ErrNotRegular.
func Write(ctx context.Context, path string, perm os.FileMode, write func(io.Writer) error, o Options) (err error) {
	if err := checkTarget(path, o.NoReplace); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name()) // after a rename: a no-op
	}()
	w := bufio.NewWriterSize(&ctxWriter{ctx: ctx, w: f}, 1<<20)
	if err := write(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return commit(f, path, perm, o)
}

func checkTarget(path string, noReplace bool) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("write %s: %w", path, err)
	case noReplace:
		return fmt.Errorf("write %s: %w", path, ErrExist)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("write %s: %w (%s)", path, ErrNotRegular, kind(fi.Mode()))
	}
	return nil
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		return "a device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	}
	return "not a regular file"
}

// Commit makes the temporary file f durable and renames it to path, then
// makes the rename durable. f is closed; the caller removes f's name on
// error. It is Write's last step, for writers that fill f themselves.
func Commit(f *os.File, path string, perm os.FileMode, beforeRename func(tmp string) error) error {
	return commit(f, path, perm, Options{BeforeRename: beforeRename})
}

func commit(f *os.File, path string, perm os.FileMode, o Options) error {
	tmp := f.Name()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if o.BeforeRename != nil {
		if err := o.BeforeRename(tmp); err != nil {
			return err
		}
	}
	if o.NoReplace {
		if err := os.Link(tmp, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	} else if err := checkTarget(path, false); err != nil {
		return err // replaced by something else meanwhile
	} else if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename to %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir makes renames and removals in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
