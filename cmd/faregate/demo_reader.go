package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/reader"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/validator"
)

// stepReader is the story's step when --reader puts a gate on a PC/SC
// reader.
const stepReader = "the card on the reader was read, journaled and settled"

// readerOptions are faregate demo's --reader flags.
type readerOptions struct {
	on   bool   // --reader was given
	name string // "" = the first reader pcscd knows
	wait time.Duration
}

// demoReader is the first gate's PC/SC reader: besides the software
// riders, the gate reads the card presented there once, on the first day,
// through the same kernel, ODA, rules, journal and uploader.
type demoReader struct {
	opts  readerOptions
	r     *reader.Reader
	gate  *demoGate
	token rider.Token // the card's, once the gate opened for it
	day   capping.Date
	why   string // what went wrong, for the story
}

// readerUsage refuses --reader where it cannot work, before anything
// starts: a binary without PC/SC support (exit 2 saying how to build one)
// or a run without the system.
func readerUsage(o readerOptions, network bool) error {
	switch {
	case !o.on:
		return nil
	case !reader.PCSC:
		return usageErr("demo: --reader needs PC/SC support: go run -tags pcsc ./cmd/faregate demo --reader NAME (libpcsclite-dev and a running pcscd, docs/reader.md)")
	case !network:
		return usageErr("demo: --reader puts a gate of the system on the reader: it needs --network")
	case o.wait <= 0:
		return usageErr("demo: --reader-wait must be positive")
	}
	return nil
}

// attachReader opens the reader for the first gate.
func (d *systemDemo) attachReader(ctx context.Context, o readerOptions) error {
	if !o.on {
		return nil
	}
	r, err := reader.Open(ctx, reader.Options{Name: o.name})
	if err != nil {
		return fmt.Errorf("demo: --reader %q: %w", o.name, err)
	}
	d.reader = &demoReader{opts: o, r: r, gate: d.gates[0]}
	fmt.Fprintf(d.out, "  reader        %s also reads the card presented on the PC/SC reader %q (once, on the first day)\n", d.gates[0].id, r.Name())
	return nil
}

func (d *systemDemo) closeReader() {
	if d.reader != nil {
		d.reader.r.Close()
	}
}

// storySteps are the steps this run must show.
func (d *systemDemo) storySteps() []string {
	if d.reader == nil {
		return demoSteps
	}
	return append(slices.Clip(demoSteps), stepReader)
}

// readerRide waits (bounded) for a card on the reader and taps it at the
// reader's gate. No card, or one the gate refuses, is not an error of the
// run: the story's reader step then says what happened.
func (d *systemDemo) readerRide(ctx context.Context, day int) error {
	dr := d.reader
	if dr == nil {
		return nil
	}
	d.at(day, 10, 0)
	dr.day = d.rules.ServiceDay(d.clock.Now())
	g := dr.gate
	d.say("%s: waiting up to %v for a card on the PC/SC reader %q: present one now", g.id, dr.opts.wait, dr.r.Name())
	wctx, cancel := context.WithTimeout(ctx, dr.opts.wait)
	s, err := dr.r.WaitCard(wctx)
	cancel()
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		dr.why = fmt.Sprintf("no card on %q within %v", dr.r.Name(), dr.opts.wait)
		d.say("%s: %s", g.id, dr.why)
		return nil
	case err != nil:
		return fmt.Errorf("reader %q: %w", dr.r.Name(), err)
	}
	defer s.Close()
	o := g.station.Tap(ctx, s)
	if o.Err != nil || o.Record == nil {
		dr.why = fmt.Sprintf("the tap was not journaled (%s)", o.Reason)
		d.say("%s: card on the reader: %s", g.id, dr.why)
		return nil
	}
	d.say("%s: card on the reader (%s, token %s…): %s/%s, journaled", g.id, o.Scheme, o.Token.String()[:8], o.Verdict, o.Reason)
	return d.countReaderTap(g, o)
}

// countReaderTap adds the reader's tap to the run's numbers, as a
// rider's tap is counted.
func (d *systemDemo) countReaderTap(g *demoGate, o validator.Outcome) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.taps++
	if o.Verdict != validator.Open {
		d.refused[string(o.Reason)]++
		d.reader.why = fmt.Sprintf("the gate refused it (%s: %s); a real card needs --capk with its scheme's CA keys", o.Reason, o.Message)
		return nil
	}
	d.opened[g.id]++
	t := capping.Tap{Token: o.Token.String(), Time: o.Time, Mode: "bus"}
	if err := d.rules.Resolve(&t); err != nil {
		return err
	}
	d.accepted = append(d.accepted, t)
	d.reader.token = o.Token
	return nil
}

// readerSettled marks the reader step when day's settlement charged the
// card read on the reader (the acquirer simulator: no real money moves).
func (d *systemDemo) readerSettled(ctx context.Context, day capping.Date) error {
	dr := d.reader
	if dr == nil || dr.token.IsZero() || day != dr.day {
		return nil
	}
	cs, err := d.bo.store.Charges(ctx, day)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.Token != dr.token {
			continue
		}
		d.say("back office: the card read on %q: %d leg, %s %s charged (%s)", dr.r.Name(), c.Taps,
			d.rules.Currency.Format(c.Amount), c.Currency, c.Status)
		if c.Status == backend.ChargeApproved {
			d.happened(stepReader, fmt.Sprintf("tapped at %s, uploaded, charged %s", dr.gate.id, d.rules.Currency.Format(c.Amount)))
		} else {
			dr.why = "its charge was " + c.Status
		}
		return nil
	}
	dr.why = "settlement made no charge for it"
	return nil
}

// readerWhy says, for the reader step, why it did not happen.
func (d *systemDemo) readerWhy(step string) string {
	if step != stepReader || d.reader == nil || d.reader.why == "" {
		return ""
	}
	return " (" + d.reader.why + ")"
}
