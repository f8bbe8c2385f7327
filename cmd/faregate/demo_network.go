package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/backend/denylistreg"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/denylist/dlsync"
	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/emv/cardsim"
	"github.com/faregate/faregate/validator"
)

// demoRider is one rider of the demo week: a software card and how often
// it travels.
type demoRider struct {
	profile string
	perDay  int // bus and tram rides on a weekday
	weekend int // rides on Saturday and Sunday
	card    *cardsim.Card
	token   emv.Token
	opened  int
	denied  int
	debt    *acquirer.Outcome // a declined charge not yet recovered
}

// demoTap is an accepted tap, as the back office will receive it.
type demoTap struct {
	rider *demoRider
	at    time.Time
}

// networkDemo is the week on the network: the back office, one gate and
// the riders, on a scripted clock.
type networkDemo struct {
	out      io.Writer
	monday   time.Time
	clock    time.Time
	rules    *capping.Rules
	registry *denylistreg.Registry
	baseURL  string
	replica  *denylist.Replica
	sync     *dlsync.Client
	gate     *validator.Gate
	riders   []*demoRider
	accepted []demoTap
	tokenKey []byte
	acq      *demoAcquirer // the acquirer link: simulated host, client, Charger
}

// runNetworkDemo plays a week on a bus network through the parts that have
// landed: gates that authenticate real software cards offline, a back
// office that deny-lists a card after a late decline and serves the signed
// list over HTTP, gates that sync it, and the capping engine that settles
// the week, with every night's charges going through the acquirer link to
// a simulated acquirer. Every decision, charge and amount is computed; only
// the riders' timetable and the simulated acquirer's one decline are
// scripted.
func runNetworkDemo(ctx context.Context, out io.Writer, monday time.Time, gc validator.Config) error {
	dir, err := os.MkdirTemp("", "faregate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d := &networkDemo{out: out, monday: monday, clock: monday, acq: newDemoAcquirer()}
	defer d.acq.close()
	if d.rules, err = tflRules(); err != nil {
		return err
	}
	pub, stop, err := d.startBackOffice(ctx, dir)
	if err != nil {
		return err
	}
	defer stop()
	if err := d.startGate(ctx, dir, pub, gc); err != nil {
		return err
	}
	if d.riders, err = demoRiders(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nA week on the network, %s to %s (%s bus and tram fares and caps)\n",
		monday.Format("Mon 2 Jan"), monday.AddDate(0, 0, 6).Format("Mon 2 Jan 2006"), d.rules.Currency.Code)
	fmt.Fprintf(out, "  back office: deny list v%d, served at %s/v1/denylist\n", d.registry.Current().Version(), d.baseURL)
	if err := d.week(ctx); err != nil {
		return err
	}
	return d.settle()
}

func tflRules() (*capping.Rules, error) {
	b, err := fs.ReadFile(faregate.TestData, "testdata/capping/tfl/rules.json")
	if err != nil {
		return nil, err
	}
	return capping.ParseRules(b)
}

func (d *networkDemo) now() time.Time { return d.clock }

// startBackOffice opens the deny-list registry on SQLite and serves it over
// HTTP on loopback. It returns the list's public key and a stop function.
func (d *networkDemo) startBackOffice(ctx context.Context, dir string) (ed25519.PublicKey, func(), error) {
	pub, key, err := denylist.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	store, err := denylistreg.OpenSQLite(ctx, filepath.Join(dir, "backoffice.db"))
	if err != nil {
		return nil, nil, err
	}
	if d.registry, err = denylistreg.New(ctx, store, denylistreg.Options{Key: key, Now: d.now}); err != nil {
		store.Close()
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	handler, err := d.registry.NewServer(dlsync.ServerOptions{})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	d.baseURL = "http://" + ln.Addr().String()
	return pub, func() { srv.Shutdown(context.Background()); store.Close() }, nil
}

// startGate builds the gate: kernel and ODA from gc, and a deny-list
// replica synced from the back office.
func (d *networkDemo) startGate(ctx context.Context, dir string, pub ed25519.PublicKey, gc validator.Config) error {
	var err error
	d.replica, err = denylist.OpenReplica(ctx, filepath.Join(dir, "gate"), denylist.ReplicaConfig{ListID: denylist.DefaultListID, PublicKey: pub})
	if err != nil {
		return err
	}
	d.sync, err = dlsync.NewClient(dlsync.ClientOptions{
		Source: &dlsync.HTTPSource{BaseURL: d.baseURL}, Replica: d.replica, Now: d.now,
	})
	if err != nil {
		return err
	}
	d.tokenKey = make([]byte, 32)
	if _, err := rand.Read(d.tokenKey); err != nil {
		return err
	}
	gc.TestKeys = true // the riders are software cards, certified under test keys
	gc.Terminal = emv.Config{Location: d.rules.Location, Now: d.now}
	gc.Rules = validator.Rules{DenyList: d.replica, TokenKey: d.tokenKey}
	d.gate, err = validator.NewGateFromConfig(gc)
	return err
}

// demoRiders are the week's riders; the first will owe a late decline.
func demoRiders() ([]*demoRider, error) {
	riders := []*demoRider{
		{profile: "visa-qvsdc", perDay: 2, weekend: 0},
		{profile: "mastercard-cda", perDay: 4, weekend: 2},
		{profile: "amex-cda", perDay: 6, weekend: 4},
		{profile: "discover-dda", perDay: 1, weekend: 0},
		{profile: "jcb-dda", perDay: 3, weekend: 3},
		{profile: "maestro-sda", perDay: 2, weekend: 6},
		{profile: "unionpay-qpboc", perDay: 5, weekend: 0},
	}
	for _, r := range riders {
		var err error
		if r.card, err = cardsim.LoadFS(faregate.TestData, "testdata/cards/"+r.profile+".json", cardsim.Options{}); err != nil {
			return nil, err
		}
	}
	return riders, nil
}

func (d *networkDemo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "  %s  "+format+"\n", append([]any{d.clock.In(d.rules.Location).Format("Mon 15:04")}, args...)...)
}

// week rides seven service days. Every night at 23:00 the back office
// charges each rider, through the acquirer, what capping adds for the day
// before; the simulated acquirer declines the first rider's Monday charge,
// and its resubmission, due a day later, is approved.
func (d *networkDemo) week(ctx context.Context) error {
	for day := range 7 {
		if err := d.day(day); err != nil {
			return err
		}
		if day >= 1 {
			date := d.monday.AddDate(0, 0, day)
			d.clock = time.Date(date.Year(), date.Month(), date.Day(), 23, 0, 0, 0, d.rules.Location)
			if err := d.night(ctx, day-1); err != nil {
				return err
			}
		}
	}
	next := d.monday.AddDate(0, 0, 7)
	d.clock = time.Date(next.Year(), next.Month(), next.Day(), 3, 0, 0, 0, d.rules.Location)
	return d.night(ctx, 6)
}

// night charges the settled day, resubmits the debts that are due and,
// when the deny list changed, lets the gate sync 20 s later.
func (d *networkDemo) night(ctx context.Context, settled int) error {
	if d.acq.charger == nil {
		if err := d.acq.start(ctx, d.registry, d.tokenKey, d.riders[0].token, d.now); err != nil {
			return err
		}
	}
	v := d.registry.Current().Version()
	if err := d.chargeDay(ctx, settled); err != nil {
		return err
	}
	if err := d.resubmitDue(ctx); err != nil {
		return err
	}
	if d.registry.Current().Version() == v {
		return nil
	}
	d.clock = d.clock.Add(20 * time.Second)
	return d.syncGate(ctx)
}

// day is one service day of rides, from 07:00, a ride every 50 minutes.
func (d *networkDemo) day(n int) error {
	date := d.monday.AddDate(0, 0, n)
	for _, r := range d.riders {
		rides := r.perDay
		if n >= 5 {
			rides = r.weekend
		}
		for i := range rides {
			d.clock = time.Date(date.Year(), date.Month(), date.Day(), 7, 0, 0, 0, d.rules.Location).Add(time.Duration(i) * 50 * time.Minute)
			if err := d.ride(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// ride taps r's card at the gate.
func (d *networkDemo) ride(r *demoRider) error {
	res := d.gate.Tap(context.Background(), r.card, func(t *emv.Tap) {
		if t.Card.PAN != "" {
			d.acq.file(t.Card.Token(d.tokenKey), t) // what the gate seals to the vault
		}
	})
	if res.Token != (emv.Token{}) {
		r.token = res.Token
	}
	switch {
	case res.Decision.Verdict == validator.Open:
		r.opened++
		d.accepted = append(d.accepted, demoTap{rider: r, at: d.clock})
	case res.Decision.Reason == validator.ReasonDenied:
		r.denied++
		d.say("gate: %s rejected: %s", r.profile, res.Decision.Reason)
	default:
		return fmt.Errorf("%s: unexpected decision %s/%s (%v)", r.profile, res.Decision.Verdict, res.Decision.Reason, res.Err)
	}
	return nil
}

// chargeDay sends each rider's charge for service day settled (0 =
// Monday): what the capping engine charges for the week up to that day
// minus what it charged up to the day before. It reports the declines.
func (d *networkDemo) chargeDay(ctx context.Context, settled int) error {
	var approved int
	var declined []*demoRider
	for _, r := range d.riders {
		upTo, err := chargedOn(d.rules, d.accepted, r, d.monday.AddDate(0, 0, settled))
		if err != nil {
			return err
		}
		before := capping.Amount(0)
		if settled > 0 {
			if before, err = chargedOn(d.rules, d.accepted, r, d.monday.AddDate(0, 0, settled-1)); err != nil {
				return err
			}
		}
		if upTo == before {
			continue
		}
		id := fmt.Sprintf("d%d-%s", settled, r.token.String()[:8])
		o, err := d.acq.charge(ctx, acquirer.Charge{ID: id, Token: r.token, Amount: upTo - before, Currency: d.rules.Currency})
		if err != nil {
			return err
		}
		switch o.Status {
		case acquirer.StatusApproved:
			approved++
		case acquirer.StatusDeclined:
			r.debt = &o
			declined = append(declined, r)
		default:
			return fmt.Errorf("%s: charge %s: %s", r.profile, o.Status, o.Reason)
		}
	}
	d.say("back office: %s's charges to the acquirer (ISO 8583, simulated host): %d approved, %d declined",
		d.monday.AddDate(0, 0, settled).Format("Monday"), approved, len(declined))
	for _, r := range declined {
		o := r.debt
		d.say("back office: %s charge for %s (token %s…) declined late (%s, %s, next try %s): deny list v%d",
			d.rules.Currency.Format(o.Charge.Amount), r.profile, r.token.String()[:8], o.Result.Code, o.Decision.Category,
			o.Decision.RetryAt.In(d.rules.Location).Format("Mon 15:04"), d.registry.Current().Version())
	}
	return nil
}

// resubmitDue sends again every declined charge whose retry is due, with
// its history; an approval takes the card off the deny list.
func (d *networkDemo) resubmitDue(ctx context.Context) error {
	for _, r := range d.riders {
		if r.debt == nil || r.debt.Decision.Action != acquirer.ActionRetryAt || d.clock.Before(r.debt.Decision.RetryAt) {
			continue
		}
		c := r.debt.Charge
		c.History = acquirer.History{FirstDeclinedAt: r.debt.Decision.FirstDeclinedAt, DeclinesSinceApproval: 1}
		o, err := d.acq.charge(ctx, c)
		if err != nil {
			return err
		}
		if o.Status != acquirer.StatusApproved {
			return fmt.Errorf("%s: resubmission %s (%s)", r.profile, o.Status, o.Result.Code)
		}
		r.debt = nil
		d.say("back office: %s resubmitted for %s: %s (%s): off the deny list, v%d",
			d.rules.Currency.Format(c.Amount), r.profile, o.Result.Code, o.Status, d.registry.Current().Version())
	}
	return nil
}

func (d *networkDemo) syncGate(ctx context.Context) error {
	before := d.replica.List().Version()
	if err := d.sync.SyncOnce(ctx); err != nil {
		return fmt.Errorf("gate deny-list sync: %w", err)
	}
	entries := "entries"
	if d.replica.List().Len() == 1 {
		entries = "entry"
	}
	d.say("gate: deny list v%d -> v%d (%d %s), signature and version checked", before, d.replica.List().Version(), d.replica.List().Len(), entries)
	return nil
}

// settle: at the end of the week the back office settles every accepted
// tap under the capping rules and prints each rider's charge.
func (d *networkDemo) settle() error {
	taps := make([]capping.Tap, 0, len(d.accepted))
	for _, a := range d.accepted {
		t := capping.Tap{Token: a.rider.token.String(), Time: a.at, Mode: "bus"}
		if err := d.rules.Resolve(&t); err != nil {
			return err
		}
		taps = append(taps, t)
	}
	st, err := capping.Settle(d.rules, taps)
	if err != nil {
		return err
	}
	byToken := map[string]*demoRider{}
	for _, r := range d.riders {
		byToken[r.token.String()] = r
	}
	cur := d.rules.Currency
	w := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\n  RIDER\tTOKEN\tOPENED\tDENIED\tFARES\tCHARGED\tCAPS REACHED")
	for _, rd := range st.Riders {
		r := byToken[rd.Token]
		fmt.Fprintf(w, "  %s\t%s…\t%d\t%d\t%s\t%s\t%s\n", r.profile, rd.Token[:8], r.opened, r.denied,
			cur.Format(rd.Fares), cur.Format(rd.Total), strings.Join(capsReached(rd.Legs), ", "))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "  %d taps opened the gate; the week's charges total %s %s.\n", len(d.accepted), cur.Format(st.Total), cur.Code)
	if d.riders[0].denied == 0 {
		return errors.New("the deny-listed rider was never refused")
	}
	held, err := d.acq.held()
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "  The acquirer's ledger holds %s %s: the week's charges, each taken once.\n", cur.Format(held), cur.Code)
	if held != st.Total {
		return fmt.Errorf("the acquirer holds %s, the week's charges total %s", cur.Format(held), cur.Format(st.Total))
	}
	return nil
}

// capsReached names the caps that capped some of legs, or "-".
func capsReached(legs []capping.Leg) []string {
	var caps []string
	for _, l := range legs {
		if l.CappedBy != "" && !slices.Contains(caps, l.CappedBy) {
			caps = append(caps, l.CappedBy)
		}
	}
	if len(caps) == 0 {
		return []string{"-"}
	}
	return caps
}

// chargedOn is what the capping engine charges rider for the service day
// starting on day.
func chargedOn(rules *capping.Rules, accepted []demoTap, rider *demoRider, day time.Time) (capping.Amount, error) {
	var taps []capping.Tap
	for _, a := range accepted {
		if a.rider == rider && a.at.Before(day.AddDate(0, 0, 1)) {
			t := capping.Tap{Token: rider.token.String(), Time: a.at, Mode: "bus"}
			if err := rules.Resolve(&t); err != nil {
				return 0, err
			}
			taps = append(taps, t)
		}
	}
	st, err := capping.Settle(rules, taps)
	if err != nil {
		return 0, err
	}
	return st.Total, nil
}
