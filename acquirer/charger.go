package acquirer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
)

// The Charger's view of the back office: four small interfaces, declared
// here where they are used. The back office adapts its store, vault and
// deny-list registry to them (docs/iso8583.md, "Wiring").

// ChargeSource hands out the settled charges still to send.
type ChargeSource interface {
	ChargesToSend(ctx context.Context, limit int) ([]Charge, error)
}

// OutcomeRecorder records what became of a charge.
type OutcomeRecorder interface {
	RecordOutcome(ctx context.Context, o Outcome) error
}

// CardVault returns a rider's card data from the payment vault, the one
// place a PAN exists.
type CardVault interface {
	CardData(ctx context.Context, token rider.Token) (tap.CardData, error)
}

// DenyList puts a token on the gates' deny list with the amount it owes,
// and takes it off.
type DenyList interface {
	AddLateDecline(ctx context.Context, token rider.Token, owed capping.Amount, currency capping.Currency, declinedAt time.Time, actor string) error
	Remove(ctx context.Context, token rider.Token, reason, actor string) error
}

// Charge is one settled charge to send: the aggregated amount of a token
// and a service day (negative: a refund of a downward adjustment).
type Charge struct {
	ID       string
	Token    rider.Token
	Amount   capping.Amount
	Currency capping.Currency
	// Gate is the gate of the tap whose card data and EMV data the charge
	// carries; its terminal id goes in field 41. Empty: ChargerOptions.Terminal.
	Gate string
	// History of earlier answers to this charge (zero: first attempt).
	History History
}

// Outcome is the result of sending one charge.
type Outcome struct {
	Charge   Charge
	Status   Status
	Result   Result   // the acquirer's answer (StatusApproved, StatusDeclined)
	Decision Decision // the recovery plan (StatusApproved, StatusDeclined)
	// Reversal is set with StatusReversalPending: keep it and call
	// Client.Reverse until it succeeds before sending the charge again.
	Reversal *Original
	Reason   string // why, for StatusFailed and StatusReversalPending; never card data
	At       time.Time
}

// Status is what became of a charge.
type Status string

const (
	StatusApproved        Status = "approved"
	StatusDeclined        Status = "declined"
	StatusFailed          Status = "failed"           // not sent (no card data, invalid request)
	StatusReversalPending Status = "reversal_pending" // may be taken; reversal unacknowledged
)

// Sender sends one request; *Client is one.
type Sender interface {
	Do(ctx context.Context, req Request) (Result, error)
}

var _ Sender = (*Client)(nil)

// ChargerOptions configure a Charger.
type ChargerOptions struct {
	Policy Policy
	// Terminal maps a gate to its field 41 terminal id (default TerminalID);
	// DefaultTerminal is used for a charge without a gate (default
	// "BACKOFFC").
	Terminal        func(gate string) string
	DefaultTerminal string
	// Workers send charges in parallel (default 8); Batch is how many
	// charges one RunOnce takes (default 256).
	Workers, Batch int
	Now            func() time.Time
	// Actor names the Charger in deny-list entries (default "acquirer").
	Actor string
}

// Charger sends settled charges to the acquirer and reports outcomes: an
// approval closes the charge (and takes a recovered token off the deny
// list), a decline puts the token on the deny list with the amount owed
// and the recovery plan of its category. A charge that got no answer
// (every attempt reversed) is left as it was, to be sent again.
type Charger struct {
	o      ChargerOptions
	send   Sender
	source ChargeSource
	record OutcomeRecorder
	vault  CardVault
	deny   DenyList
	mu     sync.Mutex
	termOf map[string]string // terminal id → gate, to refuse collisions
}

// NewCharger returns a Charger over its collaborators.
func NewCharger(send Sender, source ChargeSource, record OutcomeRecorder, vault CardVault, deny DenyList, o ChargerOptions) *Charger {
	if o.Terminal == nil {
		o.Terminal = TerminalID
	}
	if o.DefaultTerminal == "" {
		o.DefaultTerminal = "BACKOFFC"
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Batch <= 0 {
		o.Batch = 256
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Actor == "" {
		o.Actor = "acquirer"
	}
	return &Charger{o: o, send: send, source: source, record: record, vault: vault, deny: deny, termOf: map[string]string{}}
}

// ReasonDebtRecovered is the reason the Charger gives when an approved
// resubmission takes a token off the deny list (the back office's
// registry uses the same word).
const ReasonDebtRecovered = "debt_recovered"

// ErrTerminalCollision: two gates map to the same terminal id.
var ErrTerminalCollision = errors.New("acquirer: two gates share a terminal id")

func (c *Charger) terminal(gate string) (string, error) {
	if gate == "" {
		return c.o.DefaultTerminal, nil
	}
	id := c.o.Terminal(gate)
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.termOf[id]; ok && g != gate {
		return "", fmt.Errorf("%w: %s", ErrTerminalCollision, id)
	}
	c.termOf[id] = gate
	return id, nil
}

// RunOnce sends one batch of charges and returns how many got an outcome.
func (c *Charger) RunOnce(ctx context.Context) (int, error) {
	charges, err := c.source.ChargesToSend(ctx, c.o.Batch)
	if err != nil {
		return 0, fmt.Errorf("acquirer: charges to send: %w", err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		errs []error
	)
	next := make(chan Charge)
	for range min(c.o.Workers, len(charges)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range next {
				ok, err := c.Send(ctx, ch)
				mu.Lock()
				if ok {
					done++
				}
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, ch := range charges {
		next <- ch
	}
	close(next)
	wg.Wait()
	return done, errors.Join(errs...)
}

// Send sends one charge and records its outcome. It returns false with no
// error when the charge got no answer and stays to be sent again.
func (c *Charger) Send(ctx context.Context, ch Charge) (bool, error) {
	out := Outcome{Charge: ch}
	term, err := c.terminal(ch.Gate)
	if err != nil {
		return c.fail(ctx, out, err.Error())
	}
	card, err := c.vault.CardData(ctx, ch.Token)
	if err != nil {
		return c.fail(ctx, out, "no card data in the vault")
	}
	req := Request{Kind: KindCharge, Reference: ch.ID, Terminal: term, Amount: ch.Amount, Currency: ch.Currency, Card: card}
	if ch.Amount < 0 {
		req.Kind, req.Amount = KindRefund, -ch.Amount
	}
	res, err := c.send.Do(ctx, req)
	card = tap.CardData{}
	var rp *ReversalPendingError
	switch {
	case errors.As(err, &rp):
		out.Status, out.Reversal, out.Reason, out.At = StatusReversalPending, &rp.Original, "reversal not acknowledged", c.o.Now()
		return true, c.record.RecordOutcome(ctx, out)
	case errors.Is(err, ErrNoResponse), errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed):
		return false, nil // nothing held: stays pending
	case err != nil:
		return c.fail(ctx, out, err.Error())
	}
	now := c.o.Now()
	out.Result, out.At = res, now
	out.Decision = c.o.Policy.Plan(res.Code, res.MAC, req.Amount, ch.History, now)
	switch {
	case out.Decision.Action == ActionRetryNow:
		return false, nil // 91/96 on every attempt: try again later
	case res.Approved():
		out.Status = StatusApproved
		if !ch.History.FirstDeclinedAt.IsZero() {
			if err := c.deny.Remove(ctx, ch.Token, ReasonDebtRecovered, c.o.Actor); err != nil {
				return true, fmt.Errorf("acquirer: deny-list removal: %w", err)
			}
		}
	default:
		out.Status = StatusDeclined
		if req.Kind == KindRefund {
			out.Decision.DenyList = false // a refused refund is no debt
		}
		if out.Decision.DenyList {
			if err := c.deny.AddLateDecline(ctx, ch.Token, req.Amount, ch.Currency, now, c.o.Actor); err != nil {
				return true, fmt.Errorf("acquirer: deny-listing: %w", err)
			}
		}
	}
	return true, c.record.RecordOutcome(ctx, out)
}

func (c *Charger) fail(ctx context.Context, out Outcome, reason string) (bool, error) {
	out.Status, out.Reason, out.At = StatusFailed, reason, c.o.Now()
	return true, c.record.RecordOutcome(ctx, out)
}

// CheckAccount sends the first-use account check of a new token (0100,
// amount 0) and deny-lists the token when the issuer refuses the card. A
// refused check that is the token's first decline with an owed amount at
// most the policy's first-ride limit is booked as first-ride risk
// (Decision.Action == ActionWriteOff): the ride is not chased, the card
// is still refused from now on.
func (c *Charger) CheckAccount(ctx context.Context, token rider.Token, gate string, owed capping.Amount, cur capping.Currency) (Outcome, error) {
	ch := Charge{ID: "chk" + token.String()[:9], Token: token, Currency: cur, Gate: gate}
	out := Outcome{Charge: ch}
	term, err := c.terminal(gate)
	if err != nil {
		return out, err
	}
	card, err := c.vault.CardData(ctx, token)
	if err != nil {
		return out, fmt.Errorf("acquirer: account check: no card data in the vault")
	}
	res, err := c.send.Do(ctx, Request{Kind: KindAccountCheck, Reference: ch.ID, Terminal: term, Currency: cur, Card: card})
	if err != nil {
		return out, err
	}
	now := c.o.Now()
	out.Result, out.At = res, now
	out.Decision = c.o.Policy.Plan(res.Code, res.MAC, owed, History{}, now)
	out.Status = StatusApproved
	if !res.Approved() {
		out.Status = StatusDeclined
	}
	if out.Decision.DenyList {
		if err := c.deny.AddLateDecline(ctx, token, owed, cur, now, c.o.Actor); err != nil {
			return out, fmt.Errorf("acquirer: deny-listing: %w", err)
		}
	}
	return out, nil
}

// VersionedDenyList is the back office's deny-list registry as it is: each
// change returns the list version it made, and money is minor units and a
// currency code.
type VersionedDenyList interface {
	AddLateDecline(ctx context.Context, token rider.Token, owed capping.Amount, currency capping.Currency, declinedAt time.Time, actor string) (uint64, error)
	Remove(ctx context.Context, token rider.Token, reason, actor string) (uint64, error)
}

// RegistryDenyList adapts the back office's registry to DenyList.
func RegistryDenyList(r VersionedDenyList) DenyList { return registryDenyList{r} }

type registryDenyList struct{ r VersionedDenyList }

func (s registryDenyList) AddLateDecline(ctx context.Context, t rider.Token, owed capping.Amount, cur capping.Currency, at time.Time, actor string) error {
	_, err := s.r.AddLateDecline(ctx, t, owed, cur, at, actor)
	return err
}

func (s registryDenyList) Remove(ctx context.Context, t rider.Token, reason, actor string) error {
	_, err := s.r.Remove(ctx, t, reason, actor)
	return err
}

// Run sends charges until ctx ends: a batch every interval, at once again
// while batches come back full. Errors go to onErr (nil: dropped); they
// never hold card data.
func (c *Charger) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := c.RunOnce(ctx)
		if err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
		if n >= c.o.Batch && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
