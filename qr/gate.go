package qr

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/faregate/faregate/rider"
)

// DefaultWindow is how far a code's time may be from the verifier's clock,
// either way: a code shown for up to 30 s before the tap, plus up to 30 s
// of disagreement between the phone's clock and the gate's (docs/qr.md).
const DefaultWindow = 60 * time.Second

// DefaultMaxDevices bounds the gate's replay memory (about 60 bytes a
// device: 4 MB).
const DefaultMaxDevices = 65536

// credCacheSize bounds the cache of credentials that verified, each with
// its device key expanded for fast verification (about 1.7 KiB an entry,
// 7 MB full). A rider shows the same credential for days, so nearly every
// code after the first at a gate costs one fast signature check, not two.
const credCacheSize = 4096

// DenyList answers whether a rider token is deny-listed. A
// *denylist.Replica is one.
type DenyList interface {
	Contains(rider.Token) bool
}

// Seen is one entry of a gate's replay memory: the highest counter the
// gate accepted from a device key, and the latest code time among the
// codes it accepted from it. The entry can be forgotten once Time is
// further in the past than the window, because every code it guards
// against is then refused as clock_skew anyway.
type Seen struct {
	Device  DeviceKey
	Counter uint32
	Time    time.Time
}

// Seen returns the replay-memory entry an accepted code makes. A daemon
// that journals every accepted tap's payload anyway (tap.Record.QR) needs
// no ReplayJournal: on restart it parses the payloads of the last 2×window
// and passes their Seen to Gate.Restore.
func (c *Code) Seen() Seen {
	return Seen{Device: c.Credential.Device, Counter: c.Counter, Time: c.Time}
}

// ReplayJournal persists a gate's replay memory so a restarted gate does
// not accept a code again. Record is called for every accepted code before
// Verify returns, with the gate's lock held; when it fails the code is
// refused (Verify returns the error, not a *Error): a gate must not open
// for a code it could forget. On start the daemon passes what it recorded
// in the last 2×window to Gate.Restore.
type ReplayJournal interface {
	Record(Seen) error
}

// GateOptions configure a Gate. Issuers is required; the zero value of
// every other field works.
type GateOptions struct {
	Issuers *Issuers
	// Window: a code's time must be within ±Window of the gate's clock
	// (0: DefaultWindow).
	Window time.Duration
	// DenyList: refuse deny-listed tokens as revoked (nil: no list).
	DenyList DenyList
	// Journal: persist the replay memory (nil: memory only).
	Journal ReplayJournal
	// MaxDevices bounds the replay memory (0: DefaultMaxDevices). When it
	// is full of live entries the entry that expires first is dropped and
	// counted in Stats.Evicted; the back office still catches a replay
	// the gate forgot.
	MaxDevices int
	// Now is the gate's clock (nil: time.Now).
	Now func() time.Time
}

// Gate verifies codes offline at one gate: issuer key and signature,
// device signature, validity, time window, deny list and counter replay at
// this gate. Safe for concurrent use.
type Gate struct {
	window  time.Duration
	deny    DenyList
	journal ReplayJournal
	max     int
	now     func() time.Time

	mu      sync.Mutex
	issuers *Issuers
	creds   map[[CredentialSize]byte]*pubKey // credential → its device key, expanded
	seen    map[DeviceKey]*seenEntry
	stats   GateStats
}

type seenEntry struct {
	counter uint32
	time    int64 // Unix seconds
}

// GateStats counts what a gate did, for its metrics.
type GateStats struct {
	Accepted uint64
	Refused  map[Reason]uint64 // by reason; "journal" when the ReplayJournal failed
	Devices  int               // entries in the replay memory
	Evicted  uint64            // live entries dropped because the memory was full
}

// NewGate returns a gate verifier.
func NewGate(o GateOptions) (*Gate, error) {
	if o.Issuers.Len() == 0 {
		return nil, errors.New("qr: gate needs at least one issuer key")
	}
	if o.Window < 0 || o.MaxDevices < 0 {
		return nil, errors.New("qr: negative window or memory bound")
	}
	g := &Gate{
		window: o.Window, deny: o.DenyList, journal: o.Journal, max: o.MaxDevices, now: o.Now,
		issuers: o.Issuers,
		creds:   make(map[[CredentialSize]byte]*pubKey),
		seen:    make(map[DeviceKey]*seenEntry),
		stats:   GateStats{Refused: make(map[Reason]uint64)},
	}
	if g.window == 0 {
		g.window = DefaultWindow
	}
	if g.max == 0 {
		g.max = DefaultMaxDevices
	}
	if g.now == nil {
		g.now = time.Now
	}
	return g, nil
}

// Window returns the gate's time window.
func (g *Gate) Window() time.Duration { return g.window }

// SetIssuers replaces the trusted issuer keys (a rotation); the replay
// memory is kept.
func (g *Gate) SetIssuers(s *Issuers) error {
	if s.Len() == 0 {
		return errors.New("qr: gate needs at least one issuer key")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.issuers = s
	clear(g.creds)
	return nil
}

// VerifyText verifies the text a scanner read (see Parse).
func (g *Gate) VerifyText(text string) (*Code, error) {
	c, err := Parse(text)
	if err != nil {
		g.count(err)
		return nil, err
	}
	return c, g.verify(c, nil)
}

// Verify verifies a binary payload with no gate challenge. On success the
// code's counter is remembered (and journaled) and the gate may open
// provisionally. On refusal the error is an *Error (or the journal's
// error) and the code is returned when it parsed, for the journal: its
// token is authenticated only when the reason comes after the signature
// checks (not_yet_valid, expired, clock_skew, challenge_mismatch, revoked,
// replay).
func (g *Gate) Verify(payload []byte) (*Code, error) {
	return g.VerifyChallenge(payload, nil)
}

// VerifyChallenge is Verify for a gate that showed the rider a challenge:
// the code must carry exactly challenge (nil: any code is fine).
func (g *Gate) VerifyChallenge(payload, challenge []byte) (*Code, error) {
	c, err := ParseBinary(payload)
	if err != nil {
		g.count(err)
		return nil, err
	}
	return c, g.verify(c, challenge)
}

func (g *Gate) verify(c *Code, challenge []byte) error {
	err := g.check(c, challenge)
	g.count(err)
	return err
}

func (g *Gate) count(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch r := ReasonOf(err); {
	case err == nil:
		g.stats.Accepted++
	case r == "":
		g.stats.Refused["journal"]++
	default:
		g.stats.Refused[r]++
	}
}

func (g *Gate) check(c *Code, challenge []byte) error {
	if err := g.authenticate(c); err != nil {
		return err
	}
	now := g.now()
	if err := checkValidity(c, now); err != nil {
		return err
	}
	if err := checkWindow(c, now, g.window); err != nil {
		return err
	}
	if challenge != nil && !bytes.Equal(challenge, c.Challenge) {
		return refuse(ReasonChallenge, "")
	}
	if g.deny != nil && g.deny.Contains(c.Credential.Token) {
		return refuse(ReasonRevoked, "token is deny-listed")
	}
	return g.remember(c, now)
}

// authenticate checks the issuer key id and signature, then the device
// signature. A credential whose codes verified before is in the cache with
// its device key expanded: its issuer signature is not checked again and
// its device signature costs one fast verification.
func (g *Gate) authenticate(c *Code) error {
	var key [CredentialSize]byte
	copy(key[:], c.raw)
	g.mu.Lock()
	issuers := g.issuers
	dev, cached := g.creds[key]
	g.mu.Unlock()
	if !cached {
		if err := checkIssuer(issuers, c); err != nil {
			return err
		}
		dev = expand(c.Credential.Device[:])
	}
	if err := c.verifyDevice(dev); err != nil {
		return err
	}
	if !cached {
		g.mu.Lock()
		if len(g.creds) >= credCacheSize {
			clear(g.creds) // simple and bounded: the next codes re-verify once
		}
		if g.issuers == issuers {
			g.creds[key] = dev
		}
		g.mu.Unlock()
	}
	return nil
}

// remember refuses a counter not above the highest this gate accepted
// from the device, and records it otherwise. A device's counter only goes
// up, so "not above the highest" is stricter than "seen before" and needs
// one entry per device.
func (g *Gate) remember(c *Code, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	dev := c.Credential.Device
	e, ok := g.seen[dev]
	if ok && g.expired(e, now) {
		delete(g.seen, dev)
		ok = false
	}
	if ok && c.Counter <= e.counter {
		return refuse(ReasonReplay, "counter %d, this gate accepted %d from this device", c.Counter, e.counter)
	}
	s := Seen{Device: dev, Counter: c.Counter, Time: c.Time}
	if ok && e.time > c.Time.Unix() {
		s.Time = time.Unix(e.time, 0).UTC()
	}
	if g.journal != nil {
		if err := g.journal.Record(s); err != nil {
			return fmt.Errorf("qr: replay journal: %w", err)
		}
	}
	g.put(s, now)
	return nil
}

func (g *Gate) expired(e *seenEntry, now time.Time) bool {
	return now.Unix()-e.time > int64(g.window/time.Second)
}

func (g *Gate) put(s Seen, now time.Time) {
	if e, ok := g.seen[s.Device]; ok {
		e.counter, e.time = s.Counter, s.Time.Unix()
		return
	}
	if len(g.seen) >= g.max {
		g.prune(now)
	}
	if len(g.seen) >= g.max {
		var oldest DeviceKey
		first := true
		var t int64
		for k, e := range g.seen {
			if first || e.time < t {
				oldest, t, first = k, e.time, false
			}
		}
		delete(g.seen, oldest)
		g.stats.Evicted++
	}
	g.seen[s.Device] = &seenEntry{counter: s.Counter, time: s.Time.Unix()}
}

func (g *Gate) prune(now time.Time) {
	for k, e := range g.seen {
		if g.expired(e, now) {
			delete(g.seen, k)
		}
	}
}

// Restore loads a replay memory the daemon journaled (or saved with
// Snapshot) before a restart. Entries past the window are dropped; for a
// device listed twice the higher counter wins.
func (g *Gate) Restore(seen []Seen) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for _, s := range seen {
		e := &seenEntry{counter: s.Counter, time: s.Time.Unix()}
		if g.expired(e, now) {
			continue
		}
		if old, ok := g.seen[s.Device]; ok {
			if s.Counter > old.counter {
				old.counter = s.Counter
			}
			old.time = max(old.time, e.time)
			continue
		}
		g.put(s, now)
	}
}

// Snapshot returns the live replay memory, for a daemon that compacts its
// journal.
func (g *Gate) Snapshot() []Seen {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	out := make([]Seen, 0, len(g.seen))
	for k, e := range g.seen {
		if !g.expired(e, now) {
			out = append(out, Seen{Device: k, Counter: e.counter, Time: time.Unix(e.time, 0).UTC()})
		}
	}
	return out
}

// Stats returns a copy of the gate's counters.
func (g *Gate) Stats() GateStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats
	s.Refused = make(map[Reason]uint64, len(g.stats.Refused))
	for k, v := range g.stats.Refused {
		s.Refused[k] = v
	}
	s.Devices = len(g.seen)
	return s
}
