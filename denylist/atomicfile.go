package denylist

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with what write produces, so that after a
// crash at any point path holds either its old content or the complete new
// one: it writes a temporary file in the same directory, fsyncs it, renames
// it over path and fsyncs the directory. On error path is untouched and the
// temporary file removed.
func WriteFileAtomic(ctx context.Context, path string, perm os.FileMode, write func(io.Writer) error) error {
	return writeFileAtomic(ctx, path, perm, write, nil)
}

// tmpPrefix starts the name of every temporary file; OpenReplica removes
// leftovers of a crash.
const tmpPrefix = ".tmp-"

func writeFileAtomic(ctx context.Context, path string, perm os.FileMode, write func(io.Writer) error, beforeRename func(tmp string) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, tmpPrefix+base+"-*")
	if err != nil {
		return fmt.Errorf("denylist: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(&ctxWriter{ctx: ctx, w: f}, 1<<20)
	if err := write(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("denylist: write %s: %w", path, err)
	}
	return commitTemp(f, path, perm, beforeRename)
}

// commitTemp makes the temporary file f durable and renames it to path.
func commitTemp(f *os.File, path string, perm os.FileMode, beforeRename func(tmp string) error) error {
	tmp := f.Name()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("denylist: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("denylist: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("denylist: write %s: %w", path, err)
	}
	if beforeRename != nil {
		if err := beforeRename(tmp); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("denylist: rename to %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("denylist: fsync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("denylist: fsync dir %s: %w", dir, err)
	}
	return nil
}

// ctxReader and ctxWriter stop a long stream when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
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
