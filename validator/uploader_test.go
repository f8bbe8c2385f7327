package validator_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/tap"
	"github.com/faregate/faregate/validator"
)

// receiver is the back office's side of POST /v1/taps built on the real
// contract code (tap.VerifyRequest, tap.DecodeBatch): it stores taps by id
// and counts what it receives, so a test can count both sides.
type receiver struct {
	gate string
	pub  ed25519.PublicKey
	now  func() time.Time // the back office's clock

	mu         sync.Mutex
	stored     map[uuid.UUID]tap.Record
	received   int // taps in accepted batches, duplicates included
	duplicates int
	requests   int
	maxBatch   int
	// respond, when set, may answer a request instead of the receiver
	// (n counts requests from 1); stored says whether the batch was
	// stored first (a lost acknowledgement).
	respond func(n int, w http.ResponseWriter, b *tap.Batch) (handled, store bool)
	times   []time.Time
}

func newReceiver(gate string, pub ed25519.PublicKey) *receiver {
	return &receiver{gate: gate, pub: pub, now: time.Now, stored: map[uuid.UUID]tap.Record{}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, tap.MaxBatchBytes+1))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	if len(body) > tap.MaxBatchBytes {
		writeRefusal(w, http.StatusRequestEntityTooLarge, "too large")
		return
	}
	gate, err := tap.VerifyRequest(req, body, func(g string) ed25519.PublicKey {
		if g == rc.gate {
			return rc.pub
		}
		return nil
	}, rc.now())
	if err != nil {
		writeRefusal(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	b, err := tap.DecodeBatch(body, gate)
	if err != nil {
		writeRefusal(w, http.StatusBadRequest, err.Error())
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	rc.times = append(rc.times, time.Now())
	if rc.maxBatch > 0 && len(b.Taps) > rc.maxBatch {
		writeRefusal(w, http.StatusRequestEntityTooLarge, "more taps than this back office takes")
		return
	}
	store := true
	if rc.respond != nil {
		var handled bool
		if handled, store = rc.respond(rc.requests, w, b); handled && !store {
			return
		}
		if handled {
			rc.store(b)
			return
		}
	}
	ack := rc.store(b)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ack) //nolint:errcheck // test server
}

func (rc *receiver) store(b *tap.Batch) tap.Ack {
	var ack tap.Ack
	for _, r := range b.Taps {
		rc.received++
		if _, ok := rc.stored[r.ID]; ok {
			rc.duplicates++
			ack.Duplicates++
		} else {
			rc.stored[r.ID] = r
		}
		ack.Stored = append(ack.Stored, r.ID)
	}
	return ack
}

func writeRefusal(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(tap.Refusal{Error: msg}) //nolint:errcheck // test server
}

func (rc *receiver) counts() (stored, received, duplicates, requests int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.stored), rc.received, rc.duplicates, rc.requests
}

func gateKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	k, err := tap.GenerateGateKey(bytes.NewReader(bytes.Repeat([]byte{3}, 64)))
	require.NoError(t, err)
	return k
}

func newUploader(t testing.TB, url string, j *validator.Journal, key ed25519.PrivateKey, reg prometheus.Registerer, batch int, now ...func() time.Time) *validator.Uploader {
	t.Helper()
	var m *validator.Metrics
	if reg != nil {
		var err error
		m, err = validator.NewMetrics(reg)
		require.NoError(t, err)
	}
	u, err := validator.NewUploader(validator.UploaderOptions{
		BaseURL: url, GateID: "G-1", Key: key, Journal: j, BatchSize: batch,
		Interval: 5 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Metrics: m,
		DenylistVersion: func() uint64 { return 17 },
	})
	if len(now) > 0 {
		u, err = validator.NewUploader(validator.UploaderOptions{
			BaseURL: url, GateID: "G-1", Key: key, Journal: j, Now: now[0],
			Interval: 5 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Metrics: m,
		})
	}
	require.NoError(t, err)
	return u
}

func appendN(t testing.TB, j *validator.Journal, n int, from time.Time, step time.Duration) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, 0, n)
	for i := range n {
		r := fakeRecord(t, "G-1", i, from.Add(time.Duration(i)*step))
		require.NoError(t, j.Append(context.Background(), r))
		ids = append(ids, r.ID)
	}
	return ids
}

func TestUploaderAnswers(t *testing.T) {
	ctx := context.Background()
	key := gateKey(t)
	rc := newReceiver("G-1", key.Public().(ed25519.PublicKey))
	srv := httptest.NewServer(rc)
	defer srv.Close()
	j := openJournal(t, filepath.Join(t.TempDir(), "journal.db"), validator.JournalOptions{})
	ids := appendN(t, j, 10, txDate, time.Second)
	reg := prometheus.NewRegistry()
	u := newUploader(t, srv.URL, j, key, reg, 4)

	// An Ack naming only some taps marks only those.
	rc.respond = func(n int, w http.ResponseWriter, b *tap.Batch) (bool, bool) {
		if n != 1 {
			return false, true
		}
		require.Equal(t, int64(10), b.Backlog)
		require.Equal(t, uint64(17), b.DenylistVersion)
		require.Equal(t, txDate, *b.OldestUnsent)
		json.NewEncoder(w).Encode(tap.Ack{Stored: []uuid.UUID{b.Taps[0].ID, b.Taps[2].ID}}) //nolint:errcheck // test
		return true, false
	}
	n, err := u.UploadOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, int64(8), j.Stats().Unsent)
	unsent, err := j.Unsent(ctx, 0, 100)
	require.NoError(t, err)
	require.Equal(t, ids[1], unsent[0].ID)

	// 413 halves the batch; 429 carries its Retry-After; 401 and 400 are
	// their own kinds; nothing is marked on any of them.
	kinds := map[string]float64{}
	for _, c := range []struct {
		status int
		kind   string
		after  string
	}{
		{http.StatusRequestEntityTooLarge, "too_large", ""},
		{http.StatusTooManyRequests, "throttled", "7"},
		{http.StatusServiceUnavailable, "throttled", ""},
		{http.StatusUnauthorized, "unauthorized", ""},
		{http.StatusBadRequest, "refused", ""},
		{http.StatusBadGateway, "server", ""},
	} {
		var sent int
		rc.respond = func(_ int, w http.ResponseWriter, b *tap.Batch) (bool, bool) {
			sent = len(b.Taps)
			if c.after != "" {
				w.Header().Set("Retry-After", c.after)
			}
			writeRefusal(w, c.status, "no")
			return true, false
		}
		_, err := u.UploadOnce(ctx)
		var ue *validator.UploadError
		require.True(t, errors.As(err, &ue), "%d: %v", c.status, err)
		require.Equal(t, c.kind, ue.Kind)
		require.Equal(t, c.status, ue.Status)
		if c.after != "" {
			require.Equal(t, 7*time.Second, ue.RetryAfter)
		}
		require.Equal(t, int64(8), j.Stats().Unsent)
		kinds[c.kind]++
		require.Equal(t, kinds[c.kind], metricValue(t, reg, "faregate_upload_errors_total", c.kind), c.kind)
		if c.status == http.StatusRequestEntityTooLarge {
			require.Equal(t, 4, sent)
		}
		if c.kind == "throttled" && c.after == "" {
			require.Equal(t, 2, sent, "the 413 halved the batch")
		}
		rc.mu.Lock()
		rc.respond = nil
		rc.mu.Unlock()
	}

	// The receiver's own 413 for more than it takes: the uploader finds a
	// size that passes, and the backlog drains.
	rc.maxBatch = 1
	for j.Stats().Unsent > 0 {
		_, err := u.UploadOnce(ctx)
		if err != nil {
			var ue *validator.UploadError
			require.True(t, errors.As(err, &ue))
			require.Equal(t, "too_large", ue.Kind)
		}
	}
	stored, _, dups, _ := rc.counts()
	require.Equal(t, 8, stored, "the two the first Ack named were never stored: the Ack is the back office's word")
	require.Zero(t, dups)
	require.Equal(t, 10.0, metricValue(t, reg, "faregate_upload_taps_total"))

	// A request signed with another key is refused; nothing is marked.
	appendN(t, j, 1, txDate, time.Second)
	_, wrong, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	_, err = newUploader(t, srv.URL, j, wrong, nil, 0).UploadOnce(ctx)
	var ue *validator.UploadError
	require.True(t, errors.As(err, &ue))
	require.Equal(t, "unauthorized", ue.Kind)
	require.Equal(t, int64(1), j.Stats().Unsent)
}

func TestUploaderHonoursRetryAfter(t *testing.T) {
	key := gateKey(t)
	rc := newReceiver("G-1", key.Public().(ed25519.PublicKey))
	rc.respond = func(n int, w http.ResponseWriter, _ *tap.Batch) (bool, bool) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			writeRefusal(w, http.StatusServiceUnavailable, "busy")
			return true, false
		}
		return false, true
	}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	j := openJournal(t, filepath.Join(t.TempDir(), "journal.db"), validator.JournalOptions{})
	appendN(t, j, 3, txDate, time.Second)
	u := newUploader(t, srv.URL, j, key, nil, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- u.Run(ctx) }()
	require.Eventually(t, func() bool { return j.Stats().Unsent == 0 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	require.Len(t, rc.times, 2)
	require.GreaterOrEqual(t, rc.times[1].Sub(rc.times[0]), time.Second, "waited at least Retry-After")
}

// TestOutage is a busy gate's week without its back office: N taps
// journaled while every upload fails (connection refused, then 503s), then
// the back office returns, flaky (lost acknowledgements, 413s, a 429):
// every tap arrives exactly once in the back office's store, the gate's
// backlog drains, and no PAN is on the gate's disk. FAREGATE_OUTAGE_TAPS
// sets N: .ci/run runs 50 000; a plain go test 2 000 (1 000 under -race or
// -short).
func TestOutage(t *testing.T) {
	taps := 2000
	if raceEnabled || testing.Short() {
		taps = 1000
	}
	if s := os.Getenv("FAREGATE_OUTAGE_TAPS"); s != "" {
		var err error
		taps, err = strconv.Atoi(s)
		require.NoError(t, err)
	}
	ctx := context.Background()
	key := gateKey(t)
	rc := newReceiver("G-1", key.Public().(ed25519.PublicKey))
	// The back office's address refuses connections until it returns.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	url := "http://" + addr
	dir := t.TempDir()
	clk := newClock(txDate)
	var clkMu sync.Mutex
	now := func() time.Time { clkMu.Lock(); defer clkMu.Unlock(); return clk.Now() }
	// NoSync: this test is about the upload protocol; the crash test and
	// the benchmarks cover durability and its cost.
	j := openJournal(t, filepath.Join(dir, "journal.db"), validator.JournalOptions{Now: now, NoSync: true})
	reg := prometheus.NewRegistry()
	u := newUploader(t, url, j, key, reg, 0, now)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- u.Run(runCtx) }()

	// A week: 50 000 taps is one every 12 s around the clock, the rush
	// hours of a busy gate averaged out.
	week := 7 * 24 * time.Hour
	step := week / time.Duration(taps)
	ids := make(map[uuid.UUID]bool, taps)
	for i := range taps {
		clkMu.Lock()
		clk.Advance(step)
		clkMu.Unlock()
		r := fakeRecord(t, "G-1", i, now())
		require.NoError(t, j.Append(ctx, r))
		ids[r.ID] = true
		u.Kick()
	}
	st := j.Stats()
	require.Equal(t, int64(taps), st.Unsent)
	require.Greater(t, metricValue(t, reg, "faregate_upload_errors_total", "network"), 0.0)
	require.InDelta(t, week.Seconds(), metricValue(t, reg, "faregate_journal_oldest_unsent_age_seconds"), 2*step.Seconds())

	// The back office returns, flaky, on the simulated clock.
	rc.now = now
	rc.respond = func(n int, w http.ResponseWriter, b *tap.Batch) (bool, bool) {
		switch {
		case n <= 3:
			writeRefusal(w, http.StatusServiceUnavailable, "still starting")
			return true, false
		case n == 5:
			w.Header().Set("Retry-After", "1")
			writeRefusal(w, http.StatusTooManyRequests, "slow down")
			return true, false
		case n == 4 || n%7 == 0:
			// Stored, but the acknowledgement is lost.
			writeRefusal(w, http.StatusGatewayTimeout, "proxy timeout")
			return true, true
		case n%11 == 0 && len(b.Taps) > 300:
			writeRefusal(w, http.StatusRequestEntityTooLarge, "too many")
			return true, false
		}
		return false, true
	}
	start := time.Now()
	srv := httptest.NewUnstartedServer(rc)
	srv.Listener.Close()
	srv.Listener, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	srv.Start()
	defer srv.Close()
	require.Eventually(t, func() bool { return j.Stats().Unsent == 0 }, 5*time.Minute, 20*time.Millisecond)
	drain := time.Since(start)
	stop()
	require.ErrorIs(t, <-done, context.Canceled)

	stored, received, dups, requests := rc.counts()
	require.Equal(t, taps, stored, "every tap stored once")
	rc.mu.Lock()
	for id := range rc.stored {
		require.True(t, ids[id], "the back office holds only the gate's taps")
	}
	rc.mu.Unlock()
	require.Equal(t, received, stored+dups, "the receiver's count of both")
	require.Equal(t, float64(taps), metricValue(t, reg, "faregate_upload_taps_total"), "the gate's count")
	require.Zero(t, metricValue(t, reg, "faregate_journal_backlog"))
	require.Greater(t, dups, 0, "lost acknowledgements were resent")
	t.Logf("outage: %d taps over a simulated week; drained in %v (%.0f taps/s) in %d requests; receiver: %d stored, %d received, %d duplicates (lost acks) discarded",
		taps, drain.Round(time.Millisecond), float64(taps)/drain.Seconds(), requests, stored, received, dups)
	require.NoError(t, j.Check(ctx))
	requireNoPAN(t, testPANs(t), dir)
}
