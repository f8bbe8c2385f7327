package dlsync

// The hostile-server suite: a cache or a man in the middle between the
// gate and the back office tries to flood it, freeze it on an old list,
// stall it, or confuse it with a restored back office. Every case ends with
// the gate on a verified list, with bounded memory (measured), nothing
// unverified on disk, and metrics that say what happened.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faregate/faregate/denylist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// hostile is a server whose every answer a test can replace.
type hostile struct {
	mu   sync.Mutex
	head func(w http.ResponseWriter) // nil: the honest head
	list func(w http.ResponseWriter, since uint64)
	// honest state
	t      testing.TB
	latest int
	now    time.Time
	sent   atomic.Int64 // bytes written to list bodies
}

func (h *hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	head, list, latest, now := h.head, h.list, h.latest, h.now
	h.mu.Unlock()
	cw := &countingResponse{ResponseWriter: w, n: &h.sent}
	if r.URL.Path == HeadPath {
		if head != nil {
			head(w)
			return
		}
		w.Header().Set("Content-Type", HeadMediaType)
		w.Write(dlHead(h.t, latest, now, 15*time.Minute))
		return
	}
	since, err := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
	require.NoError(h.t, err)
	if list != nil {
		list(cw, since)
		return
	}
	switch {
	case since == uint64(latest):
		w.WriteHeader(http.StatusNoContent)
	case since == 0:
		w.Header().Set("Content-Type", ListMediaType)
		cw.Write(dlFile(h.t, "snapshot-v"+strconv.Itoa(latest)+".fgdl"))
	default:
		w.Header().Set("Content-Type", ListMediaType)
		cw.Write(dlFile(h.t, "delta-v"+strconv.FormatUint(since, 10)+"-v"+strconv.Itoa(latest)+".fgdl"))
	}
}

func (h *hostile) set(f func(h *hostile)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

type countingResponse struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingResponse) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *countingResponse) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// gateUnderTest is a gate's replica, client and metrics against one server.
type gateUnderTest struct {
	dir     string
	replica *denylist.Replica
	client  *Client
	reg     *prometheus.Registry
	m       *Metrics
	now     time.Time
}

func newGateUnderTest(t *testing.T, url string, maxEntries int, src *HTTPSource) *gateUnderTest {
	t.Helper()
	g := &gateUnderTest{dir: t.TempDir(), reg: prometheus.NewPedanticRegistry(), now: dlT0}
	pub := dlKey(t).Public().(ed25519.PublicKey)
	var err error
	g.replica, err = denylist.OpenReplica(context.Background(), g.dir, denylist.ReplicaConfig{ListID: "test", PublicKey: pub, MaxEntries: maxEntries})
	require.NoError(t, err)
	g.m, err = NewMetrics(g.reg)
	require.NoError(t, err)
	if src == nil {
		src = &HTTPSource{}
	}
	src.BaseURL = url
	g.client, err = NewClient(ClientOptions{Source: src, Replica: g.replica, Metrics: g.m, Now: func() time.Time { return g.now }})
	require.NoError(t, err)
	return g
}

func (g *gateUnderTest) failures(reason string) float64 {
	return testutil.ToFloat64(g.m.failures.WithLabelValues(reason))
}

func (g *gateUnderTest) gauge(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := g.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// requireOnDisk checks that the replica directory holds only verified
// files: no temporary file, and a fresh replica opened on it (which
// verifies every file) holds version want.
func (g *gateUnderTest) requireOnDisk(t *testing.T, want uint64) {
	t.Helper()
	entries, err := os.ReadDir(g.dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.HasPrefix(e.Name(), ".tmp-"), "unverified bytes left on disk: %s", e.Name())
		require.True(t, e.Name() == denylist.SnapshotFile || strings.HasPrefix(e.Name(), "delta-"), "unexpected file %s", e.Name())
	}
	again, err := denylist.OpenReplica(context.Background(), g.dir, denylist.ReplicaConfig{ListID: "test", PublicKey: dlKey(t).Public().(ed25519.PublicKey)})
	require.NoError(t, err)
	require.Equal(t, want, again.List().Version())
}

// measure runs f and returns the bytes it allocated and the peak of the
// heap in use while it ran, sampled every millisecond.
func measure(f func()) (allocated, peak uint64) {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		var ms runtime.MemStats
		top := before.HeapInuse
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- top
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				top = max(top, ms.HeapInuse)
			}
		}
	}()
	f()
	close(stop)
	peak = <-done
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, max(peak, after.HeapInuse) - before.HeapInuse
}

// floodBody is a snapshot header announcing count entries of version 2,
// then strictly increasing fingerprints without end and no valid signature:
// structurally sound until the signature, so the decoder reads everything
// the header allows.
type floodBody struct {
	hdr   []byte
	fp    uint64
	chunk []byte
}

func newFlood(count uint64) *floodBody {
	h := make([]byte, denylist.HeaderSize)
	copy(h, denylist.Magic)
	h[4], h[5] = denylist.FormatVersion, byte(denylist.KindSnapshot)
	copy(h[8:], "test")
	binary.BigEndian.PutUint64(h[32:], 2)
	binary.BigEndian.PutUint64(h[40:], uint64(dlT0.UnixMilli()))
	binary.BigEndian.PutUint64(h[48:], count)
	return &floodBody{hdr: h, chunk: make([]byte, 64<<10)}
}

func (f *floodBody) Read(p []byte) (int, error) {
	if len(f.hdr) > 0 {
		n := copy(p, f.hdr)
		f.hdr = f.hdr[n:]
		return n, nil
	}
	n := len(p) &^ 7
	if n == 0 {
		return copy(p, []byte{0xEE}), nil
	}
	for i := 0; i < n; i += 8 {
		f.fp += 1 << 20
		binary.BigEndian.PutUint64(p[i:], f.fp)
	}
	return n, nil
}

// serveFlood serves a flood of size bytes (the gate hangs up earlier).
func serveFlood(count uint64, size int64) func(w http.ResponseWriter, since uint64) {
	return func(w http.ResponseWriter, since uint64) {
		w.Header().Set("Content-Type", ListMediaType)
		io.CopyBuffer(w, io.LimitReader(newFlood(count), size), make([]byte, 64<<10))
	}
}

// startAtV1 brings the gate to version 1, confirmed by a head.
func startAtV1(t *testing.T, g *gateUnderTest, srv *hostile) {
	t.Helper()
	srv.set(func(h *hostile) { h.latest = 1; h.now = dlT0 })
	require.NoError(t, g.client.SyncOnce(context.Background()))
	require.Equal(t, uint64(1), g.replica.List().Version())
	require.False(t, g.client.Stale())
}

// recover makes the server honest at version 2 and checks that the gate
// reaches it, verified and confirmed, with nothing else on disk.
func recoverToV2(t *testing.T, g *gateUnderTest, srv *hostile) {
	t.Helper()
	srv.set(func(h *hostile) { h.head, h.list, h.latest, h.now = nil, nil, 2, g.now })
	require.NoError(t, g.client.SyncOnce(context.Background()))
	require.Equal(t, uint64(2), g.replica.List().Version())
	require.False(t, g.client.Stale())
	require.Equal(t, 0.0, g.gauge(t, "faregate_denylist_stale"))
	require.Equal(t, 0.0, g.gauge(t, "faregate_denylist_age_seconds"))
	g.requireOnDisk(t, 2)
}

func TestHostileFlood(t *testing.T) {
	const limit = 1 << 20 // 8 MiB of fingerprints
	for _, tt := range []struct {
		name       string
		maxEntries int    // the gate's limit, 0: the default
		count      uint64 // entries the header announces
		size       int64  // bytes served
		reason     string
	}{
		// A header announcing 2^28 entries is refused on sight.
		{"beyond the gate's limit", limit, denylist.MaxEntries, 1 << 30, "too_large"},
		// A header within the limit is read to the end it announces, no
		// further, and refused on its signature. Nothing is built from
		// unverified bytes: memory is the buffers, whatever the size.
		{"within the limit, bad signature", limit, limit, denylist.HeaderSize + 8*limit + 64, "signature"},
		// The same, and the server goes on sending: the gate reads one
		// byte past the announced end and refuses.
		{"within the limit, endless", limit, limit, 1 << 30, "malformed"},
		// The default limit (2^24 entries): 128 MiB is read and hashed,
		// and memory still does not grow.
		{"default limit, bad signature", 0, denylist.DefaultMaxEntries, denylist.HeaderSize + 8*denylist.DefaultMaxEntries + 64, "signature"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := &hostile{t: t}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			g := newGateUnderTest(t, ts.URL, tt.maxEntries, nil)
			startAtV1(t, g, srv)

			srv.set(func(h *hostile) { h.latest, h.list = 2, serveFlood(tt.count, tt.size) })
			var err error
			allocated, peak := measure(func() { err = g.client.SyncOnce(context.Background()) })
			t.Logf("allocated %.1f MiB, heap peak +%.1f MiB, server wrote %.1f MiB before the gate hung up",
				float64(allocated)/(1<<20), float64(peak)/(1<<20), float64(srv.sent.Load())/(1<<20))
			require.Error(t, err)
			require.Equal(t, 1.0, g.failures(tt.reason))
			require.Less(t, allocated, uint64(4<<20), "allocated")
			require.Less(t, peak, uint64(4<<20), "heap peak")
			require.Equal(t, uint64(1), g.replica.List().Version(), "the last good list stays")
			require.True(t, g.client.Stale(), "a newer version is signed and the gate cannot have it")
			require.Equal(t, 1.0, g.gauge(t, "faregate_denylist_stale"))
			g.requireOnDisk(t, 1)

			recoverToV2(t, g, srv)
		})
	}
}

func TestHostileForgedNoChange(t *testing.T) {
	noChange := func(w http.ResponseWriter, since uint64) { w.WriteHeader(http.StatusNotModified) }
	for _, tt := range []struct {
		name   string
		head   func(t *testing.T, g *gateUnderTest) func(http.ResponseWriter)
		reason string
	}{
		// The head passes through and names v2: the "no change" is refuted.
		{"honest head", func(*testing.T, *gateUnderTest) func(http.ResponseWriter) { return nil }, "unconfirmed"},
		// The head is blocked as well.
		{"head blocked", func(*testing.T, *gateUnderTest) func(http.ResponseWriter) {
			return func(w http.ResponseWriter) { http.Error(w, "gone", http.StatusNotFound) }
		}, "protocol"},
		// The last genuine head (v1, issued at t0) replayed forever: it
		// confirms v1 until it expires, and the age grows all along.
		{"replayed head", func(t *testing.T, g *gateUnderTest) func(http.ResponseWriter) {
			b := dlHead(t, 1, dlT0, 15*time.Minute)
			return func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", HeadMediaType)
				w.Write(b)
			}
		}, "head_expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := &hostile{t: t}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			g := newGateUnderTest(t, ts.URL, 0, nil)
			startAtV1(t, g, srv)

			srv.set(func(h *hostile) { h.latest, h.list, h.head = 2, noChange, tt.head(t, g) })
			// An hour of polls every 20 s answered "no change".
			var allocated uint64
			for range 180 {
				g.now = g.now.Add(20 * time.Second)
				srv.set(func(h *hostile) { h.now = g.now })
				a, _ := measure(func() { g.client.SyncOnce(context.Background()) })
				allocated = max(allocated, a)
			}
			require.Less(t, allocated, uint64(4<<20), "a poll allocates little")
			require.Equal(t, uint64(1), g.replica.List().Version())
			require.True(t, g.client.Stale())
			require.Equal(t, 1.0, g.gauge(t, "faregate_denylist_stale"))
			require.Greater(t, g.failures(tt.reason), 0.0)
			// The age is measured from the last head that confirmed v1: an
			// hour, not the 0 a trusted "no change" would show.
			require.Equal(t, time.Hour.Seconds(), g.gauge(t, "faregate_denylist_age_seconds"))
			g.requireOnDisk(t, 1)

			recoverToV2(t, g, srv)
		})
	}
}

// restored is a back office restored from a backup: its own lists,
// served by the real Server.
type restored struct {
	mu    sync.Mutex
	lists []*denylist.List // by version - 1
	key   ed25519.PrivateKey
}

func (r *restored) Current() *denylist.List {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lists[len(r.lists)-1]
}

func (r *restored) Answer(ctx context.Context, since uint64) (Answer, error) {
	cur := r.Current()
	a := Answer{Current: cur}
	switch {
	case since == cur.Version():
		a.UpToDate = true
	case since > cur.Version():
		a.Ahead = true
	case since == 0:
		a.Snapshot = cur
	default:
		r.mu.Lock()
		from := r.lists[since-1]
		r.mu.Unlock()
		d, err := denylist.Diff(from, cur)
		if err != nil {
			return a, err
		}
		a.Delta, err = d.Sign(r.key)
		return a, err
	}
	return a, nil
}

// publish adds version len+1 holding tokens seeded by seed.
func (r *restored) publish(t *testing.T, created time.Time, seed ...int) {
	var fps []uint64
	for _, s := range seed {
		fps = append(fps, denylist.Fingerprint(denylist.Token{byte(s), 0xAA, byte(s >> 8)}))
	}
	slices.Sort(fps)
	r.mu.Lock()
	defer r.mu.Unlock()
	l, err := denylist.Sign(r.key, "test", uint64(len(r.lists)+1), created, denylist.NewSet(fps))
	require.NoError(t, err)
	r.lists = append(r.lists, l)
}

func TestHostileRestoredBackOffice(t *testing.T) {
	for _, tt := range []struct {
		name    string
		catchUp int // versions the restored back office publishes past the gate's
	}{
		{"catches up to the gate's version", 0},
		{"overtakes the gate", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := dlKey(t)
			bo := &restored{key: key}
			now := dlT0
			for v := 1; v <= 3; v++ {
				bo.publish(t, now.Add(time.Duration(v)*time.Minute), v, v+1, v+2)
			}
			var srvNow atomic.Pointer[time.Time]
			srvNow.Store(&now)
			server, err := NewServer(bo, ServerOptions{Key: key, Now: func() time.Time { return *srvNow.Load() }})
			require.NoError(t, err)
			ts := httptest.NewServer(server)
			defer ts.Close()
			g := newGateUnderTest(t, ts.URL, 0, nil)
			tick := func() {
				g.now = g.now.Add(time.Minute)
				n := g.now
				srvNow.Store(&n)
			}
			tick()
			require.NoError(t, g.client.SyncOnce(context.Background()))
			require.Equal(t, uint64(3), g.replica.List().Version())

			// Restored from the backup of version 1: the gate is ahead,
			// keeps its list and says so.
			bo.mu.Lock()
			bo.lists = bo.lists[:1]
			bo.mu.Unlock()
			tick()
			require.ErrorContains(t, g.client.SyncOnce(context.Background()), "holds version 3")
			require.Equal(t, 1.0, g.failures("behind"))
			require.True(t, g.client.Stale())

			// It publishes other changes until it reaches (or passes) the
			// gate's version number with another content.
			for v := 2; v <= 3+tt.catchUp; v++ {
				bo.publish(t, g.now.Add(time.Duration(v)*time.Second), 100+v)
			}
			tick()
			var allocated uint64
			allocated, _ = measure(func() { err = g.client.SyncOnce(context.Background()) })
			require.NoError(t, err)
			require.Less(t, allocated, uint64(8<<20))
			cur := g.replica.List()
			require.Equal(t, bo.Current().Version(), cur.Version())
			require.Equal(t, bo.Current().ContentHash(), cur.ContentHash(), "the gate holds the back office's list, not its own")
			require.False(t, g.client.Stale())
			require.Greater(t, g.failures("diverged")+g.failures("inconsistent"), 0.0)
			g.requireOnDisk(t, cur.Version())
		})
	}
}

func TestHostileSlowServer(t *testing.T) {
	trickle := func(every time.Duration) func(w http.ResponseWriter, since uint64) {
		return func(w http.ResponseWriter, since uint64) {
			w.Header().Set("Content-Type", ListMediaType)
			b := dlFile(t, "snapshot-v2.fgdl")
			for i := range b {
				if _, err := w.Write(b[i : i+1]); err != nil {
					return
				}
				http.NewResponseController(w).Flush()
				time.Sleep(every)
			}
		}
	}
	for _, tt := range []struct {
		name string
		list func(w http.ResponseWriter, since uint64)
		src  *HTTPSource
	}{
		{"pauses in the body", trickle(300 * time.Millisecond), &HTTPSource{BodyIdleTimeout: 100 * time.Millisecond}},
		{"a byte at a time, under the idle limit", trickle(20 * time.Millisecond), &HTTPSource{Timeout: 300 * time.Millisecond}},
		{"no response header", func(w http.ResponseWriter, since uint64) {
			time.Sleep(time.Second)
		}, &HTTPSource{HeaderTimeout: 100 * time.Millisecond}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := &hostile{t: t}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			g := newGateUnderTest(t, ts.URL, 0, tt.src)
			startAtV1(t, g, srv)
			srv.set(func(h *hostile) { h.latest, h.list = 2, tt.list })
			err := g.client.SyncOnce(context.Background())
			require.ErrorIs(t, err, ErrTimeout)
			require.Equal(t, 1.0, g.failures("timeout"))
			require.Equal(t, uint64(1), g.replica.List().Version())
			require.True(t, g.client.Stale())
			g.requireOnDisk(t, 1)
			recoverToV2(t, g, srv)
		})
	}
}

func TestHostileWrongContentType(t *testing.T) {
	srv := &hostile{t: t}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	g := newGateUnderTest(t, ts.URL, 0, nil)
	startAtV1(t, g, srv)

	// A captive portal answering 200 text/html with an endless page: the
	// gate refuses on the header and reads none of it.
	srv.set(func(h *hostile) {
		h.latest = 2
		h.list = func(w http.ResponseWriter, since uint64) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			page := bytes.Repeat([]byte("<p>log in to the wifi</p>"), 4096)
			for range 4096 { // up to 400 MiB, until the gate hangs up
				if _, err := w.Write(page); err != nil {
					return
				}
			}
		}
	})
	var err error
	allocated, _ := measure(func() { err = g.client.SyncOnce(context.Background()) })
	require.ErrorIs(t, err, ErrProtocol)
	require.ErrorContains(t, err, `Content-Type "text/html; charset=utf-8"`)
	require.Less(t, allocated, uint64(4<<20))
	require.Equal(t, 1.0, g.failures("protocol"))
	require.Equal(t, uint64(1), g.replica.List().Version())
	g.requireOnDisk(t, 1)

	// The same for the head: a page where the statement should be.
	srv.set(func(h *hostile) {
		h.list = nil
		h.head = func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>"))
		}
	})
	err = g.client.SyncOnce(context.Background())
	require.ErrorIs(t, err, ErrProtocol)
	require.Equal(t, 2.0, g.failures("protocol"))
	require.Equal(t, uint64(2), g.replica.List().Version(), "signed files are still taken without a head")
	require.True(t, g.client.Stale(), "but not confirmed")
	g.requireOnDisk(t, 2)
	recoverToV2(t, g, srv)
}

// TestHostileHeads: heads that must not vouch for anything — from the
// future, older than one already seen, forged, for another list — are
// refused and counted, and leave the gate stale.
func TestHostileHeads(t *testing.T) {
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	otherList, err := denylist.Sign(dlKey(t), "other", 1, dlT0, nil)
	require.NoError(t, err)
	for _, tt := range []struct {
		name   string
		head   func(t *testing.T, g *gateUnderTest) []byte
		reason string
	}{
		{"issued in the future", func(t *testing.T, g *gateUnderTest) []byte {
			return dlHead(t, 1, g.now.Add(time.Hour), 15*time.Minute)
		}, "head_future"},
		{"older than the newest seen", func(t *testing.T, g *gateUnderTest) []byte {
			return dlHead(t, 1, g.now.Add(-time.Minute), 15*time.Minute)
		}, "head_replay"},
		{"forged", func(t *testing.T, g *gateUnderTest) []byte {
			snap, err := denylist.ReadSnapshot(bytes.NewReader(dlFile(t, "snapshot-v1.fgdl")), dlKey(t).Public().(ed25519.PublicKey))
			require.NoError(t, err)
			b, err := denylist.SignHead(other, denylist.HeadOf(snap, g.now, 15*time.Minute))
			require.NoError(t, err)
			return b
		}, "signature"},
		{"another list", func(t *testing.T, g *gateUnderTest) []byte {
			b, err := denylist.SignHead(dlKey(t), denylist.HeadOf(otherList, g.now, 15*time.Minute))
			require.NoError(t, err)
			return b
		}, "list_id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := &hostile{t: t}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			g := newGateUnderTest(t, ts.URL, 0, nil)
			startAtV1(t, g, srv)
			g.now = g.now.Add(20 * time.Second)
			srv.set(func(h *hostile) {
				b := tt.head(t, g)
				h.head = func(w http.ResponseWriter) {
					w.Header().Set("Content-Type", HeadMediaType)
					w.Write(b)
				}
			})
			require.Error(t, g.client.SyncOnce(context.Background()))
			require.Equal(t, 1.0, g.failures(tt.reason))
			require.Equal(t, uint64(1), g.replica.List().Version())
			g.now = g.now.Add(15 * time.Minute)
			require.True(t, g.client.Stale(), "the genuine head expired, the others vouch for nothing")
			recoverToV2(t, g, srv)
		})
	}
}
