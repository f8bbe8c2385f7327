package main

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
)

func tflRules() (*capping.Rules, error) {
	b, err := fs.ReadFile(faregate.TestData, "testdata/capping/tfl/rules.json")
	if err != nil {
		return nil, err
	}
	return capping.ParseRules(b)
}

// chargeTotals are the back office's charges over the run.
type chargeTotals struct {
	all, approved, declined capping.Amount
	count, declines         int
	oncePerDay              bool
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
			t.count++
			switch c.Status {
			case backend.ChargeApproved:
				t.approved += c.Amount
			case backend.ChargeDeclined:
				t.declined += c.Amount
				t.declines++
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
	fmt.Fprintf(d.out, "  acquirer        ledger holds %s %s in %d approvals; %d declined (%s), paid off by the operator\n",
		cur.Format(held), cur.Code, entries, ct.declines, cur.Format(ct.declined))
	fmt.Fprintf(d.out, "  deny list       back office v%d;", d.bo.registry.Current().Version())
	for _, g := range d.gates {
		fmt.Fprintf(d.out, " %s v%d", g.id, g.denylistVersion())
	}
	fmt.Fprintln(d.out)
	switch {
	case ct.all != st.Total || held != ct.approved || entries != ct.count-ct.declines || !ct.oncePerDay:
		fmt.Fprintf(d.out, "  MISMATCH: capping %s, charges %s (once a day: %v), approved %s, ledger %s in %d entries\n",
			cur.Format(st.Total), cur.Format(ct.all), ct.oncePerDay, cur.Format(ct.approved), cur.Format(held), entries)
	case fares > st.Total:
		d.happened(stepCapped, fmt.Sprintf("charges = capping = ledger + declined, %s saved", cur.Format(fares-st.Total)))
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
	for _, s := range demoSteps {
		how, ok := d.steps[s]
		mark := "yes"
		if !ok {
			mark, how = "NO", "did not happen"
		}
		fmt.Fprintf(d.out, "  %-3s %s: %s\n", mark, s, how)
	}
}
