package denylist

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sync"
	"time"
)

// List is one immutable version of a deny list: its id, version, creation
// time, set of fingerprints and the back office's signature over its
// snapshot encoding.
type List struct {
	id       ListID
	version  uint64
	created  time.Time
	set      *Set
	sig      []byte
	verified bool // sig checked against this content (read or signed here)

	hashOnce sync.Once
	hash     [32]byte // ContentHash, once computed
}

// Empty returns version 0 of list id: no entries, no signature. It is what a
// gate holds before its first snapshot; it denies nothing.
func Empty(id ListID) *List { return &List{id: id, set: &Set{}} }

// ID returns the list id.
func (l *List) ID() ListID { return l.id }

// Version returns the version (0 for Empty).
func (l *List) Version() uint64 { return l.version }

// Created returns when the version was published.
func (l *List) Created() time.Time { return l.created }

// Len returns the number of entries.
func (l *List) Len() int { return l.set.Len() }

// Set returns the entries.
func (l *List) Set() *Set { return l.set }

// Contains reports whether the token is deny-listed.
func (l *List) Contains(t Token) bool { return l.set.Contains(t) }

// Signature returns the back office's signature over the snapshot encoding
// of this version. For a list made by Apply it is the signature the delta
// carried; WriteVerified and Verify check it against the content.
func (l *List) Signature() []byte { return slices.Clone(l.sig) }

func (l *List) header() *Header {
	return &Header{
		Kind:    KindSnapshot,
		ListID:  l.id,
		To:      l.version,
		Created: l.created,
		Count:   uint64(l.set.Len()),
	}
}

// Sign builds version `version` of list id holding set, signed with key.
// created is truncated to the millisecond, as the file stores it.
func Sign(key ed25519.PrivateKey, id ListID, version uint64, created time.Time, set *Set) (*List, error) {
	if err := id.Valid(); err != nil {
		return nil, err
	}
	if version == 0 {
		return nil, errors.New("denylist: version must be at least 1")
	}
	if created.UnixMilli() < 0 {
		return nil, errors.New("denylist: created time before 1970")
	}
	if set == nil {
		set = &Set{}
	}
	if set.Len() > MaxEntries {
		return nil, fmt.Errorf("denylist: %d entries, more than the %d a file may hold", set.Len(), MaxEntries)
	}
	l := &List{id: id, version: version, created: time.UnixMilli(created.UnixMilli()).UTC(), set: set}
	h := sha512.New()
	if err := l.encodeBody(h); err != nil {
		return nil, err
	}
	sig, err := sign(key, h)
	if err != nil {
		return nil, err
	}
	l.sig, l.verified = sig, true
	return l, nil
}

// encodeBody writes header and fingerprints (everything the signature
// covers) to each of ws.
func (l *List) encodeBody(ws ...io.Writer) error {
	hb := l.header().marshal()
	for _, w := range ws {
		if _, err := w.Write(hb); err != nil {
			return err
		}
	}
	return l.set.writeBE(make([]byte, 64<<10), ws...)
}

// WriteTo writes the list as a signed snapshot file.
func (l *List) WriteTo(w io.Writer) (int64, error) {
	if l.version == 0 {
		return 0, errors.New("denylist: version 0 has no snapshot")
	}
	cw := &countingWriter{w: w}
	if err := l.encodeBody(cw); err != nil {
		return cw.n, err
	}
	_, err := cw.Write(l.sig)
	return cw.n, err
}

// WriteVerified writes the list as a snapshot file, like WriteTo, and
// checks in the same pass that its signature verifies with pub over the
// bytes written. For a list made by Apply this proves the result equals the
// back office's own snapshot of that version; a mismatch returns
// ErrInconsistent. The caller must discard what was written on error.
func (l *List) WriteVerified(w io.Writer, pub ed25519.PublicKey) error {
	if l.version == 0 {
		return errors.New("denylist: version 0 has no snapshot")
	}
	h := sha512.New()
	if err := l.encodeBody(w, h); err != nil {
		return err
	}
	if err := l.check(pub, h); err != nil {
		return err
	}
	_, err := w.Write(l.sig)
	return err
}

// Verify checks the list's signature with pub over its snapshot encoding.
func (l *List) Verify(pub ed25519.PublicKey) error {
	if l.version == 0 {
		return errors.New("denylist: version 0 has no snapshot")
	}
	h := sha512.New()
	if err := l.encodeBody(h); err != nil {
		return err
	}
	return l.check(pub, h)
}

func (l *List) check(pub ed25519.PublicKey, h hash.Hash) error {
	err := verify(pub, h.Sum(nil), l.sig)
	if errors.Is(err, ErrSignature) && !l.verified {
		return fmt.Errorf("%w: result of version %d differs from the back office's snapshot", ErrInconsistent, l.version)
	}
	return err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Delta is the change from version From to version To of a list.
type Delta struct {
	ListID  ListID
	From    uint64
	To      uint64
	Created time.Time // when version To was published
	Count   uint64    // entries in version To
	Add     []uint64  // fingerprints added, strictly increasing
	Remove  []uint64  // fingerprints removed, strictly increasing, disjoint from Add
	// SnapshotSignature is the signature of the snapshot of version To, so a
	// gate can rebuild that snapshot, verified, without downloading it.
	SnapshotSignature []byte
}

// Diff returns the delta that turns from into to. Both must be versions of
// the same list, from older than to.
func Diff(from, to *List) (*Delta, error) {
	if from.id != to.id {
		return nil, fmt.Errorf("%w: %q and %q", ErrListID, from.id, to.id)
	}
	if from.version == 0 || from.version >= to.version {
		return nil, fmt.Errorf("denylist: cannot diff version %d to version %d: need 1 <= from < to", from.version, to.version)
	}
	add, remove := diffSets(from.set, to.set)
	return &Delta{
		ListID: to.id, From: from.version, To: to.version, Created: to.created,
		Count: uint64(to.set.Len()), Add: add, Remove: remove, SnapshotSignature: slices.Clone(to.sig),
	}, nil
}

// Sign encodes the delta as a signed file. It refuses a delta the decoder
// would refuse.
func (d *Delta) Sign(key ed25519.PrivateKey) ([]byte, error) {
	if len(d.SnapshotSignature) != SignatureSize {
		return nil, errors.New("denylist: delta needs the 64-byte signature of the snapshot of its target version")
	}
	if err := d.ListID.Valid(); err != nil {
		return nil, err
	}
	h := Header{
		Kind: KindDelta, ListID: d.ListID, From: d.From, To: d.To,
		Created: time.UnixMilli(d.Created.UnixMilli()), Count: d.Count,
		Adds: uint64(len(d.Add)), Removes: uint64(len(d.Remove)),
	}
	if d.Created.UnixMilli() < 0 {
		return nil, errors.New("denylist: created time before 1970")
	}
	var buf bytes.Buffer
	buf.Grow(int(h.Size()))
	buf.Write(h.marshal())
	var b []byte
	for _, run := range [][]uint64{d.Add, d.Remove} {
		for _, fp := range run {
			b = binary.BigEndian.AppendUint64(b[:0], fp)
			buf.Write(b)
		}
	}
	buf.Write(d.SnapshotSignature)
	sha := sha512.New()
	sha.Write(buf.Bytes())
	sig, err := sign(key, sha)
	if err != nil {
		return nil, err
	}
	buf.Write(sig)
	if _, err := decode(bytes.NewReader(buf.Bytes())); err != nil {
		return nil, fmt.Errorf("denylist: refusing to sign an invalid delta: %w", err)
	}
	return buf.Bytes(), nil
}

// Apply returns the list that results from applying d to l. It checks,
// before building anything, that d belongs to the same list and starts
// exactly at l's version (ErrListID, ErrReplay, ErrGap); then that every
// added entry is absent, every removed one present and the count right
// (ErrInconsistent). l is never modified. d must come from ReadDelta (whose
// signature was verified) or from Diff.
func (l *List) Apply(d *Delta) (*List, error) {
	if d.ListID != l.id {
		return nil, fmt.Errorf("%w: list is %q, delta is for %q", ErrListID, l.id, d.ListID)
	}
	if d.To <= l.version {
		return nil, &VersionError{Have: l.version, From: d.From, To: d.To, err: ErrReplay}
	}
	if d.From != l.version {
		return nil, &VersionError{Have: l.version, From: d.From, To: d.To, err: ErrGap}
	}
	set, err := l.set.Apply(d.Add, d.Remove)
	if err != nil {
		return nil, fmt.Errorf("%w: delta %d→%d", err, d.From, d.To)
	}
	if uint64(set.Len()) != d.Count {
		return nil, fmt.Errorf("%w: delta %d→%d gives %d entries, the back office has %d", ErrInconsistent, d.From, d.To, set.Len(), d.Count)
	}
	return &List{id: l.id, version: d.To, created: d.Created, set: set, sig: slices.Clone(d.SnapshotSignature)}, nil
}

// CheckSnapshot reports whether snapshot next may replace the list in force
// cur: same list id and a newer version (ErrListID, ErrReplay).
func CheckSnapshot(cur, next *List) error {
	if next.id != cur.id {
		return fmt.Errorf("%w: list is %q, snapshot is for %q", ErrListID, cur.id, next.id)
	}
	if next.version <= cur.version {
		return &VersionError{Have: cur.version, To: next.version, err: ErrReplay}
	}
	return nil
}

func increasing(fps []uint64) bool {
	for i := 1; i < len(fps); i++ {
		if fps[i] <= fps[i-1] {
			return false
		}
	}
	return true
}
