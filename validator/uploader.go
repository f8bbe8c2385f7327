package validator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/faregate/faregate/tap"
)

// UploaderOptions configure an Uploader. BaseURL, GateID, Key and Journal
// are required; any other zero field means its default.
type UploaderOptions struct {
	BaseURL string // the back office, e.g. "https://backoffice.example"
	GateID  string
	Key     ed25519.PrivateKey // the gate's signing key
	Journal *Journal
	Client  *http.Client // nil: a client with timeouts
	// BatchSize is the most taps per request (default and maximum
	// tap.MaxBatchTaps); a 413 halves the batch until a request passes.
	BatchSize int
	// Interval between looks at an empty backlog (default 2 s). Kick
	// starts an upload at once.
	Interval time.Duration
	// MinBackoff and MaxBackoff bound the wait after failures: MinBackoff
	// doubled per consecutive failure, with full jitter, at most MaxBackoff
	// (defaults 1 s and 5 min). A Retry-After is honoured on top.
	MinBackoff, MaxBackoff time.Duration
	// DenylistVersion reports the deny-list version in force (nil: 0).
	DenylistVersion func() uint64
	Logger          *slog.Logger     // nil: discard
	Metrics         *Metrics         // nil: none
	Now             func() time.Time // nil: time.Now
	Rand            func() float64   // uniform in [0, 1); nil: math/rand/v2
}

// Uploader sends the journal to the back office (POST /v1/taps,
// docs/api.md) and marks uploaded exactly the taps an Ack names. It
// retries forever: taps stay in the journal until acknowledged.
type Uploader struct {
	o     UploaderOptions
	url   string
	log   *slog.Logger
	kick  chan struct{}
	batch int
}

var uploadHTTPClient = &http.Client{
	Timeout: 60 * time.Second,
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          2,
		ForceAttemptHTTP2:     true,
	},
}

// NewUploader returns an uploader; Run starts it.
func NewUploader(o UploaderOptions) (*Uploader, error) {
	if o.BaseURL == "" || o.GateID == "" || len(o.Key) != ed25519.PrivateKeySize || o.Journal == nil {
		return nil, errors.New("validator: an uploader needs a back-office URL, a gate id, its key and the journal")
	}
	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("validator: back-office URL %q: want http(s)://host", o.BaseURL)
	}
	if o.Client == nil {
		o.Client = uploadHTTPClient
	}
	if o.BatchSize <= 0 || o.BatchSize > tap.MaxBatchTaps {
		o.BatchSize = tap.MaxBatchTaps
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.DenylistVersion == nil {
		o.DenylistVersion = func() uint64 { return 0 }
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
	o.Metrics.observeJournal(o.Journal, o.Now)
	return &Uploader{
		o: o, url: u.JoinPath("v1", "taps").String(), log: log.With("component", "uploader"),
		kick: make(chan struct{}, 1), batch: o.BatchSize,
	}, nil
}

// Kick asks for an upload now (after a tap); it never blocks.
func (u *Uploader) Kick() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// UploadError is a failed upload with its metric kind and, for 429 and
// 503, the wait the back office asked for.
type UploadError struct {
	Kind       string // network, unauthorized, refused, too_large, throttled, server, journal, other
	Status     int    // HTTP status; 0 without an answer
	RetryAfter time.Duration
	Err        error
}

func (e *UploadError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("upload: HTTP %d (%s): %v", e.Status, e.Kind, e.Err)
	}
	return fmt.Sprintf("upload: %s: %v", e.Kind, e.Err)
}

func (e *UploadError) Unwrap() error { return e.Err }

// Run uploads until ctx is done, then returns ctx.Err(). It sends batches
// back to back while the backlog lasts, waits Interval (or a Kick) when it
// is empty, and backs off after failures.
func (u *Uploader) Run(ctx context.Context) error {
	failures := 0
	for {
		n, err := u.UploadOnce(ctx)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			wait = u.backoff(failures)
			var ue *UploadError
			if errors.As(err, &ue) && ue.RetryAfter > wait {
				wait = ue.RetryAfter + time.Duration(u.o.Rand()*float64(u.o.MinBackoff))
			}
			u.log.Warn("upload failed", "err", err, "failures", failures, "retry_in", wait)
		case n > 0:
			failures = 0
			continue // more may be waiting
		default:
			failures = 0
			wait = u.o.Interval
		}
		// A new tap cuts an idle wait short, never a backoff.
		if err := u.wait(ctx, wait, err == nil); err != nil {
			return err
		}
	}
}

// wait sleeps d, or until a Kick when kickable, or until ctx is done.
func (u *Uploader) wait(ctx context.Context, d time.Duration, kickable bool) error {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		case <-u.kick:
			if kickable {
				return nil
			}
		}
	}
}

// backoff is a uniform draw in [MinBackoff/2, cap], cap = MinBackoff ×
// 2^(failures-1) bounded by MaxBackoff.
func (u *Uploader) backoff(failures int) time.Duration {
	c := u.o.MinBackoff
	for i := 1; i < failures && c < u.o.MaxBackoff; i++ {
		c *= 2
	}
	c = min(c, u.o.MaxBackoff)
	lo := u.o.MinBackoff / 2
	return lo + time.Duration(u.o.Rand()*float64(c-lo))
}

// UploadOnce sends one batch of the oldest unsent taps and returns how
// many the back office acknowledged (0 and no error: nothing to send).
func (u *Uploader) UploadOnce(ctx context.Context) (int, error) {
	taps, err := u.o.Journal.Unsent(ctx, 0, u.batch)
	if err != nil {
		u.o.Metrics.uploadFailed("journal")
		return 0, &UploadError{Kind: "journal", Err: err}
	}
	if len(taps) == 0 {
		return 0, nil
	}
	st := u.o.Journal.Stats()
	b := tap.Batch{Gate: u.o.GateID, Taps: taps, Backlog: st.Unsent, OldestUnsent: st.OldestUnsent,
		DenylistVersion: u.o.DenylistVersion()}
	body, err := json.Marshal(&b)
	if err != nil {
		return 0, &UploadError{Kind: "other", Err: err}
	}
	if len(body) > tap.MaxBatchBytes && len(taps) > 1 {
		u.batch = max(1, len(taps)/2)
		return 0, &UploadError{Kind: "too_large", Err: fmt.Errorf("batch of %d taps is %d bytes", len(taps), len(body))}
	}
	ack, err := u.post(ctx, body, len(taps))
	if err != nil {
		var ue *UploadError
		if errors.As(err, &ue) {
			u.o.Metrics.uploadFailed(ue.Kind)
		}
		return 0, err
	}
	n, err := u.o.Journal.MarkUploaded(ctx, inBatch(ack.Stored, taps), u.o.Now())
	if err != nil {
		u.o.Metrics.uploadFailed("journal")
		return 0, &UploadError{Kind: "journal", Err: err}
	}
	u.o.Metrics.uploadAcked(n)
	if n == 0 {
		// An Ack that names none of the taps sent would loop forever.
		u.o.Metrics.uploadFailed("refused")
		return 0, &UploadError{Kind: "refused", Status: http.StatusOK, Err: errors.New("acknowledgement names none of the batch")}
	}
	if u.batch < u.o.BatchSize {
		u.batch = min(u.o.BatchSize, u.batch*2) // recover after a 413
	}
	u.log.Debug("uploaded", "taps", n, "duplicates", ack.Duplicates, "backlog", st.Unsent-int64(n))
	return n, nil
}

// inBatch keeps the acknowledged ids that name taps of the batch: an Ack
// never marks a tap the gate did not send in that request.
func inBatch(ids []uuid.UUID, taps []tap.Record) []uuid.UUID {
	sent := make(map[uuid.UUID]struct{}, len(taps))
	for i := range taps {
		sent[taps[i].ID] = struct{}{}
	}
	out := ids[:0:0]
	for _, id := range ids {
		if _, ok := sent[id]; ok {
			out = append(out, id)
			delete(sent, id)
		}
	}
	return out
}

// maxAckBytes bounds an acknowledgement: 1000 quoted UUIDs and change.
const maxAckBytes = 64 << 10

func (u *Uploader) post(ctx context.Context, body []byte, sent int) (*tap.Ack, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url, bytes.NewReader(body))
	if err != nil {
		return nil, &UploadError{Kind: "other", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	tap.SignRequest(req, u.o.GateID, u.o.Key, u.o.Now(), body)
	resp, err := u.o.Client.Do(req)
	if err != nil {
		return nil, &UploadError{Kind: "network", Err: err}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAckBytes+1))
	if err != nil {
		return nil, &UploadError{Kind: "network", Status: resp.StatusCode, Err: err}
	}
	ack, ue := readAnswer(resp.StatusCode, resp.Header.Get("Retry-After"), answer, u.o.Now())
	if ue != nil && ue.Kind == "too_large" {
		u.batch = max(1, sent/2)
	}
	if ue != nil {
		return nil, ue
	}
	return ack, nil
}

// readAnswer interprets the back office's answer to a batch (docs/api.md):
// an Ack on 200, else an UploadError of the status's kind. The body is
// hostile input: bounded, never echoed.
func readAnswer(status int, retry string, body []byte, now time.Time) (*tap.Ack, *UploadError) {
	if status == http.StatusOK {
		var ack tap.Ack
		if len(body) > maxAckBytes {
			return nil, &UploadError{Kind: "other", Status: status, Err: errors.New("acknowledgement too large")}
		}
		if err := json.Unmarshal(body, &ack); err != nil {
			return nil, &UploadError{Kind: "other", Status: status, Err: errors.New("acknowledgement is not JSON")}
		}
		return &ack, nil
	}
	ue := &UploadError{Status: status, Err: refusalError(body)}
	switch {
	case status == http.StatusUnauthorized:
		ue.Kind = "unauthorized"
	case status == http.StatusRequestEntityTooLarge:
		ue.Kind = "too_large"
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		ue.Kind = "throttled"
		ue.RetryAfter = retryAfter(retry, now)
	case status >= 500:
		ue.Kind = "server"
	case status >= 400:
		ue.Kind = "refused"
	default:
		ue.Kind = "other"
	}
	return nil, ue
}

// refusalError summarises a tap.Refusal body without trusting it.
func refusalError(b []byte) error {
	var r tap.Refusal
	if json.Unmarshal(b, &r) != nil || r.Error == "" {
		return errors.New("no refusal body")
	}
	msg := clipString(r.Error, 200)
	if len(r.Items) > 0 {
		msg += fmt.Sprintf(" (%d taps named, first at index %d: %s)", len(r.Items), r.Items[0].Index, clipString(r.Items[0].Error, 200))
	}
	return errors.New(msg)
}

// maxRetryAfter caps what a Retry-After can ask.
const maxRetryAfter = time.Hour

// retryAfter parses a Retry-After header: delta-seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return min(time.Duration(min(s, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(0, t.Sub(now)), maxRetryAfter)
	}
	return 0
}
