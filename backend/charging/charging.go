// Package charging wires the acquirer link into the back office: it adapts
// the store, the payment vault and the deny-list registry to the
// interfaces acquirer.Charger declares, and runs the loop that sends
// settled charges, checks new cards, resubmits debts on the recovery
// planner's schedule or when a deny-listed card taps again, and takes
// payoffs through the API (docs/backend.md, "Charging").
package charging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
)

// Options configure a Link. The zero value works but for Currency.
type Options struct {
	// Policy is the recovery planner's limits (zero: acquirer.DefaultPolicy).
	Policy acquirer.Policy
	// Currency of account checks (the rules' currency).
	Currency capping.Currency
	// Batch is how many charges one round sends at most (default 256);
	// Workers send in parallel (default 8).
	Batch, Workers int
	// RetapSpacing is the least time between a debt's last answer and a
	// resubmission a tap triggers (0: none): a rider tapping again and
	// again at a refusing gate does not use up the scheme's resubmissions
	// in a minute. A tap inside it triggers the resubmission once it has
	// passed.
	RetapSpacing time.Duration
	// Terminal maps a gate to its terminal id (default acquirer.TerminalID).
	Terminal func(gate string) string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Metrics (nil: kept, not registered).
	Metrics *Metrics
}

// Sender is the acquirer link: *acquirer.Client.
type Sender interface {
	acquirer.Sender
	Reverse(ctx context.Context, orig acquirer.Original) error
}

// Link is the acquirer link in the back office.
type Link struct {
	store   backend.Store
	send    Sender
	charger *acquirer.Charger
	deny    acquirer.DenyList
	o       Options
}

// New returns the Link over the store, the vault (the one place card data
// is opened) and the deny-list registry.
func New(send Sender, store backend.Store, vault acquirer.CardVault, deny acquirer.VersionedDenyList, o Options) *Link {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Batch <= 0 {
		o.Batch = 256
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	l := &Link{store: store, send: send, o: o, deny: acquirer.RegistryDenyList(deny)}
	l.charger = acquirer.NewCharger(send, (*source)(l), (*source)(l), vault, denyList{l.deny},
		acquirer.ChargerOptions{Policy: o.Policy, Terminal: o.Terminal, Workers: o.Workers, Batch: o.Batch, Now: o.Now, Actor: "acquirer"})
	return l
}

// Round is what one round of the loop did.
type Round struct {
	Checked, Retapped, Sent int
}

// RunOnce runs one round: reversals still owed, first-use account checks,
// debts of cards that tapped again, then the charges due (in batches until
// none is left).
func (l *Link) RunOnce(ctx context.Context) (Round, error) {
	var r Round
	var errs []error
	l.reverseHeld(ctx, &errs)
	n, err := l.CheckNewCards(ctx)
	r.Checked = n
	errs = append(errs, err)
	n, err = l.Retaps(ctx)
	r.Retapped = n
	errs = append(errs, err)
	for {
		n, err := l.charger.RunOnce(ctx)
		r.Sent += n
		if err != nil || n < l.o.Batch {
			errs = append(errs, err)
			break
		}
	}
	err = errors.Join(errs...)
	if err != nil {
		l.o.Metrics.roundErrs.Inc()
	}
	return r, err
}

// Run runs a round every interval until ctx ends; errors (never card
// data) go to onErr.
func (l *Link) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := l.RunOnce(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reverseHeld sends the reversals still owed (kept in the store with
// their charge); a charge whose reversal is acknowledged is due again.
func (l *Link) reverseHeld(ctx context.Context, errs *[]error) {
	held, err := l.store.HeldReversals(ctx)
	if err != nil {
		*errs = append(*errs, err)
		return
	}
	left := len(held)
	for _, c := range held {
		var orig acquirer.Original
		if err := json.Unmarshal(c.Reversal, &orig); err != nil {
			*errs = append(*errs, fmt.Errorf("charging: reversal of charge %d: %w", c.ID, err))
			continue
		}
		if err := l.send.Reverse(ctx, orig); err != nil {
			*errs = append(*errs, fmt.Errorf("charging: reversal of charge %d: %w", c.ID, err))
			continue
		}
		if err := l.store.HoldReversal(ctx, c.ID, nil); err != nil {
			*errs = append(*errs, err)
			continue
		}
		left--
	}
	l.o.Metrics.held.Set(float64(left))
}

// CheckNewCards sends the first-use account check (0100, amount 0) of each
// token the vault has not checked yet; a refused card is deny-listed by
// the Charger. A check that gets no answer is tried again next round.
func (l *Link) CheckNewCards(ctx context.Context) (int, error) {
	cards, err := l.store.TokensToCheck(ctx, l.o.Batch)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sc := range cards {
		out, err := l.charger.CheckAccount(ctx, sc.Token, sc.Gate, 0, l.o.Currency)
		if err != nil {
			if errors.Is(err, acquirer.ErrNoResponse) || errors.Is(err, acquirer.ErrUnavailable) || errors.Is(err, acquirer.ErrClosed) || ctx.Err() != nil {
				return n, err
			}
			// No card data, a bad request: record it so the loop moves on.
			if rerr := l.store.RecordCheck(ctx, sc.Token, "", l.o.Now()); rerr != nil {
				return n, rerr
			}
			l.o.Metrics.checks.WithLabelValues("failed").Inc()
			continue
		}
		if err := l.store.RecordCheck(ctx, sc.Token, out.Result.Code, out.At); err != nil {
			return n, err
		}
		l.o.Metrics.checks.WithLabelValues(string(out.Status)).Inc()
		n++
	}
	return n, nil
}

// Retaps makes the debt of a deny-listed card that tapped again due now
// when the recovery planner allows a resubmission at a tap
// (acquirer.Policy.RetryOnTap); the charges due are then sent in the same
// round.
func (l *Link) Retaps(ctx context.Context) (int, error) {
	cs, err := l.store.Retapped(ctx, l.o.Batch)
	if err != nil {
		return 0, err
	}
	now := l.o.Now()
	n := 0
	for _, c := range cs {
		if now.Before(c.OutcomeAt.Add(l.o.RetapSpacing)) {
			continue // looked at again next round
		}
		last := acquirer.Decision{Category: parseCategory(c.Category), Action: parseAction(c.Action), FirstDeclinedAt: c.FirstDeclined, NotBefore: c.NotBefore}
		h := acquirer.History{FirstDeclinedAt: c.FirstDeclined, Resubmissions: c.Resubmissions}
		var at time.Time
		if l.o.Policy.RetryOnTap(last, h, now) {
			at = now
			n++
			l.o.Metrics.retaps.Inc()
		}
		if err := l.store.MarkRetap(ctx, c.ID, now, at); err != nil {
			return n, err
		}
	}
	return n, nil
}

// ErrNoAnswer: the acquirer did not answer; nothing was taken.
var ErrNoAnswer = errors.New("charging: the acquirer did not answer")

// PayDebt resubmits every debt (declined charge) of a token now, at the
// rider's or an operator's request, whatever the schedule; an approval
// takes the token off the deny list in the next version. It returns the
// token's charges that were debts, as they are now.
func (l *Link) PayDebt(ctx context.Context, token rider.Token) ([]backend.Charge, error) {
	cs, err := l.payDebt(ctx, token)
	result := "paid"
	switch {
	case errors.Is(err, ErrNoAnswer):
		result = "no_answer"
	case err != nil:
		result = "error"
	case len(cs) == 0:
		result = "none"
	default:
		for _, c := range cs {
			if c.Status != backend.ChargeApproved {
				result = "owed"
			}
		}
	}
	l.o.Metrics.payoffs.WithLabelValues(result).Inc()
	return cs, err
}

func (l *Link) payDebt(ctx context.Context, token rider.Token) ([]backend.Charge, error) {
	debts, err := l.store.Debts(ctx, token)
	if err != nil {
		return nil, err
	}
	for _, c := range debts {
		if c.Reversal != nil {
			return nil, ErrNoAnswer // its last request may still be taken
		}
		ch, err := l.toCharge(ctx, c)
		if err != nil {
			return nil, err
		}
		done, err := l.charger.Send(ctx, ch)
		if err != nil {
			return nil, err
		}
		if !done {
			return nil, ErrNoAnswer
		}
	}
	out := make([]backend.Charge, 0, len(debts))
	all, err := l.store.RiderCharges(ctx, token)
	if err != nil {
		return nil, err
	}
	was := map[int64]bool{}
	for _, c := range debts {
		was[c.ID] = true
	}
	for _, c := range all {
		if was[c.ID] {
			out = append(out, c)
		}
	}
	return out, nil
}

// Recheck sends a token's account check again (a card refused at its
// first-use check, listed with nothing owed): on approval the token leaves
// the deny list in the next version. It reports whether the card was
// approved.
func (l *Link) Recheck(ctx context.Context, token rider.Token) (bool, error) {
	sc, ok, err := l.store.SealedCard(ctx, token)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, backend.ErrNoCardData
	}
	out, err := l.charger.CheckAccount(ctx, token, sc.Gate, 0, l.o.Currency)
	switch {
	case errors.Is(err, acquirer.ErrNoResponse), errors.Is(err, acquirer.ErrUnavailable), errors.Is(err, acquirer.ErrClosed), errors.Is(err, acquirer.ErrReversalPending):
		return false, ErrNoAnswer
	case err != nil:
		return false, err
	}
	if err := l.store.RecordCheck(ctx, token, out.Result.Code, out.At); err != nil {
		return false, err
	}
	l.o.Metrics.checks.WithLabelValues(string(out.Status)).Inc()
	if out.Status != acquirer.StatusApproved {
		return false, nil
	}
	if err := l.deny.Remove(ctx, token, acquirer.ReasonDebtRecovered, "acquirer"); err != nil {
		return false, fmt.Errorf("charging: deny-list removal: %w", err)
	}
	return true, nil
}

func (l *Link) toCharge(ctx context.Context, c backend.Charge) (acquirer.Charge, error) {
	cur, err := capping.LookupCurrency(c.Currency)
	if err != nil {
		return acquirer.Charge{}, fmt.Errorf("charging: charge %d: %w", c.ID, err)
	}
	ch := acquirer.Charge{ID: strconv.FormatInt(c.ID, 10), Token: c.Token, Amount: c.Amount, Currency: cur,
		History: acquirer.History{FirstDeclinedAt: c.FirstDeclined, Resubmissions: c.Resubmissions}}
	sc, ok, err := l.store.SealedCard(ctx, c.Token)
	if err != nil {
		return acquirer.Charge{}, err
	}
	if ok {
		ch.Gate = sc.Gate
	}
	if l.o.Policy.FirstRideLimit > 0 {
		debts, err := l.store.Debts(ctx, c.Token)
		if err != nil {
			return acquirer.Charge{}, err
		}
		for _, d := range debts {
			if d.ID != c.ID {
				ch.History.DeclinesSinceApproval++
			}
		}
	}
	return ch, nil
}

// source adapts the store to acquirer.ChargeSource and OutcomeRecorder.
type source Link

func (s *source) ChargesToSend(ctx context.Context, limit int) ([]acquirer.Charge, error) {
	l := (*Link)(s)
	cs, err := l.store.ChargesDue(ctx, l.o.Now(), limit)
	if err != nil {
		return nil, err
	}
	out := make([]acquirer.Charge, 0, len(cs))
	for _, c := range cs {
		ch, err := l.toCharge(ctx, c)
		if err != nil {
			return nil, err
		}
		out = append(out, ch)
	}
	return out, nil
}

func (s *source) RecordOutcome(ctx context.Context, o acquirer.Outcome) error {
	l := (*Link)(s)
	id, err := strconv.ParseInt(o.Charge.ID, 10, 64)
	if err != nil {
		return fmt.Errorf("charging: outcome of charge %q: %w", o.Charge.ID, err)
	}
	out := backend.Outcome{Code: o.Result.Code, Reference: o.Result.RRN, At: o.At,
		Category: o.Decision.Category.String(), Action: o.Decision.Action.String(),
		FirstDeclined: o.Decision.FirstDeclinedAt, NotBefore: o.Decision.NotBefore}
	switch o.Status {
	case acquirer.StatusApproved:
		out.Status = backend.ChargeApproved
		if o.Result.AuthCode != "" { // "RRN/authorisation id"
			out.Reference += "/" + o.Result.AuthCode
		}
	case acquirer.StatusDeclined:
		out.Status = backend.ChargeDeclined
		if o.Decision.Action == acquirer.ActionRetryAt {
			out.NextRetry = o.Decision.RetryAt
		}
	case acquirer.StatusFailed:
		out.Status, out.Category, out.Action = backend.ChargeFailed, "", ""
	case acquirer.StatusReversalPending:
		// The charge may have been taken: hold it until the reversal is
		// acknowledged, then it is sent again as it was.
		l.o.Metrics.outcomes.WithLabelValues(string(o.Status)).Inc()
		if o.Reversal == nil {
			return nil
		}
		b, err := json.Marshal(o.Reversal) // no card data: MTI, STAN, times, RRN, terminal, amount
		if err != nil {
			return fmt.Errorf("charging: reversal of charge %d: %w", id, err)
		}
		l.o.Metrics.held.Inc()
		return l.store.HoldReversal(ctx, id, b)
	default:
		return fmt.Errorf("charging: outcome of charge %d: status %q", id, o.Status)
	}
	l.o.Metrics.outcomes.WithLabelValues(string(o.Status)).Inc()
	if err := l.store.RecordOutcome(ctx, id, out); err != nil {
		return err
	}
	if o.Status != acquirer.StatusApproved || o.Charge.History.FirstDeclinedAt.IsZero() {
		return nil
	}
	// A debt was paid: the token leaves the deny list when it was its
	// last one (decided after recording, so of two debts approved at once
	// the later sees none left).
	debts, err := l.store.Debts(ctx, o.Charge.Token)
	if err != nil || len(debts) > 0 {
		return err
	}
	if err := l.deny.Remove(ctx, o.Charge.Token, acquirer.ReasonDebtRecovered, "acquirer"); err != nil {
		return fmt.Errorf("charging: deny-list removal: %w", err)
	}
	return nil
}

// denyList is the registry seen by the Charger: it lists declined tokens;
// removal is RecordOutcome's (a token leaves only with its last debt).
type denyList struct{ acquirer.DenyList }

func (denyList) Remove(context.Context, rider.Token, string, string) error { return nil }

func parseCategory(s string) acquirer.Category {
	for c := acquirer.CategoryApproved; c <= acquirer.CategoryUpdateCard; c++ {
		if c.String() == s {
			return c
		}
	}
	return acquirer.CategoryNeverRetry // unknown: never resubmit on a tap
}

func parseAction(s string) acquirer.Action {
	for a := acquirer.ActionClose; a <= acquirer.ActionWriteOff; a++ {
		if a.String() == s {
			return a
		}
	}
	return acquirer.ActionAwaitRider
}
