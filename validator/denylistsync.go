package validator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faregate/faregate/denylist"
	"github.com/prometheus/client_golang/prometheus"
)

// DenylistSource hands a gate the next deny-list file to apply.
type DenylistSource interface {
	// Fetch returns the next signed file (a delta from since, or a
	// snapshot) for a gate whose list is at version since (0: it needs a
	// snapshot), or nil and no error when the gate is up to date. The
	// caller closes the reader.
	Fetch(ctx context.Context, since uint64) (io.ReadCloser, error)
}

// Compile-time checks that the sources satisfy the interface.
var (
	_ DenylistSource = (*HTTPDenylistSource)(nil)
	_ DenylistSource = (*DirDenylistSource)(nil)
)

// HTTPDenylistSource polls the back office: GET {BaseURL}/v1/denylist?since=N.
// The server answers 200 with a delta or a snapshot, 204 when the gate is up
// to date, or 304 when an up-to-date answer is unchanged (If-None-Match with
// the ETag of the last 204), so a CDN can serve the polls.
type HTTPDenylistSource struct {
	BaseURL string       // e.g. "https://backoffice.example"
	Client  *http.Client // nil: a client with connection and header timeouts
	// MaxBytes bounds a response body (default 1 GiB, a 130 M-entry
	// snapshot); a longer one is refused, not truncated.
	MaxBytes int64

	mu        sync.Mutex
	etag      string // ETag of the last 204 …
	etagSince uint64 // … and the version it answered
}

var defaultHTTPClient = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          2,
		ForceAttemptHTTP2:     true,
	},
}

// Fetch implements DenylistSource.
func (s *HTTPDenylistSource) Fetch(ctx context.Context, since uint64) (io.ReadCloser, error) {
	u, err := url.Parse(s.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("denylist sync: base URL: %w", err)
	}
	u = u.JoinPath("v1", "denylist")
	u.RawQuery = url.Values{"since": {strconv.FormatUint(since, 10)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("denylist sync: %w", err)
	}
	req.Header.Set("Accept", denylist.MediaType)
	s.mu.Lock()
	if s.etag != "" && s.etagSince == since {
		req.Header.Set("If-None-Match", s.etag)
	}
	s.mu.Unlock()
	client := s.Client
	if client == nil {
		client = defaultHTTPClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("denylist sync: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		limit := s.MaxBytes
		if limit <= 0 {
			limit = 1 << 30
		}
		return &limitedBody{r: resp.Body, left: limit}, nil
	case http.StatusNoContent, http.StatusNotModified:
		resp.Body.Close()
		if etag := resp.Header.Get("ETag"); etag != "" || resp.StatusCode == http.StatusNoContent {
			s.mu.Lock()
			s.etag, s.etagSince = etag, since
			s.mu.Unlock()
		}
		return nil, nil
	default:
		resp.Body.Close()
		return nil, fmt.Errorf("denylist sync: GET %s: HTTP %d", u.Redacted(), resp.StatusCode)
	}
}

// errTooLarge ends a response body longer than MaxBytes.
var errTooLarge = errors.New("denylist sync: response larger than the configured maximum")

type limitedBody struct {
	r    io.ReadCloser
	left int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

func (l *limitedBody) Close() error { return l.r.Close() }

// DirDenylistSource takes files from a directory, for gates fed by USB
// stick or a depot sync: any *.fgdl file there, snapshot or delta, whatever
// its name. Given a version, it picks the delta that starts there and
// reaches furthest, else the newest snapshot newer than that version (any
// snapshot when since is 0). Headers are read only to choose; the replica
// verifies the chosen file completely.
type DirDenylistSource struct {
	Dir string
}

// Fetch implements DenylistSource.
func (s *DirDenylistSource) Fetch(ctx context.Context, since uint64) (io.ReadCloser, error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("denylist sync: %w", err)
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
		return nil, fmt.Errorf("denylist sync: %w", err)
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

// DenylistMetrics are the deny-list sync metrics of a gate.
type DenylistMetrics struct {
	version     prometheus.Gauge
	entries     prometheus.Gauge
	created     prometheus.Gauge
	lastSuccess prometheus.Gauge
	failures    *prometheus.CounterVec
	updates     *prometheus.CounterVec

	now     atomic.Pointer[func() time.Time]
	ageFrom atomic.Int64 // Unix ns the age is measured from; 0: unknown
}

// Failure reasons, the values of the reason label.
var denylistFailureReasons = []string{
	"fetch", "malformed", "truncated", "signature", "list_id", "gap", "replay", "inconsistent", "compact", "other",
}

// NewDenylistMetrics registers the deny-list metrics on reg:
//
//	faregate_denylist_version                            version in force (0: none)
//	faregate_denylist_entries                            entries in force
//	faregate_denylist_created_timestamp_seconds          when the version in force was published
//	faregate_denylist_last_success_timestamp_seconds     last time the gate knew it was up to date
//	faregate_denylist_age_seconds                        seconds since then (see docs/denylist.md)
//	faregate_denylist_sync_failures_total{reason}        failed polls and refused files
//	faregate_denylist_updates_total{kind}                files applied, snapshot or delta
func NewDenylistMetrics(reg prometheus.Registerer) (*DenylistMetrics, error) {
	m := &DenylistMetrics{
		version: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "faregate_denylist_version", Help: "Version of the deny list in force (0: none).",
		}),
		entries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "faregate_denylist_entries", Help: "Entries in the deny list in force.",
		}),
		created: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "faregate_denylist_created_timestamp_seconds", Help: "When the back office published the version in force.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "faregate_denylist_last_success_timestamp_seconds", Help: "Last time the gate confirmed its deny list up to date.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faregate_denylist_sync_failures_total", Help: "Deny-list polls that failed or files refused, by reason.",
		}, []string{"reason"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faregate_denylist_updates_total", Help: "Deny-list files applied, by kind.",
		}, []string{"kind"}),
	}
	now := time.Now
	m.now.Store(&now)
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "faregate_denylist_age_seconds",
		Help: "Seconds since the gate last confirmed its deny list up to date (before the first success: since the version in force was published).",
	}, m.age)
	for _, c := range []prometheus.Collector{m.version, m.entries, m.created, m.lastSuccess, m.failures, m.updates, age} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("denylist metrics: %w", err)
		}
	}
	for _, r := range denylistFailureReasons {
		m.failures.WithLabelValues(r)
	}
	for _, k := range []string{"snapshot", "delta"} {
		m.updates.WithLabelValues(k)
	}
	return m, nil
}

func (m *DenylistMetrics) age() float64 {
	from := m.ageFrom.Load()
	if from == 0 {
		return 0
	}
	return (*m.now.Load())().Sub(time.Unix(0, from)).Seconds()
}

func (m *DenylistMetrics) setList(l *denylist.List) {
	m.version.Set(float64(l.Version()))
	m.entries.Set(float64(l.Len()))
	if l.Version() != 0 {
		m.created.Set(float64(l.Created().UnixMilli()) / 1e3)
	}
}

// syncError is a failed poll with its metric reason.
type syncError struct {
	reason string
	err    error
}

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }

// failureReason maps an error to its metric label.
func failureReason(err error) string {
	if se, ok := errors.AsType[*syncError](err); ok {
		return se.reason
	}
	for _, r := range []struct {
		err    error
		reason string
	}{
		{denylist.ErrTruncated, "truncated"},
		{denylist.ErrMalformed, "malformed"},
		{denylist.ErrKind, "malformed"},
		{denylist.ErrSignature, "signature"},
		{denylist.ErrListID, "list_id"},
		{denylist.ErrGap, "gap"},
		{denylist.ErrReplay, "replay"},
		{denylist.ErrInconsistent, "inconsistent"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "other"
}

// DenylistSyncOptions tune a DenylistSync. Source and Replica are
// required; any other zero field means its default.
type DenylistSyncOptions struct {
	// Interval between polls while all is well (default 20 s). With the
	// default jitter a change published at t is applied by t + 25 s plus
	// the CDN's max-age (docs/denylist.md has the 60 s budget).
	Interval time.Duration
	// Jitter spreads polls by ± this fraction of Interval (default 0.25) so
	// gates do not poll in step.
	Jitter float64
	// MinBackoff and MaxBackoff bound the wait after failures: MinBackoff
	// doubled per consecutive failure, with full jitter, at most MaxBackoff
	// (defaults 2 s and 5 min).
	MinBackoff, MaxBackoff time.Duration
	// CompactAfter folds delta files into a new snapshot file once this many
	// are pending (default 32).
	CompactAfter int
	Logger       *slog.Logger      // nil: discard
	Now          func() time.Time  // nil: time.Now
	Rand         func() float64    // uniform in [0, 1); nil: math/rand/v2
	Metrics      *DenylistMetrics  // nil: none
	Source       DenylistSource    // required
	Replica      *denylist.Replica // required
}

// DenylistSync keeps a gate's deny-list replica up to date from a source.
// Run it on one goroutine; SyncOnce is for tests and one-shot tools and must
// not run concurrently with Run.
type DenylistSync struct {
	o       DenylistSyncOptions
	log     *slog.Logger
	success bool // a poll has confirmed the list up to date
}

// NewDenylistSync returns a sync client; Run starts it.
func NewDenylistSync(o DenylistSyncOptions) (*DenylistSync, error) {
	if o.Source == nil || o.Replica == nil {
		return nil, errors.New("denylist sync: Source and Replica are required")
	}
	if o.Interval <= 0 {
		o.Interval = 20 * time.Second
	}
	if o.Jitter <= 0 {
		o.Jitter = 0.25
	}
	o.Jitter = min(o.Jitter, 1)
	if o.MinBackoff <= 0 {
		o.MinBackoff = 2 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.CompactAfter <= 0 {
		o.CompactAfter = 32
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &DenylistSync{o: o, log: log.With("component", "denylist-sync")}
	if m := o.Metrics; m != nil {
		now := o.Now
		m.now.Store(&now)
		l := o.Replica.List()
		m.setList(l)
		if l.Version() != 0 {
			m.ageFrom.Store(l.Created().UnixNano())
		} else {
			m.ageFrom.Store(o.Now().UnixNano())
		}
	}
	return s, nil
}

// Run polls until ctx is done, then returns ctx.Err(). A failed poll is
// logged and counted, and retried after a backoff; the list in force never
// changes on failure.
func (s *DenylistSync) Run(ctx context.Context) error {
	failures := 0
	for {
		var wait time.Duration
		if err := s.SyncOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			wait = s.backoff(failures)
			s.log.Warn("deny-list sync failed", "err", err, "reason", failureReason(err),
				"failures", failures, "retry_in", wait)
		} else {
			failures = 0
			wait = s.interval()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// interval is Interval ± Jitter.
func (s *DenylistSync) interval() time.Duration {
	f := 1 + s.o.Jitter*(2*s.o.Rand()-1)
	return time.Duration(float64(s.o.Interval) * f)
}

// backoff is a uniform draw in [MinBackoff/2, cap], cap = MinBackoff ×
// 2^(failures-1) bounded by MaxBackoff.
func (s *DenylistSync) backoff(failures int) time.Duration {
	c := s.o.MinBackoff
	for i := 1; i < failures && c < s.o.MaxBackoff; i++ {
		c *= 2
	}
	c = min(c, s.o.MaxBackoff)
	lo := s.o.MinBackoff / 2
	return lo + time.Duration(s.o.Rand()*float64(c-lo))
}

// maxFilesPerSync bounds one SyncOnce, so a source that keeps offering
// files cannot hold it forever.
const maxFilesPerSync = 64

// SyncOnce fetches and applies files until the source reports the replica
// up to date. The first error ends it; files applied before stay applied.
func (s *DenylistSync) SyncOnce(ctx context.Context) error {
	for range maxFilesPerSync {
		since := s.o.Replica.Since()
		rc, err := s.o.Source.Fetch(ctx, since)
		if err != nil {
			return s.fail("fetch", err)
		}
		if rc == nil {
			s.upToDate()
			return nil
		}
		u, err := s.o.Replica.Update(ctx, rc)
		rc.Close()
		if err != nil {
			err = fmt.Errorf("denylist sync: since %d: %w", since, err)
			if ctx.Err() != nil {
				return err
			}
			return s.fail(failureReason(err), err)
		}
		s.log.Info("deny list updated", "kind", u.Kind.String(), "from", u.From, "to", u.To, "entries", u.Entries)
		if m := s.o.Metrics; m != nil {
			m.updates.WithLabelValues(u.Kind.String()).Inc()
			m.setList(s.o.Replica.List())
			if !s.success {
				m.ageFrom.Store(s.o.Replica.List().Created().UnixNano())
			}
		}
		if s.o.Replica.PendingDeltas() >= s.o.CompactAfter {
			if err := s.o.Replica.Compact(ctx); err != nil {
				// ErrInconsistent: Since now asks for a snapshot; go on.
				s.fail("compact", err)
				s.log.Warn("deny-list compaction failed", "err", err)
			}
		}
	}
	return nil
}

// fail counts a failure and returns err labelled with its reason.
func (s *DenylistSync) fail(reason string, err error) error {
	if m := s.o.Metrics; m != nil {
		m.failures.WithLabelValues(reason).Inc()
	}
	return &syncError{reason: reason, err: err}
}

func (s *DenylistSync) upToDate() {
	s.success = true
	s.log.Debug("deny list up to date", "version", s.o.Replica.List().Version())
	if m := s.o.Metrics; m != nil {
		now := s.o.Now()
		m.lastSuccess.Set(float64(now.UnixMilli()) / 1e3)
		m.ageFrom.Store(now.UnixNano())
	}
}
