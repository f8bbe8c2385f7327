package dlsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/faregate/faregate/denylist"
)

// ClientOptions tune a Client. Source and Replica are required; any other
// zero field means its default.
type ClientOptions struct {
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
	// MaxClockSkew is how far in the gate's future a head statement may be
	// issued (default 5 min); one issued later is refused.
	MaxClockSkew time.Duration
	Logger       *slog.Logger      // nil: discard
	Now          func() time.Time  // nil: time.Now
	Rand         func() float64    // uniform in [0, 1); nil: math/rand/v2
	Metrics      *Metrics          // nil: none
	Source       Source            // required
	Replica      *denylist.Replica // required
}

// Client keeps a gate's deny-list replica up to date from a source. Each
// poll first fetches the signed head statement, then the files that lead to
// the version it names; the list is "up to date" only when a fresh head
// names the version in force with its content hash. Run it on one
// goroutine; SyncOnce is for tests and one-shot tools and must not run
// concurrently with Run. Stale may be called from any goroutine.
type Client struct {
	o   ClientOptions
	log *slog.Logger

	success bool // a poll has confirmed the list up to date

	mu        sync.Mutex
	noHeads   bool           // the source has no head statements
	newest    *denylist.Head // newest verified, unexpired head
	confirmed *denylist.Head // newest head that matched the list in force
	wasStale  bool
}

// NewClient returns a sync client; Run starts it.
func NewClient(o ClientOptions) (*Client, error) {
	if o.Source == nil || o.Replica == nil {
		return nil, errors.New("dlsync: Source and Replica are required")
	}
	o.Interval = orDefault(o.Interval, 20*time.Second)
	if o.Jitter <= 0 {
		o.Jitter = 0.25
	}
	o.Jitter = min(o.Jitter, 1)
	o.MinBackoff = orDefault(o.MinBackoff, 2*time.Second)
	o.MaxBackoff = max(orDefault(o.MaxBackoff, 5*time.Minute), o.MinBackoff)
	if o.CompactAfter <= 0 {
		o.CompactAfter = 32
	}
	o.MaxClockSkew = orDefault(o.MaxClockSkew, 5*time.Minute)
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
	c := &Client{o: o, log: log.With("component", "denylist-sync"), wasStale: true}
	if m := o.Metrics; m != nil {
		now := o.Now
		m.now.Store(&now)
		stale := c.Stale
		m.stale.Store(&stale)
		l := o.Replica.List()
		m.setList(l)
		if l.Version() != 0 {
			m.ageFrom.Store(l.Created().UnixNano())
		} else {
			m.ageFrom.Store(o.Now().UnixNano())
		}
	}
	return c, nil
}

// Stale reports whether no fresh signed head vouches for the list in
// force: none was verified yet, the newest verified head names another
// version or content (the gate could not follow it), it has expired, or the
// list has changed since and no head has confirmed it yet. A source without
// head statements (a directory without HeadFile) is never stale: it cannot
// tell. What a gate does with a stale list is its policy
// (validator.Rules.StalePolicy).
func (c *Client) Stale() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.staleLocked(c.o.Now())
}

func (c *Client) staleLocked(now time.Time) bool {
	if c.noHeads {
		return false
	}
	h := c.confirmed
	return h == nil || h != c.newest || h.Expired(now) || h.Version != c.o.Replica.List().Version()
}

// Run polls until ctx is done, then returns ctx.Err(). A failed poll is
// logged and counted, and retried after a backoff; the list in force never
// changes on failure.
func (c *Client) Run(ctx context.Context) error {
	failures := 0
	for {
		var wait time.Duration
		if err := c.SyncOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			wait = c.backoff(failures)
			c.log.Warn("deny-list sync failed", "err", err, "reason", failureReason(err),
				"failures", failures, "retry_in", wait)
		} else {
			failures = 0
			wait = c.interval()
		}
		c.reportStale()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// reportStale logs when the list turns stale and when it is fresh again.
func (c *Client) reportStale() {
	c.mu.Lock()
	now := c.o.Now()
	stale := c.staleLocked(now)
	was := c.wasStale
	c.wasStale = stale
	confirmed := c.confirmed
	c.mu.Unlock()
	switch {
	case stale && !was && confirmed != nil:
		c.log.Error("deny list stale: no fresh signed head vouches for it; the gate keeps deciding on the list in force unless its policy says otherwise",
			"version", c.o.Replica.List().Version(), "last_confirmed", confirmed.Issued, "expired", confirmed.Expires)
	case !stale && was && confirmed != nil:
		c.log.Info("deny list confirmed by a signed head", "version", confirmed.Version, "issued", confirmed.Issued)
	}
}

// interval is Interval ± Jitter.
func (c *Client) interval() time.Duration {
	f := 1 + c.o.Jitter*(2*c.o.Rand()-1)
	return time.Duration(float64(c.o.Interval) * f)
}

// backoff is a uniform draw in [MinBackoff/2, cap], cap = MinBackoff ×
// 2^(failures-1) bounded by MaxBackoff.
func (c *Client) backoff(failures int) time.Duration {
	cp := c.o.MinBackoff
	for i := 1; i < failures && cp < c.o.MaxBackoff; i++ {
		cp *= 2
	}
	cp = min(cp, c.o.MaxBackoff)
	lo := c.o.MinBackoff / 2
	return lo + time.Duration(c.o.Rand()*float64(cp-lo))
}

// maxFilesPerSync bounds one SyncOnce, so a source that keeps offering
// files cannot hold it forever.
const maxFilesPerSync = 64

// SyncOnce fetches the signed head, then applies files until the list in
// force is the one the head names (or, from a source without heads, until
// the source has nothing newer). The first error ends it; files applied
// before stay applied. When the head cannot be had (missing, expired,
// forged) the files are still fetched and applied — each is signed — but
// the list is not confirmed and SyncOnce returns the head's error.
func (c *Client) SyncOnce(ctx context.Context) error {
	head, headErr := c.fetchHead(ctx)
	diverged, repaired := false, false
	for range maxFilesPerSync {
		if head != nil {
			if done, err := c.checkHead(head, &diverged); done {
				return err
			}
		}
		since := c.o.Replica.Since()
		rc, err := c.o.Source.Fetch(ctx, since)
		if err != nil {
			return c.fail(failureReason(err), err)
		}
		if rc == nil {
			return c.noChange(head, headErr)
		}
		err = c.apply(ctx, since, rc)
		rc.Close()
		if errors.Is(err, denylist.ErrInconsistent) && !repaired {
			// Counted; the replica now asks for a snapshot: fetch it now.
			repaired = true
			c.log.Warn("deny-list delta does not fit the list in force: fetching a snapshot", "err", err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return headErr
}

// fetchHead fetches and verifies the head statement. It returns nil and
// no error from a source without heads, and nil and the (counted) error when
// the head cannot vouch for anything.
func (c *Client) fetchHead(ctx context.Context) (*denylist.Head, error) {
	b, err := c.o.Source.Head(ctx)
	if err != nil {
		reason := failureReason(err)
		if reason == "other" {
			reason = "head"
		}
		return nil, c.fail(reason, fmt.Errorf("dlsync: head: %w", err))
	}
	c.mu.Lock()
	c.noHeads = b == nil
	c.mu.Unlock()
	if b == nil {
		return nil, nil
	}
	h, err := c.o.Replica.ParseHead(b)
	if err != nil {
		return nil, c.fail(failureReason(err), fmt.Errorf("dlsync: head: %w", err))
	}
	now := c.o.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case h.Issued.After(now.Add(c.o.MaxClockSkew)):
		return nil, c.fail("head_future", fmt.Errorf("dlsync: head issued at %s, in the future (gate clock %s)", h.Issued.Format(time.RFC3339), now.Format(time.RFC3339)))
	case c.newest != nil && h.Issued.Before(c.newest.Issued):
		return nil, c.fail("head_replay", fmt.Errorf("dlsync: head issued at %s, older than one already seen (%s)", h.Issued.Format(time.RFC3339), c.newest.Issued.Format(time.RFC3339)))
	case h.Expired(now):
		return nil, c.fail("head_expired", fmt.Errorf("dlsync: the newest head (version %d) expired at %s", h.Version, h.Expires.Format(time.RFC3339)))
	}
	c.newest = &h
	if m := c.o.Metrics; m != nil {
		m.setHead(&h, len(c.o.Replica.TrustedKeys()))
	}
	return &h, nil
}

// checkHead compares the list in force with a verified head. done means
// SyncOnce ends with err: confirmed (nil), or the gate is ahead of the head,
// or still diverged after a fresh snapshot.
func (c *Client) checkHead(h *denylist.Head, diverged *bool) (done bool, err error) {
	cur := c.o.Replica.List()
	switch {
	case c.o.Replica.Since() == 0 && cur.Version() != 0:
		return false, nil // a snapshot is wanted: fetch it
	case cur.Version() < h.Version:
		return false, nil
	case cur.Version() > h.Version:
		return true, c.fail("behind", fmt.Errorf("dlsync: the gate holds version %d, the back office's signed head names %d", cur.Version(), h.Version))
	case cur.ContentHash() == h.ContentHash:
		c.confirm(h)
		return true, nil
	case *diverged:
		return true, c.fail("diverged", fmt.Errorf("dlsync: version %d still differs from the signed head after a new snapshot", h.Version))
	}
	*diverged = true
	c.fail("diverged", nil)
	c.log.Warn("deny list diverged from the back office's at the same version (a restored back office?): fetching a snapshot", "version", h.Version)
	c.o.Replica.RequireSnapshot()
	return false, nil
}

// noChange handles a source that says the gate is up to date.
func (c *Client) noChange(head *denylist.Head, headErr error) error {
	if headErr != nil {
		return headErr
	}
	if head != nil {
		// checkHead let us fetch, so the head names a newer version (or
		// wants a snapshot): the "no change" is stale or forged.
		return c.fail("unconfirmed", fmt.Errorf("dlsync: the server answered no change at version %d, its signed head names version %d",
			c.o.Replica.List().Version(), head.Version))
	}
	c.upToDate(c.o.Now())
	return nil
}

// apply gives one file to the replica.
func (c *Client) apply(ctx context.Context, since uint64, rc io.Reader) error {
	u, err := c.o.Replica.Update(ctx, rc)
	if err != nil {
		err = fmt.Errorf("dlsync: since %d: %w", since, err)
		if ctx.Err() != nil {
			return err
		}
		return c.fail(failureReason(err), err)
	}
	c.log.Info("deny list updated", "kind", u.Kind.String(), "from", u.From, "to", u.To, "entries", u.Entries)
	if m := c.o.Metrics; m != nil {
		m.updates.WithLabelValues(u.Kind.String()).Inc()
		m.setList(c.o.Replica.List())
		if !c.success {
			m.ageFrom.Store(c.o.Replica.List().Created().UnixNano())
		}
	}
	if c.o.Replica.PendingDeltas() >= c.o.CompactAfter {
		if err := c.o.Replica.Compact(ctx); err != nil {
			// ErrInconsistent: Since now asks for a snapshot; go on.
			c.fail("compact", err)
			c.log.Warn("deny-list compaction failed", "err", err)
		}
	}
	return nil
}

// fail counts a failure and returns err labelled with its reason.
func (c *Client) fail(reason string, err error) error {
	if m := c.o.Metrics; m != nil {
		m.failures.WithLabelValues(reason).Inc()
	}
	if err == nil {
		return nil
	}
	return &syncError{reason: reason, err: err}
}

// confirm records a head that matched the list in force: the list's age is
// measured from its issue.
func (c *Client) confirm(h *denylist.Head) {
	c.mu.Lock()
	c.confirmed = h
	c.mu.Unlock()
	c.success = true
	c.log.Debug("deny list confirmed by a signed head", "version", h.Version, "issued", h.Issued)
	if m := c.o.Metrics; m != nil {
		m.lastSuccess.Set(seconds(c.o.Now()))
		m.ageFrom.Store(h.Issued.UnixNano())
	}
}

// upToDate records that a source without heads has nothing newer.
func (c *Client) upToDate(now time.Time) {
	c.success = true
	c.log.Debug("deny list up to date", "version", c.o.Replica.List().Version())
	if m := c.o.Metrics; m != nil {
		m.lastSuccess.Set(seconds(now))
		m.ageFrom.Store(now.UnixNano())
	}
}
