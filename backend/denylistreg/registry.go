package denylistreg

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/denylist/dlsync"
)

// Why a token is listed or removed (Entry.Reason,
// Removal.Reason). Other values are allowed; these are the ones the
// back office itself uses.
const (
	ReasonLateDecline   = "late_decline"   // a charge was declined after the rides
	ReasonOperator      = "operator"       // an operator decided
	ReasonImport        = "import"         // bulk import
	ReasonDebtRecovered = "debt_recovered" // the debt was paid
)

// Options configure a Registry.
type Options struct {
	ListID denylist.ListID    // default denylist.DefaultListID
	Key    ed25519.PrivateKey // signs every version and delta (required)
	// NextKey, when set, is announced to gates in every head statement as
	// the key that will sign next (docs/denylist.md, "Key rotation").
	NextKey ed25519.PublicKey
	// PreviousKeys are keys the recorded current version may have been
	// signed with before a switch to Key: New accepts the stored version
	// when its signature verifies with one of them, and re-signs it with Key.
	PreviousKeys []ed25519.PublicKey
	// Retain is how long the changes behind deltas are kept (default 8
	// days: a gate offline for a week still catches up by delta, with a day
	// to spare). Older gates get a snapshot.
	Retain time.Duration
	Now    func() time.Time // nil: time.Now
}

// Registry is the back office's deny list: listed tokens with
// their reason and debt, published as signed versions. Each Apply (a late
// decline, a debt recovery, an operator's change, a bulk import) is one new
// version, N+1. The current version is held in memory, signed; deltas from
// any retained version are built from the store on demand and cached. Safe
// for concurrent use; changes are serialised.
type Registry struct {
	store  Store
	key    ed25519.PrivateKey
	pub    ed25519.PublicKey
	next   ed25519.PublicKey
	id     denylist.ListID
	retain time.Duration
	now    func() time.Time

	mu   sync.Mutex // serialises changes
	head atomic.Pointer[published]
}

// published is the published state: current list and delta cache.
type published struct {
	list       *denylist.List
	deltasFrom uint64
	mu         sync.Mutex
	deltas     map[uint64][]byte // since → signed delta to list
}

// maxCachedDeltas bounds the delta cache of one version.
const maxCachedDeltas = 256

// New opens the registry on store: it loads every listed
// token's fingerprint and checks that they make the newest version the
// store recorded (its signature must verify), so a list edited behind the
// registry's back is never published. An empty store starts at version 0.
func New(ctx context.Context, store Store, o Options) (*Registry, error) {
	if len(o.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("denylistreg: an Ed25519 signing key is required")
	}
	if o.ListID == "" {
		o.ListID = denylist.DefaultListID
	}
	if err := o.ListID.Valid(); err != nil {
		return nil, err
	}
	if o.Retain <= 0 {
		o.Retain = 8 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Registry{
		store: store, key: o.Key, pub: o.Key.Public().(ed25519.PublicKey), next: o.NextKey, id: o.ListID,
		retain: o.Retain, now: o.Now,
	}
	v, ok, err := store.Head(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		r.head.Store(&published{list: denylist.Empty(o.ListID)})
		return r, nil
	}
	var fps []uint64
	if err := store.Fingerprints(ctx, func(fp uint64) { fps = append(fps, fp) }); err != nil {
		return nil, err
	}
	set := denylist.NewSet(fps)
	list, err := denylist.Sign(o.Key, o.ListID, v.Version, v.Created, set)
	if err != nil {
		return nil, err
	}
	if set.Len() != v.Entries || (!slices.Equal(list.Signature(), v.SnapshotSig) && !signedBefore(o.ListID, v, set, o.PreviousKeys)) {
		return nil, fmt.Errorf("denylistreg: the listed tokens (%d fingerprints) do not make version %d as recorded (%d): %w; restore the store or check the list id and key",
			set.Len(), v.Version, v.Entries, denylist.ErrInconsistent)
	}
	r.head.Store(&published{list: list, deltasFrom: v.DeltasFrom})
	return r, nil
}

// signedBefore reports whether the recorded signature of version v
// verifies over set with one of the previous keys: the store was written
// before a key switch.
func signedBefore(id denylist.ListID, v Version, set *denylist.Set, previous []ed25519.PublicKey) bool {
	for _, pub := range previous {
		if denylist.VerifySnapshot(pub, id, v.Version, v.Created, set, v.SnapshotSig) == nil {
			return true
		}
	}
	return false
}

// Current returns the current version.
func (r *Registry) Current() *denylist.List { return r.head.Load().list }

// NewServer returns the sync protocol's HTTP handler for this registry
// (GET /v1/denylist and /v1/denylist/head): o.Key and o.Now default to the
// registry's.
func (r *Registry) NewServer(o dlsync.ServerOptions) (*dlsync.Server, error) {
	if o.Key == nil {
		o.Key, o.NextKey = r.key, r.next
	}
	if o.Now == nil {
		o.Now = r.now
	}
	return dlsync.NewServer(r, o)
}

// PublicKey returns the key gates verify the list with.
func (r *Registry) PublicKey() ed25519.PublicKey { return r.pub }

// Change is one change in a batch: a token to list (with what is
// known about it) or to remove.
type Change struct {
	Token      denylist.Token
	Remove     bool
	Reason     string         // required: ReasonLateDecline, ReasonDebtRecovered …
	Actor      string         // who: "settlement 2026-11-23", an operator's name …
	Owed       capping.Amount // adds: debt owed, in the currency's minor units
	Currency   string         // adds: ISO 4217 alphabetic code
	DeclinedAt time.Time
}

// ErrNoReason: a change without a reason.
var ErrNoReason = errors.New("denylistreg: change without a reason")

// Apply makes one new version from a batch of changes, applied in order.
// Changes that change nothing (listing a listed token, removing an absent
// one) are skipped; when nothing is left the version stays and Apply
// returns it. Listing a token that is already listed keeps its entry as it
// was.
func (r *Registry) Apply(ctx context.Context, changes []Change) (uint64, error) {
	for _, c := range changes {
		if c.Reason == "" {
			return 0, ErrNoReason
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.head.Load()

	tokens := make([]denylist.Token, 0, len(changes))
	for _, c := range changes {
		tokens = append(tokens, c.Token)
	}
	listed, err := r.store.Entries(ctx, tokens)
	if err != nil {
		return 0, err
	}
	now := r.now()
	version := cur.list.Version() + 1
	commit, delta := entryChanges(netEffect(changes, listed), listed, now)
	if len(commit.Adds)+len(commit.Removes) == 0 {
		return cur.list.Version(), nil
	}
	add, remove, err := r.fingerprintChanges(ctx, commit, delta, version)
	if err != nil {
		return 0, err
	}
	return r.publish(ctx, cur, commit, add, remove, version, now)
}

// batchEffect is the effect of a batch on each token it names, in the order they
// first appear: whether it ends listed, and the last change that listed or
// removed it.
type batchEffect struct {
	order      []denylist.Token
	present    map[denylist.Token]bool
	lastAdd    map[denylist.Token]Change
	lastRemove map[denylist.Token]Change
}

// netEffect applies changes in order to what is listed; no-ops are skipped.
func netEffect(changes []Change, listed map[denylist.Token]Entry) *batchEffect {
	n := &batchEffect{
		present:    make(map[denylist.Token]bool, len(changes)),
		lastAdd:    make(map[denylist.Token]Change),
		lastRemove: make(map[denylist.Token]Change),
	}
	for _, c := range changes {
		p, seen := n.present[c.Token]
		if !seen {
			_, p = listed[c.Token]
			n.order = append(n.order, c.Token)
		}
		switch {
		case c.Remove && p:
			n.lastRemove[c.Token] = c
			p = false
		case !c.Remove && !p:
			n.lastAdd[c.Token] = c
			p = true
		}
		n.present[c.Token] = p
	}
	return n
}

// entryChanges turns the net effect into the entries to add and remove,
// and counts, per fingerprint, listed tokens added minus removed.
func entryChanges(n *batchEffect, listed map[denylist.Token]Entry, now time.Time) (*Commit, map[uint64]int) {
	commit := &Commit{At: now}
	delta := make(map[uint64]int)
	for _, t := range n.order {
		_, was := listed[t]
		if was == n.present[t] {
			continue
		}
		fp := denylist.Fingerprint(t)
		if n.present[t] {
			c := n.lastAdd[t]
			commit.Adds = append(commit.Adds, Entry{
				Token: t, Reason: c.Reason, Actor: c.Actor, Owed: c.Owed,
				Currency: c.Currency, DeclinedAt: c.DeclinedAt, ListedAt: now,
			})
			delta[fp]++
		} else {
			c := n.lastRemove[t]
			commit.Removes = append(commit.Removes, Removal{Token: t, Reason: c.Reason, Actor: c.Actor})
			delta[fp]--
		}
	}
	return commit, delta
}

// fingerprintChanges finds the fingerprints that enter or leave the
// gate-side set: a fingerprint is added when its first listed token
// arrives and removed when its last one leaves. They are recorded in
// commit.Changes.
func (r *Registry) fingerprintChanges(ctx context.Context, commit *Commit, delta map[uint64]int, version uint64) (add, remove []uint64, err error) {
	touched := slices.Sorted(maps.Keys(delta))
	counts, err := r.store.FingerprintCounts(ctx, touched)
	if err != nil {
		return nil, nil, err
	}
	for _, fp := range touched {
		before := counts[fp]
		after := before + delta[fp]
		switch {
		case before == 0 && after > 0:
			add = append(add, fp)
			commit.Changes = append(commit.Changes, FingerprintChange{Version: version, Fingerprint: fp, Added: true})
		case before > 0 && after == 0:
			remove = append(remove, fp)
			commit.Changes = append(commit.Changes, FingerprintChange{Version: version, Fingerprint: fp})
		}
	}
	return add, remove, nil
}

// publish signs the new version, records it and makes it current; then it
// prunes the changes older than Retain.
func (r *Registry) publish(ctx context.Context, cur *published, commit *Commit, add, remove []uint64, version uint64, now time.Time) (uint64, error) {
	set, err := cur.list.Set().Apply(add, remove)
	if err != nil {
		return 0, fmt.Errorf("denylistreg: store and list disagree: %w", err)
	}
	list, err := denylist.Sign(r.key, r.id, version, now, set)
	if err != nil {
		return 0, err
	}
	commit.Version = Version{Version: version, Created: list.Created(), Entries: set.Len(), SnapshotSig: list.Signature()}
	if err := r.store.Commit(ctx, commit); err != nil {
		return 0, err
	}
	from := cur.deltasFrom
	if from == 0 {
		from = version
	}
	if f, err := r.store.Prune(ctx, now.Add(-r.retain)); err == nil {
		from = f
	} // a failed prune only keeps more: not an error for this change
	r.head.Store(&published{list: list, deltasFrom: from})
	return version, nil
}

// AddLateDecline lists the token of a card whose charge was declined after
// the rides.
func (r *Registry) AddLateDecline(ctx context.Context, t denylist.Token, owed capping.Amount, currency capping.Currency, declinedAt time.Time, actor string) (uint64, error) {
	return r.Apply(ctx, []Change{{
		Token: t, Reason: ReasonLateDecline, Actor: actor, Owed: owed, Currency: currency.Code, DeclinedAt: declinedAt,
	}})
}

// Remove takes a token off the list: ReasonDebtRecovered when the debt is
// paid (schemes require it within the hour), ReasonOperator otherwise.
func (r *Registry) Remove(ctx context.Context, t denylist.Token, reason, actor string) (uint64, error) {
	return r.Apply(ctx, []Change{{Token: t, Remove: true, Reason: reason, Actor: actor}})
}

// Import lists tokens in bulk as one version (migrating from another
// system, say).
func (r *Registry) Import(ctx context.Context, tokens []denylist.Token, reason, actor string) (uint64, error) {
	changes := make([]Change, len(tokens))
	for i, t := range tokens {
		changes[i] = Change{Token: t, Reason: reason, Actor: actor}
	}
	return r.Apply(ctx, changes)
}

// Entry returns what the registry knows about a listed token.
func (r *Registry) Entry(ctx context.Context, t denylist.Token) (Entry, bool, error) {
	m, err := r.store.Entries(ctx, []denylist.Token{t})
	if err != nil {
		return Entry{}, false, err
	}
	e, ok := m[t]
	return e, ok, nil
}

// ListEntries returns up to limit listed entries, newest listing first.
func (r *Registry) ListEntries(ctx context.Context, limit int) ([]Entry, error) {
	return r.store.ListEntries(ctx, limit)
}

// Debt returns how many tokens are listed and what they owe, by currency.
func (r *Registry) Debt(ctx context.Context) (entries int, owed map[string]int64, err error) {
	return r.store.Debt(ctx)
}

// Version returns a published version (when it was created, its size);
// ok is false when it was never published.
func (r *Registry) Version(ctx context.Context, v uint64) (Version, bool, error) {
	return r.store.Version(ctx, v)
}

// Answer decides what a gate at version since gets (dlsync.Publisher):
// nothing (up to date), a delta from since when the changes are retained
// and the delta is smaller than a snapshot, else the snapshot.
func (r *Registry) Answer(ctx context.Context, since uint64) (dlsync.Answer, error) {
	h := r.head.Load()
	cur := h.list
	a := dlsync.Answer{Current: cur}
	switch {
	case since == cur.Version():
		a.UpToDate = true
		return a, nil
	case since > cur.Version():
		a.Ahead = true
		return a, nil
	case since == 0 || since < h.deltasFrom:
		a.Snapshot = cur
		return a, nil
	}
	b, err := r.delta(ctx, h, since)
	if err != nil {
		return a, err
	}
	if b == nil {
		a.Snapshot = cur
	}
	a.Delta = b
	return a, nil
}

// delta returns the signed delta from since to h's version, from the cache
// or built; nil when a snapshot is no bigger.
func (r *Registry) delta(ctx context.Context, h *published, since uint64) ([]byte, error) {
	h.mu.Lock()
	b, ok := h.deltas[since]
	h.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := r.buildDelta(ctx, h, since)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	if h.deltas == nil {
		h.deltas = make(map[uint64][]byte)
	}
	if len(h.deltas) < maxCachedDeltas {
		h.deltas[since] = b
	}
	h.mu.Unlock()
	return b, nil
}

// buildDelta builds the signed delta from since to h's version out of the
// retained fingerprint changes, or returns nil when a snapshot is smaller.
// Changes of one fingerprint alternate (add, remove, add …), so the net
// effect is its first change when first and last agree, none otherwise.
func (r *Registry) buildDelta(ctx context.Context, h *published, since uint64) ([]byte, error) {
	cur := h.list
	changes, err := r.store.Changes(ctx, since, cur.Version())
	if err != nil {
		return nil, err
	}
	type firstLast struct{ first, last bool }
	net := make(map[uint64]firstLast)
	for _, c := range changes {
		fl, ok := net[c.Fingerprint]
		if !ok {
			fl.first = c.Added
		}
		fl.last = c.Added
		net[c.Fingerprint] = fl
	}
	var add, remove []uint64
	for fp, fl := range net {
		switch {
		case fl.first && fl.last:
			add = append(add, fp)
		case !fl.first && !fl.last:
			remove = append(remove, fp)
		}
	}
	// Sizes: delta 72 + 8·(adds+removes) + 128, snapshot 72 + 8·count + 64.
	if 8*(len(add)+len(remove))+denylist.SignatureSize >= 8*cur.Len() {
		return nil, nil // a snapshot is no bigger
	}
	slices.Sort(add)
	slices.Sort(remove)
	d := &denylist.Delta{
		ListID: r.id, From: since, To: cur.Version(), Created: cur.Created(), Count: uint64(cur.Len()),
		Add: add, Remove: remove, SnapshotSignature: cur.Signature(),
	}
	return d.Sign(r.key)
}

// WriteSnapshot writes the current version as a signed snapshot file.
func (r *Registry) WriteSnapshot(w io.Writer) error {
	cur := r.Current()
	if cur.Version() == 0 {
		return errors.New("denylistreg: nothing published yet")
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := cur.WriteTo(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// Delta returns the signed delta from version since to the current one,
// or nil when the gate needs the snapshot instead (since too old, 0, or the
// delta no smaller than the snapshot), or when since is current.
func (r *Registry) Delta(ctx context.Context, since uint64) ([]byte, error) {
	a, err := r.Answer(ctx, since)
	if err != nil || a.Ahead {
		if a.Ahead {
			err = fmt.Errorf("denylistreg: version %d is newer than the current %d", since, a.Current.Version())
		}
		return nil, err
	}
	return a.Delta, nil
}
