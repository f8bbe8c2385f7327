package backend

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func countTaps(t testing.TB, s Store) int64 {
	n, err := s.CountTaps(context.Background())
	require.NoError(t, err)
	return n
}

// TestIngestHostileUploads: a batch signed by another gate, a replayed old
// request, a 100 MB body and a batch with one bad item are each refused,
// nothing stored, no panic; duplicates are acknowledged and ignored.
func TestIngestHostileUploads(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		b := newBackoffice(t, s, IngestOptions{})
		g1 := newTestGate(t, s, "G-1", b.vault.key.PublicKey())
		g2 := newTestGate(t, s, "G-2", b.vault.key.PublicKey())
		c := testCard(1)
		recs := []tap.Record{g1.tap(t, c, st0, "bus"), g1.tap(t, c, st0.Add(time.Minute), "bus")}

		// Signed with G-2's key while naming G-1.
		impostor := &testGate{id: "G-1", key: g2.key}
		resp, body := impostor.post(t, http.DefaultClient, b.srv.URL, b.clock.t, recs)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.JSONEq(t, `{"error":"unauthorized"}`, string(body))
		// G-2 uploading G-1's taps as itself.
		resp, _ = g2.post(t, http.DefaultClient, b.srv.URL, b.clock.t, recs)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		// A replayed request: signed six minutes ago.
		resp, _ = g1.post(t, http.DefaultClient, b.srv.URL, b.clock.t.Add(-6*time.Minute), recs)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		// An unknown gate, a disabled gate.
		stranger := &testGate{id: "G-9", key: g1.key}
		resp, _ = stranger.post(t, http.DefaultClient, b.srv.URL, b.clock.t, recs)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		// 100 MB, streamed without a length and with one.
		for _, length := range []int64{-1, 100 << 20} {
			req, err := http.NewRequest("POST", b.srv.URL+"/v1/taps", io.LimitReader(zeros{}, 100<<20))
			require.NoError(t, err)
			req.ContentLength = length
			tap.SignRequest(req, g1.id, g1.key, b.clock.t, nil)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		}
		// One bad item among good ones: refused whole, the item named.
		bad := append([]tap.Record{}, recs...)
		bad = append(bad, g1.tap(t, c, st0.Add(2*time.Minute), "bus"))
		bad[2].MaskedPAN = c.pan // a clear PAN where a masked one belongs
		resp, body = g1.post(t, http.DefaultClient, b.srv.URL, b.clock.t, bad)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		var ref tap.Refusal
		require.NoError(t, json.Unmarshal(body, &ref))
		require.Len(t, ref.Items, 1)
		require.Equal(t, 2, ref.Items[0].Index)
		require.Equal(t, bad[2].ID.String(), ref.Items[0].ID)
		require.NotContains(t, string(body), c.pan, "a refusal never echoes a PAN")
		// Not JSON, too many taps.
		resp, _ = g1.postBody(t, http.DefaultClient, b.srv.URL, b.clock.t, []byte("{"))
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		many := make([]tap.Record, tap.MaxBatchTaps+1)
		for i := range many {
			many[i] = g1.tap(t, c, st0.Add(time.Duration(i)*time.Second), "bus")
		}
		resp, _ = g1.post(t, http.DefaultClient, b.srv.URL, b.clock.t, many)
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		require.Zero(t, countTaps(t, s), "nothing stored by any refused request")

		// The good batch is stored; sent again it is acknowledged whole.
		ack := g1.upload(t, b.srv.URL, b.clock.t, recs)
		require.Zero(t, ack.Duplicates)
		ack = g1.upload(t, b.srv.URL, b.clock.t, recs)
		require.Equal(t, 2, ack.Duplicates)
		require.EqualValues(t, 2, countTaps(t, s))

		require.NoError(t, s.SetGateDisabled(context.Background(), "G-1", true))
		b.ingest.keys.mu.Lock()
		b.ingest.keys.loaded = time.Time{} // as if the cache had expired
		b.ingest.keys.mu.Unlock()
		resp, _ = g1.post(t, http.DefaultClient, b.srv.URL, b.clock.t, recs)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a disabled gate")
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// blockingStore holds StoreBatches until released, to fill the queue.
type blockingStore struct {
	Store
	release chan struct{}
}

func (s *blockingStore) StoreBatches(ctx context.Context, b []*tap.Batch, at time.Time) ([]int, error) {
	<-s.release
	return s.Store.StoreBatches(ctx, b, at)
}

// TestIngestOverload: when the store is behind, uploads beyond the queue
// get 503 and beyond the in-flight bound 429, both with Retry-After and
// nothing stored; once the store catches up the same batches are stored.
func TestIngestOverload(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		bs := &blockingStore{Store: s, release: make(chan struct{})}
		reg := prometheus.NewRegistry()
		m := NewMetrics(reg)
		b := newBackoffice(t, s, IngestOptions{})
		b.ingest.Close()
		b.ingest = NewIngest(bs, m, IngestOptions{Now: b.clock.Now, QueueTaps: 2, MaxInflight: 3, RetryAfter: 2 * time.Second})
		defer b.ingest.Close()
		b.srv.Config.Handler = (&Server{Ingest: b.ingest}).Handler()
		g := newTestGate(t, s, "G-1", nil)
		c := testCard(1)
		first := []tap.Record{g.tap(t, c, st0, "bus"), g.tap(t, c, st0.Add(time.Minute), "bus")}
		done := make(chan int)
		go func() {
			resp, _ := g.post(t, http.DefaultClient, b.srv.URL, b.clock.t, first)
			done <- resp.StatusCode
		}()
		require.Eventually(t, func() bool { return b.ingest.queued.Load() == 2 }, 5*time.Second, 5*time.Millisecond)

		second := []tap.Record{g.tap(t, c, st0.Add(2*time.Minute), "bus")}
		resp, body := g.post(t, http.DefaultClient, b.srv.URL, b.clock.t, second)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
		require.Equal(t, "2", resp.Header.Get("Retry-After"))

		// Fill the in-flight slots with requests that never finish sending.
		var wg sync.WaitGroup
		stall := make(chan struct{})
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", b.srv.URL+"/v1/taps", io.MultiReader(strings.NewReader("{"), chanReader(stall)))
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
		}
		require.Eventually(t, func() bool { return len(b.ingest.sem) == 3 }, 5*time.Second, 5*time.Millisecond)
		resp, _ = g.post(t, http.DefaultClient, b.srv.URL, b.clock.t, second)
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		require.Equal(t, "2", resp.Header.Get("Retry-After"))
		close(stall)
		wg.Wait()
		require.Zero(t, countTaps(t, s))

		close(bs.release)
		require.Equal(t, http.StatusOK, <-done)
		g.upload(t, b.srv.URL, b.clock.t, second)
		require.EqualValues(t, 3, countTaps(t, s))
		require.Equal(t, 1.0, testutil.ToFloat64(m.ingestRefused.WithLabelValues("overloaded")))
		require.Equal(t, 1.0, testutil.ToFloat64(m.ingestRefused.WithLabelValues("busy")))
		require.Equal(t, 3.0, testutil.ToFloat64(m.ingestTaps.WithLabelValues("stored")))
	})
}

type chanReader chan struct{}

func (c chanReader) Read([]byte) (int, error) { <-c; return 0, io.EOF }

func TestReadAPIAuth(t *testing.T) {
	s, err := OpenSQLite(context.Background(), t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	b := newBackoffice(t, s, IngestOptions{})
	for _, path := range []string{"/v1/gates", "/v1/charges?day=2026-11-23", "/v1/riders/" + rider.Token{}.String() + "/receipts", "/v1/runs"} {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + testOperatorToken} {
			req, _ := http.NewRequest("GET", b.srv.URL+path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
		}
	}
	var gates struct{ Gates []GateJSON }
	newTestGate(t, s, "G-1", nil)
	getJSON(t, b.srv.URL+"/v1/gates", &gates)
	require.Len(t, gates.Gates, 1)
	req, _ := http.NewRequest("GET", b.srv.URL+"/v1/charges?day=yesterday", nil)
	req.Header.Set("Authorization", "Bearer "+testOperatorToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

// FuzzIngest: any body, correctly signed by a registered gate, gets 200,
// 400 or 413 from the real handler, never a panic or a 5xx; a refused body
// stores nothing. Seeded with the contract's example batch.
func FuzzIngest(f *testing.F) {
	if b, err := os.ReadFile("../tap/testdata/batch-v1.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"gate":"G-001","taps":[]}`))
	f.Add([]byte(`{"gate":"G-001","taps":[{"id":"01937a4c-8a00-7000-8000-000000000000","gate":"G-001","seq":1}]}`))
	s, err := OpenSQLite(context.Background(), f.TempDir())
	require.NoError(f, err)
	defer s.Close()
	b := newBackoffice(f, s, IngestOptions{Now: time.Now})
	g := newTestGate(f, s, "G-001", nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		before := countTaps(t, s)
		resp, out := g.postBody(t, http.DefaultClient, b.srv.URL, time.Now(), body)
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			require.Equal(t, before, countTaps(t, s), "a refused batch stores nothing")
		default:
			t.Fatalf("status %d: %s", resp.StatusCode, out)
		}
	})
}
