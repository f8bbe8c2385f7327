package main

import (
	"context"
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
	"github.com/faregate/faregate/backend/denylistreg"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/denylist/dlsync"
	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/emv/cardsim"
	"github.com/faregate/faregate/oda"
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
}

// demoTap is an accepted tap, as the back office will receive it.
type demoTap struct {
	rider *demoRider
	at    time.Time
}

// runNetworkDemo plays a week on a bus network through the parts that have
// landed: gates that authenticate real software cards offline, a back
// office that deny-lists a card after a late decline and serves the signed
// list over HTTP, gates that sync it, and the capping engine that settles
// the week. Every decision and amount is computed; only the riders'
// timetable and the decline are scripted.
func runNetworkDemo(ctx context.Context, out io.Writer, monday time.Time, keys *oda.KeyStore, revoked []oda.Revocation) error {
	dir, err := os.MkdirTemp("", "faregate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	rulesJSON, err := fs.ReadFile(faregate.TestData, "testdata/capping/tfl/rules.json")
	if err != nil {
		return err
	}
	rules, err := capping.ParseRules(rulesJSON)
	if err != nil {
		return err
	}
	loc := rules.Location

	// Back office: the deny-list registry on SQLite, served over HTTP.
	pub, key, err := denylist.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	store, err := denylistreg.OpenSQLite(ctx, filepath.Join(dir, "backoffice.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	clock := monday
	now := func() time.Time { return clock }
	registry, err := denylistreg.New(ctx, store, denylistreg.Options{Key: key, Now: now})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	handler, err := registry.NewServer(dlsync.ServerOptions{})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	defer srv.Shutdown(context.Background())
	baseURL := "http://" + ln.Addr().String()

	// Gate: kernel, ODA, deny-list replica synced from the back office.
	replica, err := denylist.OpenReplica(ctx, filepath.Join(dir, "gate"), denylist.ReplicaConfig{ListID: denylist.DefaultListID, PublicKey: pub})
	if err != nil {
		return err
	}
	sync, err := dlsync.NewClient(dlsync.ClientOptions{
		Source: &dlsync.HTTPSource{BaseURL: baseURL}, Replica: replica, Now: now,
	})
	if err != nil {
		return err
	}
	kernel, err := emv.NewKernel(emv.Config{
		Authenticator: validator.Authenticator{Verifier: oda.NewVerifier(keys, oda.Options{TestMode: true, Revoked: revoked})},
		Location:      loc,
		Now:           now,
	})
	if err != nil {
		return err
	}
	tokenKey := make([]byte, 32)
	if _, err := rand.Read(tokenKey); err != nil {
		return err
	}
	gate, err := validator.NewGate(kernel, validator.Rules{DenyList: replica, TokenKey: tokenKey})
	if err != nil {
		return err
	}

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
		if r.card, err = cardsim.LoadFS(faregate.TestData, "testdata/cards/"+r.profile+".json", cardsim.Options{}); err != nil {
			return err
		}
	}
	debtor := riders[0]

	fmt.Fprintf(out, "\nA week on the network, %s to %s (%s bus and tram fares and caps)\n",
		monday.Format("Mon 2 Jan"), monday.AddDate(0, 0, 6).Format("Mon 2 Jan 2006"), rules.Currency.Code)
	fmt.Fprintf(out, "  back office: deny list v%d, served at %s/v1/denylist\n", registry.Current().Version(), baseURL)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "  %s  "+format+"\n", append([]any{clock.In(loc).Format("Mon 15:04")}, args...)...)
	}
	syncGate := func() error {
		before := replica.List().Version()
		if err := sync.SyncOnce(ctx); err != nil {
			return fmt.Errorf("gate deny-list sync: %w", err)
		}
		entries := "entries"
		if replica.List().Len() == 1 {
			entries = "entry"
		}
		say("gate: deny list v%d -> v%d (%d %s), signature and version checked", before, replica.List().Version(), replica.List().Len(), entries)
		return nil
	}

	var accepted []demoTap
	ride := func(r *demoRider) error {
		res := gate.Tap(ctx, r.card, nil)
		if res.Token != (emv.Token{}) {
			r.token = res.Token
		}
		switch {
		case res.Decision.Verdict == validator.Open:
			r.opened++
			accepted = append(accepted, demoTap{rider: r, at: clock})
		case res.Decision.Reason == validator.ReasonDenied:
			r.denied++
			say("gate: %s rejected: %s", r.profile, res.Decision.Reason)
		default:
			return fmt.Errorf("%s: unexpected decision %s/%s (%v)", r.profile, res.Decision.Verdict, res.Decision.Reason, res.Err)
		}
		return nil
	}
	// One service day of rides, from 07:00, a ride every 50 minutes.
	day := func(d int) error {
		date := monday.AddDate(0, 0, d)
		for _, r := range riders {
			n := r.perDay
			if d >= 5 {
				n = r.weekend
			}
			for i := range n {
				clock = time.Date(date.Year(), date.Month(), date.Day(), 7, 0, 0, 0, loc).Add(time.Duration(i) * 50 * time.Minute)
				if err := ride(r); err != nil {
					return err
				}
			}
		}
		return nil
	}

	for d := range 7 {
		if err := day(d); err != nil {
			return err
		}
		date := monday.AddDate(0, 0, d)
		switch d {
		case 1:
			// Tuesday night: Monday's charge for the first rider comes back
			// declined. The amount is what capping charged for Monday.
			owed, err := chargedOn(rules, accepted, debtor, monday)
			if err != nil {
				return err
			}
			clock = time.Date(date.Year(), date.Month(), date.Day(), 23, 0, 0, 0, loc)
			v, err := registry.AddLateDecline(ctx, denylist.Token(debtor.token), int64(owed), rules.Currency.Code, clock, "demo")
			if err != nil {
				return err
			}
			say("back office: %s charge for %s (token %s…) declined late: deny list v%d",
				rules.Currency.Format(owed), debtor.profile, debtor.token.String()[:8], v)
			clock = clock.Add(20 * time.Second)
			if err := syncGate(); err != nil {
				return err
			}
		case 3:
			clock = time.Date(date.Year(), date.Month(), date.Day(), 21, 0, 0, 0, loc)
			v, err := registry.Remove(ctx, denylist.Token(debtor.token), denylistreg.ReasonDebtRecovered, "demo")
			if err != nil {
				return err
			}
			say("back office: %s paid the debt: off the deny list, v%d", debtor.profile, v)
			clock = clock.Add(20 * time.Second)
			if err := syncGate(); err != nil {
				return err
			}
		}
	}

	// End of the week: the back office settles every accepted tap.
	taps := make([]capping.Tap, 0, len(accepted))
	for _, a := range accepted {
		t := capping.Tap{Token: a.rider.token.String(), Time: a.at, Mode: "bus"}
		if err := rules.Resolve(&t); err != nil {
			return err
		}
		taps = append(taps, t)
	}
	st, err := capping.Settle(rules, taps)
	if err != nil {
		return err
	}
	byToken := map[string]*demoRider{}
	for _, r := range riders {
		byToken[r.token.String()] = r
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\n  RIDER\tTOKEN\tOPENED\tDENIED\tFARES\tCHARGED\tCAPS REACHED")
	for _, rd := range st.Riders {
		r := byToken[rd.Token]
		var caps []string
		for _, l := range rd.Legs {
			if l.CappedBy != "" && !slices.Contains(caps, l.CappedBy) {
				caps = append(caps, l.CappedBy)
			}
		}
		if len(caps) == 0 {
			caps = []string{"-"}
		}
		fmt.Fprintf(w, "  %s\t%s…\t%d\t%d\t%s\t%s\t%s\n", r.profile, rd.Token[:8], r.opened, r.denied,
			rules.Currency.Format(rd.Fares), rules.Currency.Format(rd.Total), strings.Join(caps, ", "))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "  %d taps opened the gate; the week's charges total %s %s.\n", len(accepted), rules.Currency.Format(st.Total), rules.Currency.Code)
	if debtor.denied == 0 {
		return errors.New("the deny-listed rider was never refused")
	}
	return nil
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
