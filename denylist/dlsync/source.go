package dlsync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/faregate/faregate/denylist"
)

// Source hands a gate the signed head and the next deny-list file.
type Source interface {
	// Head returns the signed head statement, unverified (the client
	// verifies it), or nil and no error when the source has none (a
	// directory without a head file).
	Head(ctx context.Context) ([]byte, error)
	// Fetch returns the next signed file (a delta from since, or a
	// snapshot) for a gate whose list is at version since (0: it needs a
	// snapshot), or nil and no error when the source says the gate is up to
	// date. The caller closes the reader.
	Fetch(ctx context.Context, since uint64) (io.ReadCloser, error)
}

// Compile-time checks that the sources satisfy the interface.
var (
	_ Source = (*HTTPSource)(nil)
	_ Source = (*DirSource)(nil)
)

// Errors of a source, for errors.Is; the client counts each under its own
// metric reason.
var (
	// ErrTimeout: a dial, the response header, a pause in the body or the
	// whole request took longer than its timeout.
	ErrTimeout = errors.New("dlsync: timed out")
	// ErrTooLarge: a body longer than the source's limit (refused, never
	// truncated).
	ErrTooLarge = errors.New("dlsync: response larger than the configured maximum")
	// ErrProtocol: an answer the protocol does not allow: an unexpected
	// status or content type.
	ErrProtocol = errors.New("dlsync: unexpected answer")
	// ErrBehind: the back office's version is older than the gate's (409; a
	// back office restored from a backup): the gate keeps its list.
	ErrBehind = errors.New("dlsync: the back office is behind the gate")
)

// HTTPSource polls the back office: GET {BaseURL}/v1/denylist/head and
// GET {BaseURL}/v1/denylist?since=N. It sends If-None-Match with the ETag
// of the last 204, so a CDN can answer the polls with 304. Every request is
// bounded in time (dial, response header, each pause in the body, the
// whole request) and in size; a wrong status or content type is refused
// before the body is read.
type HTTPSource struct {
	BaseURL string       // e.g. "https://backoffice.example"
	Client  *http.Client // nil: one with DialTimeout and HeaderTimeout
	// MaxBytes bounds a response body (default: a snapshot of
	// denylist.DefaultMaxEntries entries, 128 MiB). The replica also
	// refuses to read past the size a file's header announces.
	MaxBytes int64
	// DialTimeout (default 10 s) bounds connecting, TLS included;
	// HeaderTimeout (default 15 s) waiting for the response header, once
	// the request is sent. Both apply only when Client is nil.
	DialTimeout, HeaderTimeout time.Duration
	// BodyIdleTimeout is the longest pause between two reads of the body
	// that return data (default 30 s): a server trickling bytes slower than
	// that is cut off.
	BodyIdleTimeout time.Duration
	// Timeout bounds a whole request, body included (default 5 min: a
	// 128 MiB snapshot at 4 Mbit/s).
	Timeout time.Duration

	once      sync.Once
	client    *http.Client
	mu        sync.Mutex
	etag      string // ETag of the last 204 …
	etagSince uint64 // … and the version it answered
}

func (s *HTTPSource) init() {
	s.once.Do(func() {
		s.client = s.Client
		if s.client == nil {
			dial := orDefault(s.DialTimeout, 10*time.Second)
			s.client = &http.Client{Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   dial,
				ResponseHeaderTimeout: orDefault(s.HeaderTimeout, 15*time.Second),
				IdleConnTimeout:       90 * time.Second,
				MaxIdleConns:          2,
				ForceAttemptHTTP2:     true,
			}}
		}
		if s.MaxBytes <= 0 {
			s.MaxBytes = denylist.HeaderSize + 8*denylist.DefaultMaxEntries + denylist.SignatureSize
		}
	})
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Head implements Source.
func (s *HTTPSource) Head(ctx context.Context) ([]byte, error) {
	s.init()
	base, err := url.Parse(s.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("dlsync: base URL: %w", err)
	}
	u := base.JoinPath(HeadPath)
	resp, body, err := s.get(ctx, u, "", denylist.HeadSizeNextKey)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: HTTP %d", ErrProtocol, u.Redacted(), resp.StatusCode)
	}
	if err := checkType(resp, HeadMediaType); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Fetch implements Source.
func (s *HTTPSource) Fetch(ctx context.Context, since uint64) (io.ReadCloser, error) {
	s.init()
	base, err := url.Parse(s.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("dlsync: base URL: %w", err)
	}
	u := listURL(base, since)
	inm := ""
	s.mu.Lock()
	if s.etag != "" && s.etagSince == since {
		inm = s.etag
	}
	s.mu.Unlock()
	resp, body, err := s.get(ctx, u, inm, s.MaxBytes)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if err := checkType(resp, ListMediaType); err != nil {
			body.Close()
			return nil, err
		}
		return body, nil
	case http.StatusNoContent, http.StatusNotModified:
		body.Close()
		if etag := resp.Header.Get("ETag"); etag != "" || resp.StatusCode == http.StatusNoContent {
			s.mu.Lock()
			s.etag, s.etagSince = etag, since
			s.mu.Unlock()
		}
		return nil, nil
	case http.StatusConflict:
		body.Close()
		return nil, fmt.Errorf("%w: the gate is at version %d", ErrBehind, since)
	default:
		body.Close()
		return nil, fmt.Errorf("%w: GET %s: HTTP %d", ErrProtocol, u.Redacted(), resp.StatusCode)
	}
}

// get sends one GET under the source's timeouts and returns the response
// with its body bounded to limit bytes and BodyIdleTimeout per pause. The
// caller closes the body, which releases the request.
func (s *HTTPSource) get(ctx context.Context, u *url.URL, ifNoneMatch string, limit int64) (*http.Response, io.ReadCloser, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	overall := time.AfterFunc(orDefault(s.Timeout, 5*time.Minute), func() { cancel(ErrTimeout) })
	release := func() {
		overall.Stop()
		cancel(context.Canceled)
	}
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("dlsync: %w", err)
	}
	req.Header.Set("Accept", ListMediaType+", "+HeadMediaType)
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		err = requestError(ctx, rctx, err)
		release()
		return nil, nil, err
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		release()
		return nil, nil, fmt.Errorf("%w: Content-Length %d, at most %d", ErrTooLarge, resp.ContentLength, limit)
	}
	b := &body{r: resp.Body, left: limit, ctx: ctx, rctx: rctx, release: release}
	b.idle = time.AfterFunc(orDefault(s.BodyIdleTimeout, 30*time.Second), func() { cancel(ErrTimeout) })
	b.idleFor = orDefault(s.BodyIdleTimeout, 30*time.Second)
	return resp, b, nil
}

// requestError names a timeout as ErrTimeout; the caller's own
// cancellation stays what it is.
func requestError(parent, rctx context.Context, err error) error {
	if parent.Err() != nil {
		return parent.Err()
	}
	if errors.Is(context.Cause(rctx), ErrTimeout) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("dlsync: %w", err)
}

func checkType(resp *http.Response, want string) error {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != want {
		return fmt.Errorf("%w: Content-Type %q, want %s", ErrProtocol, strings.ToValidUTF8(resp.Header.Get("Content-Type"), "?"), want)
	}
	return nil
}

// body is a response body bounded in size and in the pause between reads.
type body struct {
	r         io.ReadCloser
	left      int64
	ctx, rctx context.Context
	idle      *time.Timer
	idleFor   time.Duration
	release   func()
}

func (b *body) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			return 0, ErrTooLarge
		}
		return 0, b.err(err)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if n > 0 {
		b.idle.Reset(b.idleFor)
	}
	return n, b.err(err)
}

func (b *body) err(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return requestError(b.ctx, b.rctx, err)
}

func (b *body) Close() error {
	b.idle.Stop()
	err := b.r.Close()
	b.release()
	return err
}

// DirSource takes files from a directory, for gates fed by USB stick or a
// depot sync: any *.fgdl file there, snapshot or delta, whatever its name,
// and the head statement in HeadFile when there is one. Given a version, it
// picks the delta that starts there and reaches furthest, else the newest
// snapshot newer than that version (any snapshot when since is 0). Headers
// are read only to choose; the replica verifies the chosen file completely.
type DirSource struct {
	Dir string
}

// HeadFile is the name of the head statement in a DirSource's directory.
const HeadFile = "head.fgdh"

// Head implements Source: the head file, or nil when there is none.
func (s *DirSource) Head(ctx context.Context) ([]byte, error) {
	f, err := os.Open(filepath.Join(s.Dir, HeadFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dlsync: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, denylist.HeadSizeNextKey+1))
	if err != nil {
		return nil, fmt.Errorf("dlsync: %w", err)
	}
	return b, nil
}

// Fetch implements Source.
func (s *DirSource) Fetch(ctx context.Context, since uint64) (io.ReadCloser, error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("dlsync: %w", err)
	}
	var best string
	var bestDelta bool
	var bestTo uint64
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".fgdl") {
			continue
		}
		path := filepath.Join(s.Dir, e.Name())
		h, err := readHeader(path)
		if err != nil {
			continue // not ours or damaged: never chosen
		}
		switch {
		case h.Kind == denylist.KindDelta && since != 0 && h.From == since:
			if !bestDelta || h.To > bestTo {
				best, bestDelta, bestTo = path, true, h.To
			}
		case h.Kind == denylist.KindSnapshot && !bestDelta && (h.To > since || since == 0):
			if best == "" || h.To > bestTo {
				best, bestTo = path, h.To
			}
		}
	}
	if best == "" {
		return nil, nil
	}
	f, err := os.Open(best)
	if err != nil {
		return nil, fmt.Errorf("dlsync: %w", err)
	}
	return f, nil
}

func readHeader(path string) (denylist.Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return denylist.Header{}, err
	}
	defer f.Close()
	return denylist.ReadHeader(bufio.NewReaderSize(f, denylist.HeaderSize))
}
