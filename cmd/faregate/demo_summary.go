package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
)

func demoRules() (*capping.Rules, error) { return capping.ParseRules([]byte(demoRulesJSON)) }

// chargeTotals are the back office's charges over the run.
type chargeTotals struct {
	all, approved, declined            capping.Amount
	count, approvals, declines, failed int
	oncePerDay                         bool
}

func (d *systemDemo) chargeTotals(ctx context.Context, days int) (chargeTotals, error) {
	t := chargeTotals{oncePerDay: true}
	for n := range days {
		day := d.rules.ServiceDay(d.start.AddDate(0, 0, n).Add(12 * time.Hour))
		cs, err := d.bo.store.Charges(ctx, day)
		if err != nil {
			return t, err
		}
		seen := map[string]bool{}
		for _, c := range cs {
			if seen[c.Token.String()] {
				t.oncePerDay = false
			}
			seen[c.Token.String()] = true
			t.all += c.Amount
			if c.Amount != 0 {
				t.count++
			}
			switch c.Status {
			case backend.ChargeApproved:
				t.approved += c.Amount
				t.approvals++
			case backend.ChargeDeclined:
				t.declined += c.Amount
				t.declines++
			case backend.ChargeFailed:
				t.failed++
			}
		}
	}
	return t, nil
}

// summary prints the run's numbers and checks the capping step: the
// charges are what the capping engine computes on the taps the gates
// opened, and the acquirer's ledger holds exactly the approved ones.
func (d *systemDemo) summary(ctx context.Context) error {
	st, err := capping.Settle(d.rules, d.accepted)
	if err != nil {
		return err
	}
	var fares capping.Amount
	for _, r := range st.Riders {
		fares += r.Fares
	}
	ct, err := d.chargeTotals(ctx, d.days)
	if err != nil {
		return err
	}
	held, entries, err := d.acq.held()
	if err != nil {
		return err
	}
	cur := d.rules.Currency
	opened := 0
	var perGate []string
	for _, g := range d.gates {
		opened += d.opened[g.id]
		perGate = append(perGate, fmt.Sprintf("%s %d", g.id, d.opened[g.id]))
	}
	if len(d.opened) == len(d.gates) {
		d.happened(stepOffline, fmt.Sprintf("%d opened", opened))
	}
	fmt.Fprintf(d.out, "\nSummary\n  taps            %d\n  opened          %d (%s)\n  refused         %s\n", d.taps, opened, strings.Join(perGate, ", "), d.reasons())
	fmt.Fprintf(d.out, "  fares           %s %s before caps; charged %s in %d charges (one per rider and day); savings from caps %s\n",
		cur.Format(fares), cur.Code, cur.Format(ct.all), ct.count, cur.Format(fares-st.Total))
	fmt.Fprintf(d.out, "  acquirer        ledger holds %s %s in %d approvals; %d declined during the run (token %s), %d still declined (%s); %d not sent (no card)\n",
		cur.Format(held), cur.Code, entries, len(d.declined), strings.Join(d.declined, ", token "), ct.declines, cur.Format(ct.declined), ct.failed)
	fmt.Fprintf(d.out, "  deny list       back office v%d;", d.bo.registry.Current().Version())
	for _, g := range d.gates {
		fmt.Fprintf(d.out, " %s v%d", g.id, g.denylistVersion())
	}
	fmt.Fprintln(d.out)
	switch {
	case ct.all != st.Total || held != ct.approved || entries != ct.approvals || !ct.oncePerDay:
		fmt.Fprintf(d.out, "  MISMATCH: capping %s, charges %s (once a day: %v), approved %s in %d, ledger %s in %d entries\n",
			cur.Format(st.Total), cur.Format(ct.all), ct.oncePerDay, cur.Format(ct.approved), ct.approvals, cur.Format(held), entries)
	case fares > st.Total:
		d.happened(stepCapped, fmt.Sprintf("charges = capping, ledger = approved, %s saved", cur.Format(fares-st.Total)))
	}
	if err := d.checkQR(st); err != nil {
		return err
	}
	if err := d.checkConsole(ctx); err != nil {
		return err
	}
	d.printSteps()
	return nil
}

func (d *systemDemo) reasons() string {
	var rs []string
	for r, n := range d.refused {
		rs = append(rs, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(rs)
	total := 0
	for _, n := range d.refused {
		total += n
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(rs, ", "))
}

func (d *systemDemo) printSteps() {
	fmt.Fprintln(d.out, "\nThe story")
	for _, s := range d.storySteps() {
		how, ok := d.steps[s]
		mark := "yes"
		if !ok {
			mark, how = "NO", "did not happen"+d.readerWhy(s)
		}
		fmt.Fprintf(d.out, "  %-3s %s: %s\n", mark, s, how)
	}
}

// checkQR: the QR rider travelled every day at the reduced fare, its day
// cap bound, and it was charged like the others: the acquirer's ledger
// holds, on its card's token, what the capping engine computes for it.
func (d *systemDemo) checkQR(st *capping.Statement) error {
	tok := d.qrRider.device.Credential.Token
	held, approvals, err := d.acq.heldFor(tok)
	if err != nil {
		return err
	}
	for _, r := range st.Riders {
		if r.Token != tok.String() {
			continue
		}
		cur := d.rules.Currency
		fmt.Fprintf(d.out, "  QR rider        %d QR rides and 1 card tap, fares %s, capped %s (%s); acquirer ledger holds %s in %d approvals on its card\n",
			d.qrOpened, cur.Format(r.Fares), cur.Format(r.Total), strings.Join(capsReached(r.Legs), ", "), cur.Format(held), approvals)
		if d.qrOpened == 4*d.days && r.Fares > r.Total && slices.Contains(capsReached(r.Legs), "bus-tram-reduced-day") {
			d.happened(stepQR, fmt.Sprintf("%d rides, capped at the reduced day cap", d.qrOpened))
		}
		if r.Total > 0 && held == r.Total && approvals == d.days {
			d.happened(stepQRCharged, fmt.Sprintf("%s in %d approvals = its capped fares", cur.Format(held), approvals))
		}
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

// checkConsole reads the gates as the console shows them — GET /v1/gates
// over HTTP with the operator token — and compares them with the gates'
// own journals and deny lists.
func (d *systemDemo) checkConsole(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.bo.url+"/v1/gates", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.keys.operator)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("read API: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Gates []struct {
			ID              string `json:"id"`
			Taps            int64  `json:"taps"`
			DenylistVersion uint64 `json:"denylist_version"`
		} `json:"gates"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("read API: GET /v1/gates: %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return fmt.Errorf("read API: %w", err)
	}
	same := len(body.Gates) == len(d.gates)
	var shown []string
	for _, bg := range body.Gates {
		shown = append(shown, fmt.Sprintf("%s %d taps v%d", bg.ID, bg.Taps, bg.DenylistVersion))
		for _, g := range d.gates {
			if g.id == bg.ID && (g.journal.Stats().Taps != bg.Taps || g.denylistVersion() != bg.DenylistVersion) {
				same = false
			}
		}
	}
	fmt.Fprintf(d.out, "  console         %s\n", strings.Join(shown, "; "))
	if same {
		d.happened(stepConsole, "GET /v1/gates = the gates' journals and deny lists")
	}
	return nil
}
