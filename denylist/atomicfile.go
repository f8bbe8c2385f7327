package denylist

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/faregate/faregate/internal/atomicfile"
)

// tmpPrefix starts the name of every temporary file; OpenReplica removes
// leftovers of a crash.
const tmpPrefix = atomicfile.TempPrefix

func writeFileAtomic(ctx context.Context, path string, perm os.FileMode, write func(io.Writer) error, beforeRename func(tmp string) error) error {
	if err := atomicfile.Write(ctx, path, perm, write, atomicfile.Options{BeforeRename: beforeRename}); err != nil {
		return wrapFS(err)
	}
	return nil
}

// commitTemp makes the temporary file f durable and renames it to path.
func commitTemp(f *os.File, path string, perm os.FileMode, beforeRename func(tmp string) error) error {
	return wrapFS(atomicfile.Commit(f, path, perm, beforeRename))
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error { return wrapFS(atomicfile.SyncDir(dir)) }

func wrapFS(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("denylist: %w", err)
}

// ctxReader stops a long stream when ctx is done.
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
