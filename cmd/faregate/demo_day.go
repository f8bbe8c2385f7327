package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/validator"
)

// demoSlots are the hours riders travel at: two hours apart, so every
// ride is a fare of its own (the hopper is 60 minutes).
var demoSlots = []int{7, 9, 11, 13, 15}

// day plays service day n: the gates sync their deny lists, riders travel,
// the gates upload, and at 05:00 the next day the back office settles the
// day and charges it through the acquirer. On the second day the third
// gate has no back-office link until 23:45.
func (d *systemDemo) day(ctx context.Context, n int) error {
	d.at(n, 5, 0)
	fmt.Fprintf(d.out, "\n%s\n", d.clock.Now().Format("Monday 2 January"))
	d.gates[2].offline = n == 1
	if d.gates[2].offline {
		d.say("%s: back-office link down: it decides offline, taps stay in its journal", d.gates[2].id)
	}
	if err := d.syncGates(ctx); err != nil {
		return err
	}
	for slot, hh := range demoSlots {
		if n == 0 && slot == 2 {
			if err := d.readerRide(ctx, n); err != nil {
				return err
			}
		}
		d.at(n, hh, 0)
		if n == 1 && slot == 2 {
			if err := d.payoff(ctx); err != nil {
				return err
			}
		}
		if err := d.ridesAt(ctx, n, slot); err != nil {
			return err
		}
	}
	d.at(n, 23, 30)
	if err := d.uploadAll(ctx); err != nil {
		return err
	}
	if n == 1 {
		if err := d.catchUp(ctx); err != nil {
			return err
		}
	}
	d.at(n+1, 5, 0)
	return d.night(ctx, n)
}

// syncGates brings every connected gate's deny list up to date.
func (d *systemDemo) syncGates(ctx context.Context) error {
	for _, g := range d.gates {
		if g.offline {
			continue
		}
		before := g.denylistVersion()
		if err := g.sync.SyncOnce(ctx); err != nil {
			return fmt.Errorf("gate %s deny-list sync: %w", g.id, err)
		}
		if after := g.denylistVersion(); after != before {
			d.say("%s: deny list v%d -> v%d (%s), signature checked", g.id, before, after, plural(g.replica.List().Len(), "entry", "entries"))
		}
	}
	return nil
}

// ridesAt taps the cards of the riders travelling in slot, each gate
// serving its riders in a goroutine of its own, as three gates would.
func (d *systemDemo) ridesAt(ctx context.Context, n, slot int) error {
	queues := make([][]*demoRider, len(d.gates))
	for _, r := range d.riders {
		if r == d.poor {
			if slot == 0 || slot == 3 {
				queues[0] = append(queues[0], r)
			}
			continue
		}
		if slot < r.perDay {
			g := (r.home + slot) % len(d.gates)
			queues[g] = append(queues[g], r)
		}
	}
	errs := make([]error, len(d.gates))
	var wg sync.WaitGroup
	for i, g := range d.gates {
		wg.Go(func() {
			for _, r := range queues[i] {
				if errs[i] = d.ride(ctx, g, r); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if slot < 4 {
		if err := d.qrRide(ctx, d.gates[slot%len(d.gates)]); err != nil {
			return err
		}
	}
	if n == 0 && slot == 1 {
		return d.forgedTap(ctx)
	}
	return nil
}

// ride taps r's card at g.
func (d *systemDemo) ride(ctx context.Context, g *demoGate, r *demoRider) error {
	o := g.station.Tap(ctx, r.card)
	if o.Err != nil {
		return fmt.Errorf("%s at %s: %w", r.name, g.id, o.Err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.taps++
	if !o.Token.IsZero() {
		r.token = o.Token
	}
	if o.Verdict == validator.Open {
		d.opened[g.id]++
		t := capping.Tap{Token: o.Token.String(), Time: o.Time, Mode: "bus"}
		if err := d.rules.Resolve(&t); err != nil {
			return err
		}
		d.accepted = append(d.accepted, t)
	} else {
		d.refused[string(o.Reason)]++
	}
	if r != d.poor {
		if o.Verdict != validator.Open {
			return fmt.Errorf("%s at %s: refused (%s)", r.name, g.id, o.Reason)
		}
		return nil
	}
	d.say("%s: %s (token %s…): %s/%s", g.id, r.name, o.Token.String()[:8], o.Verdict, o.Reason)
	switch {
	case o.Reason == validator.ReasonDenied:
		d.steps[stepRefused] = "refused at " + g.id
	case o.Verdict == validator.Open && d.steps[stepRefused] != "" && d.steps[stepPaid] == "":
		d.steps[stepPaid] = "opened at " + g.id
	}
	return nil
}

// forgedTap presents the card whose issuer certificate is corrupt.
func (d *systemDemo) forgedTap(ctx context.Context) error {
	g := d.gates[1]
	o := g.station.Tap(ctx, d.forged)
	if o.Err != nil {
		return fmt.Errorf("forged card at %s: %w", g.id, o.Err)
	}
	d.mu.Lock()
	d.taps++
	d.refused[string(o.Reason)]++
	d.mu.Unlock()
	d.say("%s: forged card (corrupt issuer certificate): %s/%s", g.id, o.Verdict, o.Reason)
	if o.Verdict == validator.Reject && o.Reason == validator.ReasonODAFailed {
		d.happened(stepForged, "refused at "+g.id)
	}
	return nil
}

// payoff: the operator records the debt as paid, through the deny-list
// registry, and the connected gates sync.
func (d *systemDemo) payoff(ctx context.Context) error {
	if d.poor.token.IsZero() {
		return nil
	}
	v, err := d.bo.registry.Remove(ctx, d.poor.token, "debt_paid", "operator")
	if err != nil {
		return fmt.Errorf("payoff: %w", err)
	}
	d.say("back office: operator records %s's debt as paid: off the deny list, v%d", d.poor.name, v)
	d.clock.Set(d.clock.Now().Add(30 * time.Second))
	return d.syncGates(ctx)
}

// uploadAll: every connected gate sends its backlog.
func (d *systemDemo) uploadAll(ctx context.Context) error {
	for _, g := range d.gates {
		if g.offline {
			d.say("%s: %d taps waiting in its journal (link down)", g.id, g.journal.Stats().Unsent)
			continue
		}
		if _, err := g.upload(ctx); err != nil {
			return err
		}
	}
	return nil
}

// catchUp: the third gate's link comes back; it syncs its deny list and
// uploads its backlog, and both sides count the gate's taps.
func (d *systemDemo) catchUp(ctx context.Context) error {
	g := d.gates[2]
	d.at(1, 23, 45)
	g.offline = false
	if err := d.syncGates(ctx); err != nil {
		return err
	}
	backlog := g.journal.Stats().Unsent
	sent, err := g.upload(ctx)
	if err != nil {
		return err
	}
	journaled := g.journal.Stats().Taps
	stored, err := storedTaps(ctx, d.bo.store, g.id)
	if err != nil {
		return err
	}
	d.say("%s: link back: uploaded %d of %d waiting; journal %d taps, back office %d, unsent %d",
		g.id, sent, backlog, journaled, stored, g.journal.Stats().Unsent)
	if backlog > 0 && int64(sent) == backlog && stored == journaled {
		d.happened(stepCatchUp, fmt.Sprintf("%s: %d taps caught up", g.id, sent))
	}
	return nil
}

// night settles service day n and sends its charges to the acquirer.
func (d *systemDemo) night(ctx context.Context, n int) error {
	day := d.rules.ServiceDay(d.start.AddDate(0, 0, n).Add(12 * time.Hour))
	sum, err := d.bo.settler.Settle(ctx, day, backend.Shard{I: 0, N: 1})
	if err != nil {
		return fmt.Errorf("settle %s: %w", day, err)
	}
	if d.acq == nil {
		if d.acq, err = startAcquirer(ctx, d.bo, d.keys.token, d.poor.token, d.clock); err != nil {
			return err
		}
	}
	if _, err := d.acq.link.RunOnce(ctx); err != nil {
		return fmt.Errorf("charges: %w", err)
	}
	if err := d.reportCharges(ctx, day, sum); err != nil {
		return err
	}
	return d.readerSettled(ctx, day)
}

// reportCharges prints the night's charges and notes a decline.
func (d *systemDemo) reportCharges(ctx context.Context, day capping.Date, sum backend.Summary) error {
	cs, err := d.bo.store.Charges(ctx, day)
	if err != nil {
		return err
	}
	status := map[string]int{}
	for _, c := range cs {
		status[c.Status]++
		if c.Status == backend.ChargeDeclined {
			d.declined = append(d.declined, fmt.Sprintf("%s %s", c.Token.String()[:8], d.rules.Currency.Format(c.Amount)))
			v := d.bo.registry.Current().Version()
			d.say("back office: %s %s charge of token %s… declined (%s): on the deny list, v%d",
				d.rules.Currency.Format(c.Amount), c.Currency, c.Token.String()[:8], c.Outcome, v)
			if _, listed, err := d.bo.registry.Entry(ctx, c.Token); err == nil && listed {
				d.happened(stepDeclined, "declined "+c.Outcome)
			}
		}
	}
	d.say("back office: settled %s: %d riders, %d legs, %s %s charged; acquirer (ISO 8583): %d approved, %d declined, %d not sent (no card)",
		sum.Day, sum.Riders, sum.Taps, sum.Charged, d.rules.Currency.Code, status[backend.ChargeApproved], status[backend.ChargeDeclined],
		status[backend.ChargeFailed])
	return nil
}

// plural is n and the noun in the right number.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
