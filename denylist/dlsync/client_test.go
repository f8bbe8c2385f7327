package dlsync

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/faregate/faregate/denylist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

const dlTestdata = "../../testdata/denylist"

func dlFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dlTestdata, name))
	require.NoError(t, err)
	return b
}

func dlReplica(t testing.TB) *denylist.Replica {
	t.Helper()
	pub, err := denylist.ParsePublicKey(dlFile(t, "test.pub"))
	require.NoError(t, err)
	r, err := denylist.OpenReplica(context.Background(), t.TempDir(), denylist.ReplicaConfig{ListID: "test", PublicKey: pub})
	require.NoError(t, err)
	return r
}

func dlKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	key, err := denylist.ParsePrivateKey(dlFile(t, "test.key"))
	require.NoError(t, err)
	return key
}

// dlHead signs the head of golden version v (0: the empty list), issued at
// issued, valid for ttl.
func dlHead(t testing.TB, v int, issued time.Time, ttl time.Duration) []byte {
	t.Helper()
	l := denylist.Empty("test")
	if v > 0 {
		var err error
		l, err = denylist.ReadSnapshot(bytes.NewReader(dlFile(t, "snapshot-v"+strconv.Itoa(v)+".fgdl")), dlKey(t).Public().(ed25519.PublicKey))
		require.NoError(t, err)
	}
	b, err := denylist.SignHead(dlKey(t), denylist.HeadOf(l, issued, ttl))
	require.NoError(t, err)
	return b
}

// dlServer serves the golden files the way the back office does: the
// signed head of the newest version at /v1/denylist/head; since=0 a
// snapshot, since=N a delta to the newest version, 204 + ETag when up to
// date, 304 when If-None-Match matches.
type dlServer struct {
	t        testing.TB
	mu       sync.Mutex
	latest   int // newest version served
	requests []string
	status   int       // forced status, 0: normal
	now      time.Time // the head's issue time
	noHead   bool      // answer 404 at the head
}

func (s *dlServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.URL.RequestURI()+" "+r.Header.Get("If-None-Match"))
	if s.status != 0 {
		w.WriteHeader(s.status)
		return
	}
	if r.URL.Path == HeadPath {
		if s.noHead {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", HeadMediaType)
		w.Write(dlHead(s.t, s.latest, s.now, 15*time.Minute))
		return
	}
	since, err := strconv.Atoi(r.URL.Query().Get("since"))
	require.NoError(s.t, err)
	etag := `"test-` + strconv.Itoa(since) + `-` + strconv.Itoa(s.latest) + `"`
	w.Header().Set("ETag", etag)
	switch {
	case since == s.latest:
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case since == 0:
		w.Header().Set("Content-Type", ListMediaType)
		w.Write(dlFile(s.t, "snapshot-v"+strconv.Itoa(s.latest)+".fgdl"))
	default:
		w.Header().Set("Content-Type", ListMediaType)
		w.Write(dlFile(s.t, "delta-v"+strconv.Itoa(since)+"-v"+strconv.Itoa(s.latest)+".fgdl"))
	}
}

var dlT0 = time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC)

func TestSyncHTTP(t *testing.T) {
	now := dlT0
	srv := &dlServer{t: t, latest: 1, now: now}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	r := dlReplica(t)
	s, err := NewClient(ClientOptions{
		Source: &HTTPSource{BaseURL: ts.URL}, Replica: r, Metrics: m,
		Now: func() time.Time { return now },
	})
	require.NoError(t, err)
	ctx := context.Background()
	require.True(t, s.Stale(), "nothing confirmed yet")

	require.NoError(t, s.SyncOnce(ctx))
	require.Equal(t, uint64(1), r.List().Version())
	require.False(t, s.Stale())
	require.NoError(t, s.SyncOnce(ctx))
	srv.latest = 3
	now = now.Add(20 * time.Second)
	srv.now = now
	require.NoError(t, s.SyncOnce(ctx))
	require.Equal(t, uint64(3), r.List().Version())
	require.Equal(t, []string{
		"/v1/denylist/head ",    // names v1
		"/v1/denylist?since=0 ", // snapshot v1, matches the head
		"/v1/denylist/head ",    // still v1: nothing else to ask
		"/v1/denylist/head ",    // names v3
		"/v1/denylist?since=1 ", // delta 1→3, matches the head
	}, srv.requests)

	now = now.Add(5 * time.Second)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP faregate_denylist_age_seconds Seconds since the issue of the newest signed head statement that matched the deny list in force (before the first: since that list was published).
# TYPE faregate_denylist_age_seconds gauge
faregate_denylist_age_seconds 5
# HELP faregate_denylist_created_timestamp_seconds When the back office published the version in force.
# TYPE faregate_denylist_created_timestamp_seconds gauge
faregate_denylist_created_timestamp_seconds 1.79540658e+09
# HELP faregate_denylist_entries Entries in the deny list in force.
# TYPE faregate_denylist_entries gauge
faregate_denylist_entries 6
# HELP faregate_denylist_head_expires_timestamp_seconds When the newest verified signed head statement expires.
# TYPE faregate_denylist_head_expires_timestamp_seconds gauge
faregate_denylist_head_expires_timestamp_seconds 1.79541092e+09
# HELP faregate_denylist_head_version Version named by the newest verified signed head statement.
# TYPE faregate_denylist_head_version gauge
faregate_denylist_head_version 3
# HELP faregate_denylist_last_success_timestamp_seconds Last time the gate confirmed its deny list up to date.
# TYPE faregate_denylist_last_success_timestamp_seconds gauge
faregate_denylist_last_success_timestamp_seconds 1.79541002e+09
# HELP faregate_denylist_stale 1 when no fresh signed head statement vouches for the deny list in force (expired, missing or not matching).
# TYPE faregate_denylist_stale gauge
faregate_denylist_stale 0
# HELP faregate_denylist_updates_total Deny-list files applied, by kind.
# TYPE faregate_denylist_updates_total counter
faregate_denylist_updates_total{kind="delta"} 1
faregate_denylist_updates_total{kind="snapshot"} 1
# HELP faregate_denylist_version Version of the deny list in force (0: none).
# TYPE faregate_denylist_version gauge
faregate_denylist_version 3
`), "faregate_denylist_age_seconds", "faregate_denylist_created_timestamp_seconds", "faregate_denylist_entries",
		"faregate_denylist_head_expires_timestamp_seconds", "faregate_denylist_head_version", "faregate_denylist_stale",
		"faregate_denylist_last_success_timestamp_seconds", "faregate_denylist_updates_total", "faregate_denylist_version"))
	for _, reason := range FailureReasons {
		require.Zero(t, testutil.ToFloat64(m.failures.WithLabelValues(reason)), reason)
	}

	// A server error is counted (the head and the file request: two) and
	// changes nothing.
	srv.status = http.StatusServiceUnavailable
	err = s.SyncOnce(ctx)
	require.ErrorContains(t, err, "HTTP 503")
	require.Equal(t, 2.0, testutil.ToFloat64(m.failures.WithLabelValues("protocol")))
	require.Equal(t, uint64(3), r.List().Version())

	// Fifteen minutes without a fresh head: stale, and the metric says so.
	now = now.Add(15 * time.Minute)
	require.True(t, s.Stale())
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP faregate_denylist_stale 1 when no fresh signed head statement vouches for the deny list in force (expired, missing or not matching).
# TYPE faregate_denylist_stale gauge
faregate_denylist_stale 1
`), "faregate_denylist_stale"))
}

// TestDenylistSyncRefusals serves bad files: each is refused with its
// reason counted, and the list in force stays.
func TestSyncRefusals(t *testing.T) {
	snap1 := dlFile(t, "snapshot-v1.fgdl")
	forged := bytes.Clone(dlFile(t, "delta-v1-v2.fgdl"))
	forged[denylist.HeaderSize] ^= 1
	tests := []struct {
		name   string
		body   []byte
		reason string
	}{
		{"forged delta", forged, "signature"},
		{"gap", dlFile(t, "delta-v2-v3.fgdl"), "gap"},
		{"replay", snap1, "replay"},
		{"truncated", dlFile(t, "delta-v1-v2.fgdl")[:100], "truncated"},
		{"html error page", []byte("<html>502 Bad Gateway</html>" + strings.Repeat(" ", 100)), "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, head := snap1, dlHead(t, 1, dlT0, time.Hour)
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == HeadPath {
					w.Header().Set("Content-Type", HeadMediaType)
					w.Write(head)
					return
				}
				w.Header().Set("Content-Type", ListMediaType)
				w.Write(body)
			}))
			defer ts.Close()
			reg := prometheus.NewPedanticRegistry()
			m, err := NewMetrics(reg)
			require.NoError(t, err)
			r := dlReplica(t)
			s, err := NewClient(ClientOptions{Source: &HTTPSource{BaseURL: ts.URL}, Replica: r, Metrics: m,
				Now: func() time.Time { return dlT0 }})
			require.NoError(t, err)
			// The stub serves v1 then, under a head naming v3, the bad file.
			require.NoError(t, s.SyncOnce(context.Background()))
			require.Equal(t, uint64(1), r.List().Version())
			body, head = tt.body, dlHead(t, 3, dlT0, time.Hour)
			before := testutil.ToFloat64(m.failures.WithLabelValues(tt.reason))
			err = s.SyncOnce(context.Background())
			require.Error(t, err)
			require.Equal(t, uint64(1), r.List().Version())
			require.Equal(t, before+1, testutil.ToFloat64(m.failures.WithLabelValues(tt.reason)))
			require.Equal(t, 1.0, testutil.ToFloat64(m.version))
		})
	}
}

func TestHTTPSourceMaxBytes(t *testing.T) {
	snap := dlFile(t, "snapshot-v1.fgdl")
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(snap) }))
	defer ts.Close()
	r := dlReplica(t)
	s, err := NewClient(ClientOptions{Source: &HTTPSource{BaseURL: ts.URL, MaxBytes: 100}, Replica: r})
	require.NoError(t, err)
	require.ErrorIs(t, s.SyncOnce(context.Background()), ErrTooLarge)
	require.Equal(t, uint64(0), r.List().Version())

	_, err = (&HTTPSource{BaseURL: "::bad"}).Fetch(context.Background(), 0)
	require.Error(t, err)
}

func TestDirSource(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"snapshot-v1.fgdl", "snapshot-v2.fgdl", "delta-v1-v2.fgdl", "delta-v1-v3.fgdl", "delta-v2-v3.fgdl"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "x-"+name), dlFile(t, name), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.fgdl"), []byte("junk"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README"), []byte("not a list"), 0o644))
	src := &DirSource{Dir: dir}
	pick := func(since uint64) string {
		rc, err := src.Fetch(context.Background(), since)
		require.NoError(t, err)
		if rc == nil {
			return ""
		}
		defer rc.Close()
		return filepath.Base(rc.(*os.File).Name())
	}
	require.Equal(t, "x-snapshot-v2.fgdl", pick(0), "newest snapshot")
	require.Equal(t, "x-delta-v1-v3.fgdl", pick(1), "the delta that reaches furthest")
	require.Equal(t, "x-delta-v2-v3.fgdl", pick(2))
	require.Equal(t, "", pick(3), "up to date")

	// A gate fed from the directory reaches v3 in two files.
	r := dlReplica(t)
	s, err := NewClient(ClientOptions{Source: src, Replica: r})
	require.NoError(t, err)
	require.NoError(t, s.SyncOnce(context.Background()))
	require.Equal(t, uint64(3), r.List().Version())

	_, err = (&DirSource{Dir: filepath.Join(dir, "missing")}).Fetch(context.Background(), 0)
	require.Error(t, err)
}

// fakeSource records when it is polled and answers from a script. It has
// no head statements.
func (f *fakeSource) Head(context.Context) ([]byte, error) { return nil, nil }

// fakeSource records when it is polled and answers from a script.
type fakeSource struct {
	mu    sync.Mutex
	times []time.Time
	errs  []error // answers in order; nil: up to date; past the end: up to date
}

func (f *fakeSource) Fetch(ctx context.Context, since uint64) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.times = append(f.times, time.Now())
	if len(f.errs) == 0 {
		return nil, nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return nil, err
}

// TestDenylistSyncSchedule checks the poll schedule in a synctest bubble:
// Interval ± Jitter when all is well, doubling backoff after failures, and
// a prompt stop on cancellation.
func TestSyncSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("network down")
		src := &fakeSource{errs: []error{nil, boom, boom, boom, boom, nil}}
		rnd := []float64{1, 0.5, 0.5, 0.5, 0.5, 0} // one per wait, then 0.5
		s, err := NewClient(ClientOptions{
			Source: src, Replica: dlReplica(t),
			Interval: 20 * time.Second, Jitter: 0.25, MinBackoff: 2 * time.Second, MaxBackoff: 5 * time.Second,
			Rand: func() float64 {
				if len(rnd) == 0 {
					return 0.5
				}
				v := rnd[0]
				rnd = rnd[1:]
				return v
			},
		})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)

		start := src.times[0]
		var gaps []time.Duration
		for _, at := range src.times[1:7] {
			gaps = append(gaps, at.Sub(start))
			start = at
		}
		require.Equal(t, []time.Duration{
			25 * time.Second,        // up to date: 20 s + 25 % (rand 1)
			1500 * time.Millisecond, // failure 1: uniform in [1 s, 2 s]
			2500 * time.Millisecond, // failure 2: [1 s, 4 s]
			3 * time.Second,         // failure 3: [1 s, 8 s] capped at 5 s
			3 * time.Second,         // failure 4: still capped
			15 * time.Second,        // up to date again: 20 s - 25 % (rand 0)
		}, gaps)
	})
}
