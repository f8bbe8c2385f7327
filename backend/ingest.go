package backend

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faregate/faregate/tap"
	"github.com/google/uuid"
)

// IngestOptions tune POST /v1/taps. The zero value works.
type IngestOptions struct {
	// Now is the clock that judges a request's date (nil: time.Now).
	Now func() time.Time
	// MaxInflight bounds the requests being read and checked at once; one
	// more is answered 429 (default 64). With 4 MiB bodies this bounds the
	// memory uploads can take.
	MaxInflight int
	// QueueTaps bounds the taps waiting for the store; a batch that does
	// not fit is answered 503 (default 50 000).
	QueueTaps int
	// GroupTaps is the most taps one store transaction takes (default 10 000).
	GroupTaps int
	// Writers is the number of concurrent store transactions (default 1:
	// SQLite has one writer; PostgreSQL gains from 2–4).
	Writers int
	// RetryAfter is what 429 and 503 answers ask a gate to wait (default 1 s).
	RetryAfter time.Duration
	// GateRefresh is how long the gate keys are cached (default 5 s); an
	// unknown gate reloads them at most once a second.
	GateRefresh time.Duration
	// QR, when set, verifies every uploaded provisional QR tap and records
	// the outcome; without it QR taps are stored unverified and never
	// settled.
	QR *QRVerifier
}

// Ingest serves POST /v1/taps (docs/api.md): it authenticates the gate,
// refuses a malformed batch whole, and answers only once the batch's taps
// are durably stored. Concurrent batches are written together in one
// transaction (group commit); when the store falls behind it answers 429
// or 503 with Retry-After instead of queueing without bound.
type Ingest struct {
	store   Store
	o       IngestOptions
	m       *Metrics
	keys    *gateKeys
	sem     chan struct{}
	queue   chan *pending
	queued  atomic.Int64
	wg      sync.WaitGroup
	stopped chan struct{}
	done    chan struct{} // closed when the writers have exited
	once    sync.Once
}

type pending struct {
	b    *tap.Batch
	recs [][]byte // b's records encoded (encodedStore), or nil
	done chan pendingResult
}

// encodedStore is a store that takes records encoded ahead of its
// transaction (sqlStore): the requests encode them in parallel, so the
// single writer does not.
type encodedStore interface {
	storeEncoded(ctx context.Context, batches []*tap.Batch, recs [][][]byte, received time.Time) ([]int, error)
}

type pendingResult struct {
	newTaps int
	err     error
}

// NewIngest starts the store writers; Close stops them.
func NewIngest(store Store, m *Metrics, o IngestOptions) *Ingest {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 64
	}
	if o.QueueTaps <= 0 {
		o.QueueTaps = 50000
	}
	if o.GroupTaps <= 0 {
		o.GroupTaps = 10000
	}
	if o.Writers <= 0 {
		o.Writers = 1
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Second
	}
	if o.GateRefresh <= 0 {
		o.GateRefresh = 5 * time.Second
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	in := &Ingest{
		store: store, o: o, m: m,
		keys:    &gateKeys{store: store, ttl: o.GateRefresh},
		sem:     make(chan struct{}, o.MaxInflight),
		queue:   make(chan *pending, o.MaxInflight),
		stopped: make(chan struct{}),
		done:    make(chan struct{}),
	}
	for range o.Writers {
		in.wg.Add(1)
		go in.writer()
	}
	go func() { in.wg.Wait(); close(in.done) }()
	return in
}

// Close stops the writers after the batches already queued are stored.
func (in *Ingest) Close() {
	in.once.Do(func() { close(in.stopped) })
	<-in.done
}

// writer stores queued batches, as many together as GroupTaps allows.
func (in *Ingest) writer() {
	defer in.wg.Done()
	var group []*pending
	var batches []*tap.Batch
	var recs [][][]byte
	for {
		var first *pending
		select {
		case first = <-in.queue:
		case <-in.stopped:
			select {
			case first = <-in.queue:
			default:
				return
			}
		}
		group = append(group[:0], first)
		n := len(first.b.Taps)
	more:
		for n < in.o.GroupTaps {
			select {
			case p := <-in.queue:
				group = append(group, p)
				n += len(p.b.Taps)
			default:
				break more
			}
		}
		batches, recs = batches[:0], recs[:0]
		for _, p := range group {
			batches, recs = append(batches, p.b), append(recs, p.recs)
		}
		var newTaps []int
		var err error
		if es, ok := in.store.(encodedStore); ok {
			newTaps, err = es.storeEncoded(context.Background(), batches, recs, in.o.Now())
		} else {
			newTaps, err = in.store.StoreBatches(context.Background(), batches, in.o.Now())
		}
		in.queued.Add(-int64(n))
		in.m.queueTaps.Set(float64(in.queued.Load()))
		for i, p := range group {
			r := pendingResult{err: err}
			if err == nil {
				r.newTaps = newTaps[i]
			}
			p.done <- r
		}
	}
}

// ServeHTTP implements POST /v1/taps.
func (in *Ingest) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	select {
	case in.sem <- struct{}{}:
		defer func() { <-in.sem }()
	default:
		in.m.refused("busy")
		in.retryLater(w, http.StatusTooManyRequests, "busy: too many uploads at once")
		return
	}
	body, ok := in.readBody(w, req)
	if !ok {
		return
	}
	gate, err := tap.VerifyRequest(req, body, in.keys.keyOf, in.o.Now())
	if err != nil {
		in.m.refused("unauthorized")
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
		return
	}
	b, err := tap.DecodeBatch(body, gate)
	if err != nil {
		in.refuseBatch(w, err)
		return
	}
	var qrOutcomes []QROutcome
	if in.o.QR != nil {
		if qrOutcomes, err = in.o.QR.Verify(req.Context(), b); err != nil {
			in.m.refused("store")
			in.retryLater(w, http.StatusServiceUnavailable, "store unavailable")
			return
		}
	}
	r, ok := in.enqueue(w, b)
	if !ok {
		return
	}
	if r.err == nil && len(qrOutcomes) > 0 {
		// After the taps: a confirmed tap becomes a leg of its stored row.
		// A failure here is answered 503 and the gate's retry records it.
		r.err = in.o.QR.store.RecordQROutcomes(req.Context(), qrOutcomes, in.o.Now())
		if r.err == nil {
			for _, o := range qrOutcomes {
				in.o.QR.counted(o)
			}
		}
	}
	if r.err != nil {
		in.m.refused("store")
		in.retryLater(w, http.StatusServiceUnavailable, "store unavailable")
		return
	}
	in.acknowledge(w, gate, b, r.newTaps, start)
}

// readBody reads the request body under the batch limit, answering 413 or
// 400 itself when it cannot.
func (in *Ingest) readBody(w http.ResponseWriter, req *http.Request) ([]byte, bool) {
	if req.ContentLength > tap.MaxBatchBytes {
		in.m.refused("too_large")
		writeRefusal(w, http.StatusRequestEntityTooLarge, tap.Refusal{Error: "body over 4 MiB"})
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, tap.MaxBatchBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			in.m.refused("too_large")
			writeRefusal(w, http.StatusRequestEntityTooLarge, tap.Refusal{Error: "body over 4 MiB"})
			return nil, false
		}
		in.m.refused("malformed")
		writeRefusal(w, http.StatusBadRequest, tap.Refusal{Error: "cannot read the body"})
		return nil, false
	}
	return body, true
}

// enqueue hands the batch to the store's writer and waits for its commit.
// A full queue or a stopping ingest is answered 503 here (false).
func (in *Ingest) enqueue(w http.ResponseWriter, b *tap.Batch) (pendingResult, bool) {
	n := int64(len(b.Taps))
	if in.queued.Add(n) > int64(in.o.QueueTaps) {
		in.queued.Add(-n)
		in.m.refused("overloaded")
		in.retryLater(w, http.StatusServiceUnavailable, "overloaded: the store is behind")
		return pendingResult{}, false
	}
	in.m.queueTaps.Set(float64(in.queued.Load()))
	p := &pending{b: b, done: make(chan pendingResult, 1)}
	if _, ok := in.store.(encodedStore); ok {
		// Encoding cannot fail for a validated record; if it did, the
		// writer encodes it again and reports the error.
		p.recs, _ = encodeRecords(b)
	}
	select {
	case in.queue <- p:
	case <-in.stopped:
		in.queued.Add(-n)
		in.retryLater(w, http.StatusServiceUnavailable, "shutting down")
		return pendingResult{}, false
	}
	var r pendingResult
	select {
	case r = <-p.done:
	case <-in.done: // closed while queued: a batch no writer will take
		select {
		case r = <-p.done:
		default:
			r.err = errors.New("backend: ingest stopped")
		}
	}
	return r, true
}

// acknowledge answers 200 naming every tap of the batch, now stored.
func (in *Ingest) acknowledge(w http.ResponseWriter, gate string, b *tap.Batch, newTaps int, start time.Time) {
	ack := tap.Ack{Stored: make([]uuid.UUID, len(b.Taps)), Duplicates: len(b.Taps) - newTaps}
	for i := range b.Taps {
		ack.Stored[i] = b.Taps[i].ID
	}
	in.m.ingestTaps.WithLabelValues("stored").Add(float64(newTaps))
	in.m.ingestTaps.WithLabelValues("duplicate").Add(float64(ack.Duplicates))
	in.m.batchTaps.Observe(float64(len(b.Taps)))
	in.m.gateLastSeen.WithLabelValues(gate).SetToCurrentTime()
	in.m.ingestSeconds.Observe(time.Since(start).Seconds())
	writeJSON(w, http.StatusOK, ack)
}

func (in *Ingest) refuseBatch(w http.ResponseWriter, err error) {
	var be *tap.BatchError
	switch {
	case errors.As(err, &be):
		in.m.refused("invalid_record")
		writeRefusal(w, http.StatusBadRequest, tap.Refusal{Error: "invalid taps: nothing stored", Items: be.Items})
	case errors.Is(err, tap.ErrTooLarge):
		in.m.refused("too_large")
		writeRefusal(w, http.StatusRequestEntityTooLarge, tap.Refusal{Error: err.Error()})
	default:
		in.m.refused("malformed")
		writeRefusal(w, http.StatusBadRequest, tap.Refusal{Error: err.Error()})
	}
}

func (in *Ingest) retryLater(w http.ResponseWriter, code int, msg string) {
	secs := int((in.o.RetryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeRefusal(w, code, tap.Refusal{Error: msg})
}

func writeRefusal(w http.ResponseWriter, code int, r tap.Refusal) { writeJSON(w, code, r) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// gateKeys caches the enabled gates' keys.
type gateKeys struct {
	store  Store
	ttl    time.Duration
	mu     sync.Mutex
	keys   map[string]ed25519.PublicKey
	loaded time.Time
}

// keyOf returns the key of an enabled gate, nil otherwise.
func (g *gateKeys) keyOf(id string) ed25519.PublicKey {
	g.mu.Lock()
	defer g.mu.Unlock()
	age := time.Since(g.loaded)
	k, ok := g.keys[id]
	if g.keys == nil || age > g.ttl || (!ok && age > time.Second) {
		g.reload()
		k = g.keys[id]
	}
	return k
}

func (g *gateKeys) reload() {
	gates, err := g.store.Gates(context.Background())
	g.loaded = time.Now()
	if err != nil {
		return // keep the last good keys
	}
	keys := make(map[string]ed25519.PublicKey, len(gates))
	for _, gt := range gates {
		if !gt.Disabled {
			keys[gt.ID] = gt.Key
		}
	}
	g.keys = keys
}
