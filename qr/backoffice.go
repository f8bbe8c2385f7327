package qr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/faregate/faregate/rider"
)

// Issued is the back office's record of one device key it certified.
type Issued struct {
	Token     rider.Token
	Device    DeviceKey
	IssuedAt  time.Time
	RevokedAt time.Time // zero: not revoked
}

// Store is what the back-office verifier needs from storage. The real
// store (SQLite/PostgreSQL) lives with the back office; MemStore is the
// in-memory one.
type Store interface {
	// Issued returns the record of a device key; ok is false when the back
	// office never issued it.
	Issued(ctx context.Context, device DeviceKey) (rec Issued, ok bool, err error)
	// UseCounter atomically records that tap (an id unique to one tap at
	// one gate, stable across re-uploads) used counter of device, and
	// returns the tap that used it first: tap itself when it is the first
	// (or the same tap uploaded again).
	UseCounter(ctx context.Context, device DeviceKey, counter uint32, tap string) (first string, err error)
}

// BackOfficeOptions configure a BackOffice. Issuers and Store are
// required.
type BackOfficeOptions struct {
	// Issuers: every key whose credentials may still arrive in uploads
	// (the current key and the retired ones until their credentials and
	// late uploads are over).
	Issuers *Issuers
	Store   Store
	// Window: the code's time must be within ±Window of the gate's clock
	// at the tap (0: DefaultWindow). Use the gates' window.
	Window time.Duration
}

// BackOffice verifies uploaded QR taps for real: everything the gate
// checked (again: the gate is not trusted), then that the device key was
// issued to that token and not revoked at tap time, and that no other tap
// at any gate used the counter. Safe for concurrent use if the Store is.
type BackOffice struct {
	issuers *Issuers
	store   Store
	window  time.Duration
}

// NewBackOffice returns a back-office verifier.
func NewBackOffice(o BackOfficeOptions) (*BackOffice, error) {
	if o.Issuers.Len() == 0 || o.Store == nil {
		return nil, errors.New("qr: back office needs issuer keys and a store")
	}
	if o.Window < 0 {
		return nil, errors.New("qr: negative window")
	}
	b := &BackOffice{issuers: o.Issuers, store: o.Store, window: o.Window}
	if b.window == 0 {
		b.window = DefaultWindow
	}
	return b, nil
}

// Upload is one QR tap as a gate uploaded it.
type Upload struct {
	TapID     string    // unique per tap, stable across re-uploads (e.g. gate id and journal sequence)
	Payload   []byte    // the binary payload the gate read
	At        time.Time // the gate's clock at the tap
	Challenge []byte    // the challenge the gate showed, if any
}

// Verify checks an uploaded tap. A nil error means the tap is real and
// can be settled; a refusal is an *Error (the tap is not charged and the
// outcome recorded); any other error is the store's, and the upload should
// be retried.
func (b *BackOffice) Verify(ctx context.Context, u Upload) (*Code, error) {
	c, err := ParseBinary(u.Payload)
	if err != nil {
		return nil, err
	}
	if u.TapID == "" {
		return c, errors.New("qr: upload without a tap id")
	}
	if err := checkIssuer(b.issuers, c); err != nil {
		return c, err
	}
	if err := c.VerifySignature(); err != nil {
		return c, err
	}
	if err := checkValidity(c, u.At); err != nil {
		return c, err
	}
	if err := checkWindow(c, u.At, b.window); err != nil {
		return c, err
	}
	if u.Challenge != nil && !bytes.Equal(u.Challenge, c.Challenge) {
		return c, refuse(ReasonChallenge, "")
	}
	rec, ok, err := b.store.Issued(ctx, c.Credential.Device)
	if err != nil {
		return c, fmt.Errorf("qr: issued device keys: %w", err)
	}
	if !ok || rec.Token != c.Credential.Token {
		return c, refuse(ReasonNotIssued, "")
	}
	if !rec.RevokedAt.IsZero() && !u.At.Before(rec.RevokedAt) {
		return c, refuse(ReasonRevoked, "device key revoked %s", rec.RevokedAt.UTC().Format(time.RFC3339))
	}
	first, err := b.store.UseCounter(ctx, c.Credential.Device, c.Counter, u.TapID)
	if err != nil {
		return c, fmt.Errorf("qr: counters: %w", err)
	}
	if first != u.TapID {
		return c, refuse(ReasonReplay, "counter %d was used by tap %s", c.Counter, first)
	}
	return c, nil
}

// MemStore is an in-memory Store, for tests and the demo.
type MemStore struct {
	mu       sync.Mutex
	issued   map[DeviceKey]Issued
	counters map[counterKey]string
}

type counterKey struct {
	device  DeviceKey
	counter uint32
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{issued: make(map[DeviceKey]Issued), counters: make(map[counterKey]string)}
}

// Issue records that the back office issued rec.Device to rec.Token.
func (m *MemStore) Issue(rec Issued) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.issued[rec.Device] = rec
}

// Revoke marks a device key revoked from at on; it reports whether the key
// was known.
func (m *MemStore) Revoke(device DeviceKey, at time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.issued[device]
	if ok && (rec.RevokedAt.IsZero() || at.Before(rec.RevokedAt)) {
		rec.RevokedAt = at
		m.issued[device] = rec
	}
	return ok
}

// Issued implements Store.
func (m *MemStore) Issued(_ context.Context, device DeviceKey) (Issued, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.issued[device]
	return rec, ok, nil
}

// UseCounter implements Store.
func (m *MemStore) UseCounter(_ context.Context, device DeviceKey, counter uint32, tap string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := counterKey{device, counter}
	if first, ok := m.counters[k]; ok {
		return first, nil
	}
	m.counters[k] = tap
	return tap, nil
}
