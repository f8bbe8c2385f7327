package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/tap"
)

// Settlement errors.
var (
	// ErrDayNotOver: a service day is settled only after it ends.
	ErrDayNotOver = errors.New("backend: the service day has not ended")
	// ErrRunOrder: days are settled in order, each after the previous one
	// completed (the first run may start anywhere).
	ErrRunOrder = errors.New("backend: settle the previous service day first")
)

// Settler settles service days: for every token with a leg in the run it
// rates the token's legs up to the day's end with the capping engine and
// records one charge = what the engine now says minus what earlier runs
// charged. Re-running a day changes nothing; a run killed anywhere and run
// again ends with the same charges (each charge is written once per token
// and day, in the same transaction that marks the token settled).
type Settler struct {
	Store Store
	Rules *capping.Rules
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Progress, when set, is called with the riders settled so far.
	Progress func(riders int)
	// Metrics, when set, counts runs.
	Metrics *Metrics
	// FlushEvery is the number of charges written per transaction (0: 5 000).
	FlushEvery int
}

// Summary is what a run (or one shard of it) did.
type Summary struct {
	Day         string `json:"day"`
	Riders      int    `json:"riders"`
	Taps        int    `json:"taps"`    // legs of the day
	Charged     string `json:"charged"` // sum of the charges, in the rules' currency
	Adjustments int    `json:"adjustments"`
	Refunds     int    `json:"refunds"`

	ChargedMinor capping.Amount `json:"-"`
}

func (s *Settler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// DayBounds returns the instants a service day starts and ends under the
// rules (found from Rules.ServiceDay, so DST and the day-start rules are
// the engine's own).
func DayBounds(r *capping.Rules, d capping.Date) (start, end time.Time) {
	return dayStart(r, d), dayStart(r, d+1)
}

// dayStart is the first second whose service day is d or later.
func dayStart(r *capping.Rules, d capping.Date) time.Time {
	y, m, dd := d.Civil()
	lo := time.Date(y, m, dd, 0, 0, 0, 0, time.UTC).Add(-48 * time.Hour).Unix()
	hi := lo + 5*24*3600
	for lo < hi {
		mid := lo + (hi-lo)/2
		if r.ServiceDay(time.Unix(mid, 0)) >= d {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return time.Unix(lo, 0).UTC()
}

// Settle runs the settlement of day for one shard (Shard{0, 1}: all
// tokens).
func (s *Settler) Settle(ctx context.Context, day capping.Date, shard Shard) (Summary, error) {
	if shard.N < 1 || shard.I < 0 || shard.I >= shard.N {
		return Summary{}, fmt.Errorf("backend: shard %d/%d", shard.I, shard.N)
	}
	started := s.now()
	start, end := DayBounds(s.Rules, day)
	if started.Before(end) {
		return Summary{}, fmt.Errorf("%w: %s ends at %s", ErrDayNotOver, day, end.Format(time.RFC3339))
	}
	runs, err := s.Store.Runs(ctx)
	if err != nil {
		return Summary{}, err
	}
	q := RunQuery{Day: day, DayEnd: end, Shard: shard}
	var prev *Run
	for i := range runs {
		switch r := &runs[i]; {
		case r.Day > day && !hasRun(runs, day):
			return Summary{}, fmt.Errorf("%w: %s is settled, %s is not", ErrRunOrder, r.Day, day)
		case r.Day < day:
			prev = r
		}
	}
	if prev != nil {
		if prev.Day != day-1 || !prev.Complete() {
			return Summary{}, fmt.Errorf("%w: the last complete run before %s must be %s", ErrRunOrder, day, day-1)
		}
		// A tap of this day received before the previous cutoff (a gate
		// clock ahead of ours by up to tap.MaxSkew) is still found.
		q.ReceivedFrom = prev.Cutoff
		if lo := start.Add(-2 * tap.MaxSkew); lo.Before(q.ReceivedFrom) {
			q.ReceivedFrom = lo
		}
	}
	run, err := s.Store.BeginRun(ctx, day, started, started)
	if err != nil {
		return Summary{}, err
	}
	q.Cutoff = run.Cutoff
	sum, err := s.rate(ctx, q)
	if err != nil {
		return Summary{}, err
	}
	if err := s.Store.FinishShard(ctx, day, shard, s.now()); err != nil {
		return Summary{}, err
	}
	sum.Day = day.String()
	sum.Charged = s.Rules.Currency.Format(sum.ChargedMinor)
	if s.Metrics != nil {
		s.Metrics.settled(sum, s.now().Sub(started))
	}
	return sum, nil
}

// ratesRole reports whether settlement gives the engine a leg of mode with
// role: every boarding and tap-on, and a tap-off where a journeys rule of
// the rules pairs it with its tap-on. Elsewhere a tap-off ends a journey
// priced at its boarding (or upstream) and costs nothing.
func ratesRole(r *capping.Rules, mode, role string) bool {
	if role != string(tap.RoleExit) {
		return true
	}
	for i := range r.Journeys {
		if slices.Contains(r.Journeys[i].Modes, mode) {
			return true
		}
	}
	return false
}

func hasRun(runs []Run, d capping.Date) bool {
	for _, r := range runs {
		if r.Day == d {
			return true
		}
	}
	return false
}

// rate streams the run's riders through the engine; a writer goroutine
// stores the charges in batches while the next ones are rated.
func (s *Settler) rate(ctx context.Context, q RunQuery) (Summary, error) {
	flushEvery := s.FlushEvery
	if flushEvery <= 0 {
		flushEvery = 5000
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []Charge, 2)
	werr := make(chan error, 1)
	go func() {
		var err error
		for b := range batches {
			if err == nil {
				if err = s.Store.AddCharges(ctx, b); err != nil {
					cancel()
				}
			}
		}
		werr <- err
	}()

	var sum Summary
	e := capping.NewEngine(s.Rules)
	var rd capping.Rider
	buf := make([]Charge, 0, flushEvery)
	created := s.now()
	err := s.Store.RunTaps(ctx, q, func(r RunRider) error {
		r.Legs = slices.DeleteFunc(r.Legs, func(t capping.Tap) bool { return !ratesRole(s.Rules, t.Mode, t.Role) })
		if err := e.Rate(&rd, r.Legs); err != nil {
			return fmt.Errorf("backend: rate %s: %w", r.Token, err)
		}
		c := Charge{Token: r.Token, Day: q.Day, Amount: rd.Total - r.Charged, Currency: s.Rules.Currency.Code, Created: created, Status: ChargeNone}
		for _, d := range rd.Days {
			if d.Day == q.Day {
				c.DayAmount, c.Taps = d.Charged, d.Taps
			}
		}
		c.Adjustment = c.Amount - c.DayAmount
		if c.Amount != 0 {
			c.Status = ChargePending
		}
		sum.Riders++
		sum.Taps += c.Taps
		sum.ChargedMinor += c.Amount
		if c.Adjustment != 0 {
			sum.Adjustments++
		}
		if c.Amount < 0 {
			sum.Refunds++
		}
		buf = append(buf, c)
		if len(buf) == flushEvery {
			select {
			case batches <- buf:
			case <-ctx.Done():
				return ctx.Err()
			}
			buf = make([]Charge, 0, flushEvery)
			if s.Progress != nil {
				s.Progress(sum.Riders)
			}
		}
		return nil
	})
	if err == nil && len(buf) > 0 {
		batches <- buf
	}
	close(batches)
	if wErr := <-werr; wErr != nil {
		return Summary{}, wErr
	}
	if err != nil {
		return Summary{}, err
	}
	if s.Progress != nil {
		s.Progress(sum.Riders)
	}
	return sum, nil
}

// Scheduler settles each service day once it has ended plus Grace (time
// for gates that were offline to upload), in order, until ctx ends.
type Scheduler struct {
	Settler *Settler
	Grace   time.Duration
	// Every is how often it looks for a day to settle (0: one minute).
	Every time.Duration
	Log   *slog.Logger
}

// Run loops until ctx is done.
func (sc *Scheduler) Run(ctx context.Context) {
	every := sc.Every
	if every <= 0 {
		every = time.Minute
	}
	log := sc.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := sc.SettleDue(ctx, log); err != nil && ctx.Err() == nil {
			log.Error("settlement", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SettleDue settles every day that is due and not yet complete.
func (sc *Scheduler) SettleDue(ctx context.Context, log *slog.Logger) error {
	s := sc.Settler
	now := s.now()
	runs, err := s.Store.Runs(ctx)
	if err != nil {
		return err
	}
	var next capping.Date
	if len(runs) > 0 {
		last := runs[len(runs)-1]
		next = last.Day + 1
		if !last.Complete() {
			next = last.Day
		}
	} else {
		first, ok, err := s.Store.FirstReceived(ctx)
		if err != nil || !ok {
			return err
		}
		next = s.Rules.ServiceDay(first) - 1
	}
	for {
		_, end := DayBounds(s.Rules, next)
		if now.Before(end.Add(sc.Grace)) {
			return nil
		}
		sum, err := s.Settle(ctx, next, Shard{0, 1})
		if err != nil {
			return err
		}
		log.Info("settled", "day", sum.Day, "riders", sum.Riders, "taps", sum.Taps, "charged", sum.Charged, "adjustments", sum.Adjustments, "refunds", sum.Refunds)
		next++
	}
}
