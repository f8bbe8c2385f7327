package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/faregate/faregate/internal/atomicfile"
)

// Limits on what a command reads from a file: each fits its format with
// room to spare, and anything larger is refused with a clear error (exit
// 2), never read whole into memory.
const (
	maxKeyFile    = 64 << 10 // --pub, --key: a PEM key is under 1 KiB
	maxJSONInput  = 1 << 20  // --input, --transcript, --capk, --revoked, --card and its keys
	maxTokensFile = 1 << 30  // --tokens: 16 M tokens of 33 bytes is 560 MB
	maxTapsFile   = 16 << 30 // --taps: a big city's busiest day is under 1 GB
	maxCSVLine    = 64 << 10 // one line of --taps
	readChunk     = 64 << 10
)

// errTooLarge is wrapped by every refusal of an oversized input.
var errTooLarge = errors.New("larger than the limit for its format")

// openInput opens a command's input file; "-" is standard input when
// stdin is not nil. The reader stops when ctx is done, even while a read
// blocks (a terminal, a pipe, a FIFO), and fails past limit bytes.
func openInput(ctx context.Context, flag, path string, limit int64, stdin io.Reader) (io.ReadCloser, error) {
	var r io.Reader
	var c io.Closer = io.NopCloser(nil)
	if path == "-" && stdin != nil {
		r = stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageErr("%s: %w", flag, err)
		}
		if fi, err := f.Stat(); err == nil && fi.IsDir() {
			f.Close()
			return nil, usageErr("%s %s: is a directory", flag, path)
		}
		r, c = f, f
	}
	return &inputReader{
		r:    interruptible(ctx, r),
		left: limit, limit: limit, flag: flag, path: path, c: c,
	}, nil
}

// readInput reads a whole (small) input file under limit, without a
// leading UTF-8 byte order mark: a BOM is accepted in every text input.
func readInput(ctx context.Context, flag, path string, limit int64) ([]byte, error) {
	rc, err := openInput(ctx, flag, path, limit, nil)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, inputErr(ctx, err)
	}
	return bytes.TrimPrefix(b, []byte("\uFEFF")), nil
}

// inputErr turns a read error into what the command returns: the context's
// error when it was cancelled, a usage error otherwise.
func inputErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return usageErr("%w", err)
}

type inputReader struct {
	r           io.Reader
	left, limit int64
	flag, path  string
	c           io.Closer
}

func (r *inputReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		var one [1]byte
		n, err := r.r.Read(one[:])
		if n > 0 {
			return 0, usageErr("%s %s: %w (%s)", r.flag, r.path, errTooLarge, sizeString(r.limit))
		}
		return 0, err
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.r.Read(p)
	r.left -= int64(n)
	return n, err
}

func (r *inputReader) Close() error { return r.c.Close() }

func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// interruptible returns a reader whose Read returns ctx's error as soon as
// ctx is done, even while the underlying Read blocks (standard input on a
// terminal, a pipe nobody writes to). The blocked read is left to finish
// on its own goroutine; the command returns and the process exits.
func interruptible(ctx context.Context, r io.Reader) io.Reader {
	if _, regular := r.(*os.File); regular {
		if fi, err := r.(*os.File).Stat(); err == nil && fi.Mode().IsRegular() {
			return &ctxCheckReader{ctx: ctx, r: r} // never blocks: check between chunks
		}
	}
	return &goReader{ctx: ctx, r: r, done: make(chan result, 1), buf: make([]byte, readChunk)}
}

type ctxCheckReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxCheckReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p[:min(len(p), readChunk)])
}

type result struct {
	n   int
	err error
}

type goReader struct {
	ctx     context.Context
	r       io.Reader
	done    chan result
	buf     []byte
	pending bool
}

func (g *goReader) Read(p []byte) (int, error) {
	if err := g.ctx.Err(); err != nil {
		return 0, err
	}
	if !g.pending {
		g.pending = true
		buf := g.buf[:min(len(p), len(g.buf))]
		go func() {
			n, err := g.r.Read(buf)
			g.done <- result{n, err}
		}()
	}
	select {
	case <-g.ctx.Done():
		return 0, g.ctx.Err()
	case res := <-g.done:
		g.pending = false
		return copy(p, g.buf[:res.n]), res.err
	}
}

// writeOutput writes a command's output file atomically: it appears whole
// or not at all, and a symlink, device or other non-regular target is
// refused (exit 2), never replaced or written through.
func writeOutput(ctx context.Context, flag, path string, perm os.FileMode, write func(io.Writer) error) error {
	err := atomicfile.Write(ctx, path, perm, write, atomicfile.Options{})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, atomicfile.ErrNotRegular):
		return usageErr("%s: %w; give the path of a regular file", flag, err)
	}
	return err
}

// writeJSONOutput writes v as indented JSON with writeOutput.
func writeJSONOutput(ctx context.Context, flag, path string, perm os.FileMode, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeOutput(ctx, flag, path, perm, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// limitFS bounds every file read through it (a card profile and the key
// files it names) to limit bytes and makes reads stop with ctx.
type limitFS struct {
	ctx   context.Context
	fsys  fs.FS
	flag  string
	limit int64
}

func (l limitFS) Open(name string) (fs.File, error) {
	f, err := l.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	return &limitFile{File: f, r: &inputReader{
		r: &ctxCheckReader{ctx: l.ctx, r: f}, left: l.limit, limit: l.limit, flag: l.flag, path: name, c: f,
	}}, nil
}

type limitFile struct {
	fs.File
	r *inputReader
}

func (f *limitFile) Read(p []byte) (int, error) { return f.r.Read(p) }

// checkJSONKeys refuses a JSON document in which an object has the same
// key twice (encoding/json would silently keep the last), as the fare
// rules parser does.
func checkJSONKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var stack []*jsonFrame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return nil // the parser reports syntax errors with more context
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				markValue(stack)
				continue
			}
			k, _ := tok.(string)
			if top.keys[k] {
				return fmt.Errorf("duplicate key %q at line %d", k, lineAt(b, dec.InputOffset()))
			}
			top.keys[k] = true
			top.key = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &jsonFrame{object: true, keys: map[string]bool{}, key: true})
		case json.Delim('['):
			stack = append(stack, &jsonFrame{})
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
			markValue(stack)
		default:
			markValue(stack)
		}
	}
}

type jsonFrame struct {
	object bool
	keys   map[string]bool
	key    bool // the next token in an object is a key
}

// markValue notes that a value ended inside the innermost object: a key
// comes next.
func markValue(stack []*jsonFrame) {
	if len(stack) > 0 && stack[len(stack)-1].object {
		stack[len(stack)-1].key = true
	}
}

func lineAt(b []byte, off int64) int {
	return bytes.Count(b[:min(int(off), len(b))], []byte("\n")) + 1
}
