package backend

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faregate/faregate/denylist"
)

// Why a token is listed or removed (DenylistEntry.Reason,
// DenylistRemoval.Reason). Other values are allowed; these are the ones the
// back office itself uses.
const (
	ReasonLateDecline   = "late_decline"   // a charge was declined after the rides
	ReasonOperator      = "operator"       // an operator decided
	ReasonImport        = "import"         // bulk import
	ReasonDebtRecovered = "debt_recovered" // the debt was paid
)

// DenylistRegistryOptions configure a DenylistRegistry.
type DenylistRegistryOptions struct {
	ListID denylist.ListID    // default denylist.DefaultListID
	Key    ed25519.PrivateKey // signs every version and delta (required)
	// Retain is how long the changes behind deltas are kept (default 8
	// days: a gate offline for a week still catches up by delta, with a day
	// to spare). Older gates get a snapshot.
	Retain time.Duration
	// MaxAge is the Cache-Control max-age of GET /v1/denylist answers
	// (default 10 s): how long a CDN may serve an answer before asking
	// again. It adds to the time a change takes to reach the gates.
	MaxAge time.Duration
	Now    func() time.Time // nil: time.Now
}

// DenylistRegistry is the back office's deny list: listed tokens with
// their reason and debt, published as signed versions. Each Apply (a late
// decline, a debt recovery, an operator's change, a bulk import) is one new
// version, N+1. The current version is held in memory, signed; deltas from
// any retained version are built from the store on demand and cached. Safe
// for concurrent use; changes are serialised.
type DenylistRegistry struct {
	store  DenylistStore
	key    ed25519.PrivateKey
	pub    ed25519.PublicKey
	id     denylist.ListID
	retain time.Duration
	maxAge time.Duration
	now    func() time.Time

	mu   sync.Mutex // serialises changes
	head atomic.Pointer[denylistHead]
}

// denylistHead is the published state: current list and delta cache.
type denylistHead struct {
	list       *denylist.List
	deltasFrom uint64
	mu         sync.Mutex
	deltas     map[uint64][]byte // since → signed delta to list
}

// maxCachedDeltas bounds the delta cache of one version.
const maxCachedDeltas = 256

// NewDenylistRegistry opens the registry on store: it loads every listed
// token's fingerprint and checks that they make the newest version the
// store recorded (its signature must verify), so a list edited behind the
// registry's back is never published. An empty store starts at version 0.
func NewDenylistRegistry(ctx context.Context, store DenylistStore, o DenylistRegistryOptions) (*DenylistRegistry, error) {
	if len(o.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("denylist registry: an Ed25519 signing key is required")
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
	if o.MaxAge <= 0 {
		o.MaxAge = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &DenylistRegistry{
		store: store, key: o.Key, pub: o.Key.Public().(ed25519.PublicKey), id: o.ListID,
		retain: o.Retain, maxAge: o.MaxAge, now: o.Now,
	}
	v, ok, err := store.DenylistHead(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		r.head.Store(&denylistHead{list: denylist.Empty(o.ListID)})
		return r, nil
	}
	var fps []uint64
	if err := store.DenylistFingerprints(ctx, func(fp uint64) { fps = append(fps, fp) }); err != nil {
		return nil, err
	}
	set := denylist.NewSet(fps)
	list, err := denylist.Sign(o.Key, o.ListID, v.Version, v.Created, set)
	if err != nil {
		return nil, err
	}
	if set.Len() != v.Entries || !slices.Equal(list.Signature(), v.SnapshotSig) {
		return nil, fmt.Errorf("denylist registry: the listed tokens (%d fingerprints) do not make version %d as recorded (%d): %w; restore the store or check the list id and key",
			set.Len(), v.Version, v.Entries, denylist.ErrInconsistent)
	}
	r.head.Store(&denylistHead{list: list, deltasFrom: v.DeltasFrom})
	return r, nil
}

// Current returns the current version.
func (r *DenylistRegistry) Current() *denylist.List { return r.head.Load().list }

// PublicKey returns the key gates verify the list with.
func (r *DenylistRegistry) PublicKey() ed25519.PublicKey { return r.pub }

// DenylistChange is one change in a batch: a token to list (with what is
// known about it) or to remove.
type DenylistChange struct {
	Token       denylist.Token
	Remove      bool
	Reason      string // required: ReasonLateDecline, ReasonDebtRecovered …
	Actor       string // who: "settlement 2026-11-23", an operator's name …
	AmountMinor int64  // adds: debt owed, in minor units
	Currency    string // adds: ISO 4217 alphabetic code
	DeclinedAt  time.Time
}

// ErrDenylistReason: a change without a reason.
var ErrDenylistReason = errors.New("backend: deny-list change without a reason")

// Apply makes one new version from a batch of changes, applied in order.
// Changes that change nothing (listing a listed token, removing an absent
// one) are skipped; when nothing is left the version stays and Apply
// returns it. Listing a token that is already listed keeps its entry as it
// was.
func (r *DenylistRegistry) Apply(ctx context.Context, changes []DenylistChange) (uint64, error) {
	for _, c := range changes {
		if c.Reason == "" {
			return 0, ErrDenylistReason
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.head.Load()

	tokens := make([]denylist.Token, 0, len(changes))
	for _, c := range changes {
		tokens = append(tokens, c.Token)
	}
	listed, err := r.store.DenylistEntries(ctx, tokens)
	if err != nil {
		return 0, err
	}
	// Net effect on each token, changes applied in order; no-ops skipped.
	present := make(map[denylist.Token]bool, len(changes))
	var order []denylist.Token
	lastAdd := make(map[denylist.Token]DenylistChange)
	lastRemove := make(map[denylist.Token]DenylistChange)
	for _, c := range changes {
		p, seen := present[c.Token]
		if !seen {
			_, p = listed[c.Token]
			order = append(order, c.Token)
		}
		switch {
		case c.Remove && p:
			lastRemove[c.Token] = c
			p = false
		case !c.Remove && !p:
			lastAdd[c.Token] = c
			p = true
		}
		present[c.Token] = p
	}
	now := r.now()
	commit := &DenylistCommit{At: now}
	var fpTouched []uint64
	delta := make(map[uint64]int) // fingerprint → listed tokens added minus removed
	for _, t := range order {
		_, was := listed[t]
		is := present[t]
		if was == is {
			continue
		}
		fp := denylist.Fingerprint(t)
		fpTouched = append(fpTouched, fp)
		if is {
			c := lastAdd[t]
			commit.Adds = append(commit.Adds, DenylistEntry{
				Token: t, Reason: c.Reason, Actor: c.Actor, AmountMinor: c.AmountMinor,
				Currency: c.Currency, DeclinedAt: c.DeclinedAt, ListedAt: now,
			})
			delta[fp]++
		} else {
			c := lastRemove[t]
			commit.Removes = append(commit.Removes, DenylistRemoval{Token: t, Reason: c.Reason, Actor: c.Actor})
			delta[fp]--
		}
	}
	if len(commit.Adds)+len(commit.Removes) == 0 {
		return cur.list.Version(), nil
	}
	fpTouched = slices.Compact(slices.Sorted(slices.Values(fpTouched)))
	counts, err := r.store.DenylistFingerprintCounts(ctx, fpTouched)
	if err != nil {
		return 0, err
	}
	version := cur.list.Version() + 1
	var add, remove []uint64
	for _, fp := range fpTouched {
		before := counts[fp]
		after := before + delta[fp]
		switch {
		case before == 0 && after > 0:
			add = append(add, fp)
			commit.Changes = append(commit.Changes, DenylistFingerprintChange{Version: version, Fingerprint: fp, Added: true})
		case before > 0 && after == 0:
			remove = append(remove, fp)
			commit.Changes = append(commit.Changes, DenylistFingerprintChange{Version: version, Fingerprint: fp})
		}
	}
	set, err := cur.list.Set().Apply(add, remove)
	if err != nil {
		return 0, fmt.Errorf("denylist registry: store and list disagree: %w", err)
	}
	list, err := denylist.Sign(r.key, r.id, version, now, set)
	if err != nil {
		return 0, err
	}
	commit.Version = DenylistVersion{Version: version, Created: list.Created(), Entries: set.Len(), SnapshotSig: list.Signature()}
	if err := r.store.DenylistCommit(ctx, commit); err != nil {
		return 0, err
	}
	from := cur.deltasFrom
	if from == 0 {
		from = version
	}
	if f, err := r.store.DenylistPrune(ctx, now.Add(-r.retain)); err == nil {
		from = f
	} // a failed prune only keeps more: not an error for this change
	r.head.Store(&denylistHead{list: list, deltasFrom: from})
	return version, nil
}

// AddLateDecline lists the token of a card whose charge was declined after
// the rides.
func (r *DenylistRegistry) AddLateDecline(ctx context.Context, t denylist.Token, amountMinor int64, currency string, declinedAt time.Time, actor string) (uint64, error) {
	return r.Apply(ctx, []DenylistChange{{
		Token: t, Reason: ReasonLateDecline, Actor: actor, AmountMinor: amountMinor, Currency: currency, DeclinedAt: declinedAt,
	}})
}

// Remove takes a token off the list: ReasonDebtRecovered when the debt is
// paid (schemes require it within the hour), ReasonOperator otherwise.
func (r *DenylistRegistry) Remove(ctx context.Context, t denylist.Token, reason, actor string) (uint64, error) {
	return r.Apply(ctx, []DenylistChange{{Token: t, Remove: true, Reason: reason, Actor: actor}})
}

// Import lists tokens in bulk as one version (migrating from another
// system, say).
func (r *DenylistRegistry) Import(ctx context.Context, tokens []denylist.Token, reason, actor string) (uint64, error) {
	changes := make([]DenylistChange, len(tokens))
	for i, t := range tokens {
		changes[i] = DenylistChange{Token: t, Reason: reason, Actor: actor}
	}
	return r.Apply(ctx, changes)
}

// Entry returns what the registry knows about a listed token.
func (r *DenylistRegistry) Entry(ctx context.Context, t denylist.Token) (DenylistEntry, bool, error) {
	m, err := r.store.DenylistEntries(ctx, []denylist.Token{t})
	if err != nil {
		return DenylistEntry{}, false, err
	}
	e, ok := m[t]
	return e, ok, nil
}

// denylistAnswer is what a gate at version since should receive.
type denylistAnswer struct {
	upToDate bool   // since is the current version
	ahead    bool   // since is newer than the current version
	delta    []byte // a signed delta, or
	snapshot *denylist.List
	list     *denylist.List // current
}

// answer decides what a gate at version since gets: nothing (up to date),
// a delta from since when the changes are retained and the delta is
// smaller than a snapshot, else the snapshot.
func (r *DenylistRegistry) answer(ctx context.Context, since uint64) (denylistAnswer, error) {
	h := r.head.Load()
	cur := h.list
	a := denylistAnswer{list: cur}
	switch {
	case since == cur.Version():
		a.upToDate = true
		return a, nil
	case since > cur.Version():
		a.ahead = true
		return a, nil
	case since == 0 || since < h.deltasFrom:
		a.snapshot = cur
		return a, nil
	}
	h.mu.Lock()
	b, ok := h.deltas[since]
	h.mu.Unlock()
	if ok {
		if b == nil {
			a.snapshot = cur
		}
		a.delta = b
		return a, nil
	}
	b, err := r.buildDelta(ctx, h, since)
	if err != nil {
		return a, err
	}
	h.mu.Lock()
	if h.deltas == nil {
		h.deltas = make(map[uint64][]byte)
	}
	if len(h.deltas) < maxCachedDeltas {
		h.deltas[since] = b
	}
	h.mu.Unlock()
	if b == nil {
		a.snapshot = cur
	}
	a.delta = b
	return a, nil
}

// buildDelta builds the signed delta from since to h's version out of the
// retained fingerprint changes, or returns nil when a snapshot is smaller.
// Changes of one fingerprint alternate (add, remove, add …), so the net
// effect is its first change when first and last agree, none otherwise.
func (r *DenylistRegistry) buildDelta(ctx context.Context, h *denylistHead, since uint64) ([]byte, error) {
	cur := h.list
	changes, err := r.store.DenylistChanges(ctx, since, cur.Version())
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
func (r *DenylistRegistry) WriteSnapshot(w io.Writer) error {
	cur := r.Current()
	if cur.Version() == 0 {
		return errors.New("denylist registry: nothing published yet")
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
func (r *DenylistRegistry) Delta(ctx context.Context, since uint64) ([]byte, error) {
	a, err := r.answer(ctx, since)
	if err != nil || a.ahead {
		if a.ahead {
			err = fmt.Errorf("denylist registry: version %d is newer than the current %d", since, a.list.Version())
		}
		return nil, err
	}
	return a.delta, nil
}
