package validator

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
)

// Reasons the station adds to the gate's.
const (
	// ReasonAlreadyTapped: the same token opened a gate of the same
	// pass-back group less than the pass-back time ago.
	ReasonAlreadyTapped Reason = "already_tapped"
	// ReasonOutOfService: the tap could not be journaled (disk full or
	// failing), so the gate may not open.
	ReasonOutOfService Reason = "out_of_service"
)

// Message is the short text the rider sees for a decision.
func Message(v Verdict, r Reason, role tap.Role) string {
	switch v {
	case Open:
		if role == tap.RoleExit {
			return "Goodbye"
		}
		return "Go ahead"
	case Retry:
		return "Tap again"
	}
	switch r {
	case ReasonDenied, Reason(emv.ReasonCardDeclined):
		return "Card declined – see staff"
	case ReasonAlreadyTapped:
		return "Already tapped"
	case ReasonCardExpired:
		return "Card expired – use another card"
	case Reason(emv.ReasonNotPaymentCard), Reason(emv.ReasonNoApplication):
		return "Card not accepted"
	case ReasonOutOfService, ReasonDenyListStale, Reason(emv.ReasonTerminalFailure):
		return "Gate closed – use another gate"
	case Reason(emv.ReasonCardRemoved), Reason(emv.ReasonCommunication):
		return "Tap again"
	}
	return "Card not accepted – see staff"
}

// StationOptions configure a Station. Gate, Journal, Vault and GateID are
// required; any other zero field means its default.
type StationOptions struct {
	GateID   string
	Location tap.Location
	// Zone is the gate's time zone, for the local time of a record (nil:
	// time.Local).
	Zone *time.Location
	// Passback refuses a token that opened a gate of the same group less
	// than this long ago (0: off).
	Passback time.Duration
	Gate     *Gate
	Journal  *Journal
	Vault    *ecdh.PublicKey // the back office's vault key: card data is sealed to it
	// DenylistVersion reports the deny-list version in force (nil: 0).
	DenylistVersion func() uint64
	// QR, when set, decides scanned QR codes (TapQR); give it the gate's
	// deny list. Gate may then be nil: a QR-only gate.
	QR *qr.Gate
	// QRStale, when set and true, refuses every QR code denylist_stale
	// (StaleReject while the deny list is stale).
	QRStale func() bool
	Metrics *Metrics
	Now     func() time.Time          // nil: time.Now
	NewID   func() (uuid.UUID, error) // nil: uuid.NewV7
}

// Station is a gate that keeps its taps: it decides a tap with its Gate,
// adds pass-back control, seals the card data of an opened tap to the
// vault, and commits the record to the journal before it answers. An
// Outcome that says open is on disk.
type Station struct {
	o        StationOptions
	passback *passback
}

// NewStation returns a station; it reloads the pass-back window from the
// journal so a restart does not forget recent taps.
func NewStation(ctx context.Context, o StationOptions) (*Station, error) {
	if (o.Gate == nil && o.QR == nil) || o.Journal == nil || o.Vault == nil || o.GateID == "" {
		return nil, errors.New("validator: a station needs a gate or a QR gate, a journal, a vault key and a gate id")
	}
	if len(o.GateID) > tap.MaxField {
		return nil, fmt.Errorf("validator: gate id over %d bytes", tap.MaxField)
	}
	if o.Zone == nil {
		o.Zone = time.Local
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = uuid.NewV7
	}
	if o.DenylistVersion == nil {
		o.DenylistVersion = func() uint64 { return 0 }
	}
	s := &Station{o: o}
	if o.Passback > 0 {
		s.passback = &passback{window: o.Passback, last: map[rider.Token]time.Time{}}
		err := o.Journal.RecentOpens(ctx, o.Location.Group, o.Now().Add(-o.Passback), func(t rider.Token, at time.Time) {
			s.passback.remember(t, at)
		})
		if err != nil {
			return nil, err
		}
	}
	if o.QR != nil {
		if err := s.restoreQR(ctx); err != nil {
			return nil, err
		}
	}
	o.Metrics.observeJournal(o.Journal, o.Now)
	return s, nil
}

// Outcome is one tap at the station.
type Outcome struct {
	// Record is the journaled tap; nil when nothing was journaled (a torn
	// tap to retry, or a journal failure).
	Record  *tap.Record
	Time    time.Time
	Verdict Verdict
	Reason  Reason
	Message string
	Token   rider.Token
	Scheme  string
	// Err is the journal's error when the tap could not be recorded.
	Err error
}

// cardRead is what the station keeps from the kernel's tap.
type cardRead struct {
	data   tap.CardData
	masked string
	scheme string
	oda    tap.ODA
	kernel time.Duration
}

// Tap reads the card, decides and journals.
func (s *Station) Tap(ctx context.Context, card emv.Transceiver) Outcome {
	if s.o.Gate == nil {
		// A QR-only station: nothing reads cards.
		now := s.o.Now()
		return Outcome{Time: now.UTC(), Verdict: Reject, Reason: ReasonOutOfService, Err: errNoKernel,
			Message: Message(Reject, ReasonOutOfService, s.o.Location.Role)}
	}
	// Latencies are measured on the monotonic clock; record times come
	// from the injected one.
	start := time.Now()
	var cr cardRead
	res := s.o.Gate.Tap(ctx, card, func(t *emv.Tap) { cr = readCard(t) })
	defer clear(cr.data.Track2)
	d := res.Decision
	now := s.o.Now()
	decided := time.Now()
	out := Outcome{Time: now.UTC(), Verdict: d.Verdict, Reason: d.Reason, Token: res.Token, Scheme: cr.scheme}
	if d.Verdict == Retry {
		out.Message = Message(Retry, d.Reason, s.o.Location.Role)
		s.o.Metrics.tapDecided(string(Retry), string(d.Reason), cr.scheme, decided.Sub(start), -1)
		return out
	}
	if d.Verdict == Open && s.passback != nil && s.passback.seen(res.Token, now) {
		out.Verdict, out.Reason = Reject, ReasonAlreadyTapped
	}
	r, err := s.record(now, decided.Sub(start), &out, &cr)
	sealed, committed, err := s.commit(ctx, r, err)
	if err != nil {
		// A tap that is not on disk never opens the gate.
		s.o.Metrics.journalFailed()
		out.Verdict, out.Reason, out.Err = Reject, ReasonOutOfService, err
		out.Message = Message(Reject, ReasonOutOfService, s.o.Location.Role)
		s.o.Metrics.tapDecided(string(Reject), string(ReasonOutOfService), cr.scheme, sealed.Sub(start), -1)
		return out
	}
	out.Record = r
	out.Message = Message(out.Verdict, out.Reason, s.o.Location.Role)
	if out.Verdict == Open && s.passback != nil {
		s.passback.remember(res.Token, now)
	}
	s.o.Metrics.tapDecided(string(out.Verdict), string(out.Reason), cr.scheme, sealed.Sub(start), committed.Sub(sealed))
	return out
}

// record builds the journal record of a decided tap, sealing the card data
// of an opened one.
func (s *Station) record(now time.Time, decide time.Duration, out *Outcome, cr *cardRead) (*tap.Record, error) {
	id, err := s.o.NewID()
	if err != nil {
		return nil, fmt.Errorf("validator: tap id: %w", err)
	}
	r := &tap.Record{
		ID:              id,
		Gate:            s.o.GateID,
		Time:            now.UTC(),
		LocalTime:       now.In(s.o.Zone).Format(time.RFC3339Nano),
		Location:        s.o.Location,
		Kind:            tap.KindEMV,
		Token:           out.Token,
		MaskedPAN:       cr.masked,
		Scheme:          cr.scheme,
		ODA:             cr.oda,
		Decision:        tap.Decision(out.Verdict),
		Reason:          string(out.Reason),
		KernelMicros:    cr.kernel.Microseconds(),
		DecideMicros:    decide.Microseconds(),
		DenylistVersion: s.o.DenylistVersion(),
	}
	if out.Verdict == Open {
		if r.Sealed, err = tap.SealCardData(s.o.Vault, s.o.GateID, id, cr.data); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// commit journals r, unless building it failed (err), and says when the
// record was ready and when it was on disk: the decision's and the
// commit's latencies.
func (s *Station) commit(ctx context.Context, r *tap.Record, err error) (sealed, committed time.Time, _ error) {
	sealed = time.Now()
	if err == nil {
		err = s.o.Journal.Append(ctx, r)
	}
	return sealed, time.Now(), err
}

// readCard copies from the kernel's tap what the record and the sealed
// card data need.
func readCard(t *emv.Tap) cardRead {
	cr := cardRead{scheme: string(t.Application.Scheme), kernel: t.Duration}
	cr.oda = tap.ODA{Method: string(t.ODA.Method), OK: t.ODA.Performed && t.ODA.OK, Stage: string(t.ODA.Stage()), Reason: string(t.ODA.Reason())}
	if cr.oda.Method == "" {
		cr.oda.Method = string(tapdata.MethodNone)
	}
	if t.Card.PAN == "" {
		return cr
	}
	cr.masked = t.Card.PAN.Masked()
	cr.data = tap.CardData{
		PAN:    t.Card.PAN.Digits(),
		PSN:    t.Card.PSN,
		Expiry: t.Card.Expiry,
		Track2: append([]byte(nil), t.Data["57"]...),
		EMV:    t.Field55(),
		AID:    append([]byte(nil), t.AID...),
		Scheme: cr.scheme,
	}
	return cr
}

// passback remembers when each token last opened a gate of the group.
type passback struct {
	window time.Duration
	mu     sync.Mutex
	last   map[rider.Token]time.Time
	sweep  time.Time
}

func (p *passback) seen(t rider.Token, now time.Time) bool {
	if t.IsZero() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.last[t]
	return ok && now.Sub(at) < p.window && !now.Before(at)
}

func (p *passback) remember(t rider.Token, at time.Time) {
	if t.IsZero() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.last[t]; !ok || at.After(prev) {
		p.last[t] = at
	}
	// Forget expired entries now and then, so memory follows the riders
	// of the last window only.
	if at.Sub(p.sweep) > p.window {
		for k, v := range p.last {
			if at.Sub(v) >= p.window {
				delete(p.last, k)
			}
		}
		p.sweep = at
	}
}
