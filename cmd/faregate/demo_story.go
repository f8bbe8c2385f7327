package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/emv/cardsim"
	"github.com/faregate/faregate/qr"
)

// The steps of the story; the demo fails naming the first that did not
// happen.
const (
	stepOffline   = "riders tap and gates open offline"
	stepCatchUp   = "a gate loses its back-office link for a day and catches up with nothing lost"
	stepCapped    = "caps are reached and each rider is charged once per day, capped"
	stepDeclined  = "a card without funds is declined and deny-listed"
	stepRefused   = "the next day a gate refuses the deny-listed card"
	stepPaid      = "the debt is paid and the card works again"
	stepForged    = "a forged card (bad certificate) is refused at the gate"
	stepQR        = "a rider travels on a QR code at the reduced fare, capped"
	stepQRCharged = "the QR rider is charged like the others: its card, through the acquirer"
	stepConsole   = "the console's read API shows every gate's taps and deny-list version"
)

var demoSteps = []string{stepOffline, stepCatchUp, stepCapped, stepDeclined, stepRefused, stepPaid, stepForged, stepQR, stepQRCharged, stepConsole}

// systemOptions are faregate demo's flags for the system run.
type systemOptions struct {
	days, riders int
	data         string
	keepRunning  bool
	reader       readerOptions
}

// systemDemo is the whole system on loopback: back office, acquirer
// simulator, three gates and the riders, on one simulated clock.
type systemDemo struct {
	out       io.Writer
	clock     *demoClock
	rules     *capping.Rules
	keys      demoKeys
	bo        *demoBackOffice
	acq       *demoAcquirer
	gates     []*demoGate
	riders    []*demoRider
	poor      *demoRider // the card without funds
	forged    *cardsim.Card
	qrRider   *demoQRRider
	qrIssuers *qr.Issuers
	qrOpened  int
	start     time.Time // the first service day, 00:00 local
	days      int

	mu       sync.Mutex
	opened   map[string]int // by gate
	refused  map[string]int // by reason
	taps     int
	accepted []capping.Tap
	steps    map[string]string // step → what showed it
	declined []string
	reader   *demoReader // --reader: the first gate's PC/SC reader
}

// runSystemDemo plays opts.days days on the system and prints the story.
func runSystemDemo(ctx context.Context, out io.Writer, opts systemOptions, gf gateFlags) error {
	dir := opts.data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "faregate-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	d, err := newSystemDemo(ctx, out, dir, opts, gf)
	if err != nil {
		return err
	}
	defer d.close()
	for day := range opts.days {
		if err := d.day(ctx, day); err != nil {
			return err
		}
	}
	if err := d.summary(ctx); err != nil {
		return err
	}
	if err := d.verdict(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nEvery step of the story happened. Console: %s/console/\n", d.bo.url)
	if opts.keepRunning {
		fmt.Fprintf(out, "Back office and console kept running; log in with the operator token %s. Ctrl-C to stop.\n", d.keys.operator)
		<-ctx.Done()
	}
	return nil
}

func newSystemDemo(ctx context.Context, out io.Writer, dir string, opts systemOptions, gf gateFlags) (*systemDemo, error) {
	d := &systemDemo{out: out, clock: &demoClock{}, opened: map[string]int{}, refused: map[string]int{}, steps: map[string]string{}, days: opts.days}
	var err error
	if d.rules, err = demoRules(); err != nil {
		return nil, err
	}
	now := time.Now().In(d.rules.Location)
	d.start = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, d.rules.Location).AddDate(0, 0, -(int(now.Weekday())+6)%7)
	d.clock.Set(d.start.Add(4 * time.Hour))
	if d.keys, err = newDemoKeys(); err != nil {
		return nil, err
	}
	if d.riders, err = newDemoRiders(opts.riders); err != nil {
		return nil, err
	}
	d.poor = d.riders[0]
	if d.forged, err = cardsim.LoadFS(faregate.TestData, "testdata/cards/fault-corrupt-issuer-cert.json", cardsim.Options{}); err != nil {
		return nil, err
	}
	if d.qrIssuers, d.qrRider, err = newQRIssuer(d.keys.qr); err != nil {
		return nil, err
	}
	if d.bo, err = startBackOffice(ctx, filepath.Join(dir, "backoffice"), d.keys, d.rules, d.clock, d.qrIssuers); err != nil {
		return nil, err
	}
	for i, stop := range []string{"North", "Centre", "South"} {
		g, err := startDemoGate(ctx, filepath.Join(dir, "gate-"+strings.ToLower(stop)), "G-"+strings.ToUpper(stop), stop, d.keys, d.bo, gf, d.clock, d.rules.Location, d.qrIssuers)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("gate %d: %w", i+1, err)
		}
		d.gates = append(d.gates, g)
	}
	d.intro(opts)
	if err := d.attachReader(ctx, opts.reader); err != nil {
		d.close()
		return nil, err
	}
	if err := d.enrolQR(ctx); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *systemDemo) close() {
	d.closeReader()
	if d.acq != nil {
		d.acq.close()
	}
	for _, g := range d.gates {
		g.journal.Close()
	}
	if d.bo != nil {
		d.bo.close()
	}
}

func (d *systemDemo) intro(opts systemOptions) {
	fmt.Fprintf(d.out, "\nThe system on loopback: %d riders over %d days from %s (%s bus fares and caps, a reduced fare for one QR rider)\n",
		len(d.riders), opts.days, d.start.Format("Mon 2 Jan 2006"), d.rules.Currency.Code)
	fmt.Fprintf(d.out, "  back office   %s (SQLite, ingest, vault, settlement, deny list, console)\n", d.bo.url)
	fmt.Fprintf(d.out, "  acquirer      ISO 8583 simulator on loopback, declines one rider's first charge (51)\n")
	for _, g := range d.gates {
		fmt.Fprintf(d.out, "  gate          %s (journal, uploader, deny-list sync)\n", g.id)
	}
}

func (d *systemDemo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "  %s  "+format+"\n", append([]any{d.clock.Now().In(d.rules.Location).Format("Mon 15:04")}, args...)...)
}

func (d *systemDemo) happened(step, how string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.steps[step]; !ok {
		d.steps[step] = how
	}
}

// verdict is nil when every step happened, else exit 1 naming the first
// that did not.
func (d *systemDemo) verdict() error {
	for _, s := range d.storySteps() {
		if _, ok := d.steps[s]; !ok {
			return &exitError{code: 1, err: fmt.Errorf("this step of the story did not happen: %s%s", s, d.readerWhy(s))}
		}
	}
	return nil
}

// at sets the clock to day's hh:mm, local.
func (d *systemDemo) at(day, hh, mm int) {
	date := d.start.AddDate(0, 0, day)
	d.clock.Set(time.Date(date.Year(), date.Month(), date.Day(), hh, mm, 0, 0, d.rules.Location))
}
