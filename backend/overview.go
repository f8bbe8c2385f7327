package backend

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/faregate/faregate/backend/denylistreg"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
)

// OverviewJSON is GET /v1/overview: the taps, decisions, fares, charges
// and debt of service days from..to.
type OverviewJSON struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Currency string `json:"currency"`
	Taps     int64  `json:"taps"`
	Opened   int64  `json:"opened"`
	Refused  int64  `json:"refused"`
	// Hours counts taps per UTC hour, every hour of the period.
	Hours     []HourJSON     `json:"hours"`
	Decisions []DecisionJSON `json:"decisions"`
	// Riders is how many tokens have a leg in the period; Fares, Charged
	// and Saved are the sums of their receipts (GET /v1/riders/…/receipts
	// for the same period): the fares before caps, what the engine
	// charges, and what the caps saved.
	Riders  int             `json:"riders"`
	Fares   string          `json:"fares"`
	Charged string          `json:"charged"`
	Saved   string          `json:"saved"`
	SavedBy []CapSavingJSON `json:"saved_by"`
	// Billing is the charges the runs of the period's days recorded, by
	// status (GET /v1/charges, day by day).
	Billing  []StatusTotalJSON `json:"billing"`
	Billed   string            `json:"billed"`
	Declined StatusTotalJSON   `json:"declined"`
	// Debt is the deny list's: tokens listed and what they owe (absent
	// without a deny-list registry).
	Debt *DebtJSON `json:"debt,omitempty"`
}

// HourJSON is the taps of one hour.
type HourJSON struct {
	Hour    time.Time `json:"hour"`
	Taps    int       `json:"taps"`
	Refused int       `json:"refused"`
}

// DecisionJSON counts taps by decision and reason.
type DecisionJSON struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	Taps     int64  `json:"taps"`
}

// StatusTotalJSON is the charges of one status.
type StatusTotalJSON struct {
	Status  string `json:"status"`
	Charges int    `json:"charges"`
	Amount  string `json:"amount"`
}

// DebtJSON is the deny list's debt.
type DebtJSON struct {
	Listed int    `json:"listed"`
	Owed   string `json:"owed"` // in the rules' currency
	// Other lists debt in other currencies, in minor units by code.
	Other map[string]int64 `json:"other,omitempty"`
}

func (a *ReadAPI) overview(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := a.Period(q.Get("from"), q.Get("to"), 6)
	if err != nil {
		writeResult(w, nil, err)
		return
	}
	out, err := a.Overview(r.Context(), from, to)
	writeResult(w, out, err)
}

// Overview returns the overview of service days from..to. Fares and
// savings rate every rider of the period the way Receipt does (the same
// code), so the overview's sums equal the sum of the riders' receipts; it
// costs one rating per rider, fine for thousands of riders per period.
func (a *ReadAPI) Overview(ctx context.Context, from, to capping.Date) (OverviewJSON, error) {
	out := OverviewJSON{From: from.String(), To: to.String(), Currency: a.Rules.Currency.Code}
	tokens, err := a.overviewTaps(ctx, &out, from, to)
	if err != nil {
		return OverviewJSON{}, err
	}
	if err := a.overviewFares(ctx, &out, tokens, from, to); err != nil {
		return OverviewJSON{}, err
	}
	if err := a.overviewBilling(ctx, &out, from, to); err != nil {
		return OverviewJSON{}, err
	}
	if a.DenyList != nil {
		d, err := a.debt(ctx)
		if err != nil {
			return OverviewJSON{}, err
		}
		out.Debt = &d
	}
	return out, nil
}

// overviewTaps counts the days' taps by hour and by decision and reason,
// and returns the tokens of the riders who travelled, in token order.
func (a *ReadAPI) overviewTaps(ctx context.Context, out *OverviewJSON, from, to capping.Date) ([]rider.Token, error) {
	start, _ := DayBounds(a.Rules, from)
	_, end := DayBounds(a.Rules, to)
	first := start.UTC().Truncate(time.Hour)
	hours := make([]HourJSON, 0, int(end.Sub(first)/time.Hour)+1)
	for h := first; h.Before(end); h = h.Add(time.Hour) {
		hours = append(hours, HourJSON{Hour: h})
	}
	type key struct{ d, r string }
	decisions := map[key]int64{}
	riders := map[rider.Token]bool{}
	err := a.Store.ScanTaps(ctx, start, end, func(st *StoredTap) error {
		out.Taps++
		i := int(st.Time.Sub(first) / time.Hour)
		inRange := i >= 0 && i < len(hours)
		if inRange {
			hours[i].Taps++
		}
		if st.Decision == tap.Open {
			out.Opened++
		} else {
			out.Refused++
			if inRange {
				hours[i].Refused++
			}
		}
		decisions[key{string(st.Decision), st.Reason}]++
		if _, ok := st.Leg(); ok {
			riders[st.Token] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.Hours = hours
	out.Decisions = []DecisionJSON{}
	for k, n := range decisions {
		out.Decisions = append(out.Decisions, DecisionJSON{Decision: k.d, Reason: k.r, Taps: n})
	}
	slices.SortFunc(out.Decisions, func(x, y DecisionJSON) int {
		return cmp.Or(cmp.Compare(y.Taps, x.Taps), cmp.Compare(x.Decision, y.Decision), cmp.Compare(x.Reason, y.Reason))
	})
	tokens := make([]rider.Token, 0, len(riders))
	for t := range riders {
		tokens = append(tokens, t)
	}
	slices.SortFunc(tokens, func(x, y rider.Token) int { return cmp.Compare(x.String(), y.String()) })
	return tokens, nil
}

// overviewFares sums the riders' receipts: fares before caps, charged,
// and what each cap saved — the same numbers the receipts API gives.
func (a *ReadAPI) overviewFares(ctx context.Context, out *OverviewJSON, tokens []rider.Token, from, to capping.Date) error {
	var fares, charged, saved capping.Amount
	savedBy := map[string]capping.Amount{}
	for _, t := range tokens {
		rc, err := a.Receipt(ctx, t, from, to)
		if err != nil {
			return err
		}
		for _, x := range []struct {
			s   string
			sum *capping.Amount
		}{{rc.Fares, &fares}, {rc.Charged, &charged}, {rc.Saved, &saved}} {
			v, err := a.Rules.Currency.ParseAmount(x.s)
			if err != nil {
				return err
			}
			*x.sum += v
		}
		for _, sb := range rc.SavedBy {
			v, err := a.Rules.Currency.ParseAmount(sb.Saved)
			if err != nil {
				return err
			}
			savedBy[sb.Cap] += v
		}
	}
	f := a.Rules.Currency.Format
	out.Riders = len(tokens)
	out.Fares, out.Charged, out.Saved = f(fares), f(charged), f(saved)
	out.SavedBy = []CapSavingJSON{}
	for c, v := range savedBy {
		out.SavedBy = append(out.SavedBy, CapSavingJSON{Cap: c, Saved: f(v)})
	}
	slices.SortFunc(out.SavedBy, func(x, y CapSavingJSON) int { return cmp.Compare(x.Cap, y.Cap) })
	return nil
}

// overviewBilling totals the days' charges by status.
func (a *ReadAPI) overviewBilling(ctx context.Context, out *OverviewJSON, from, to capping.Date) error {
	type tot struct {
		n   int
		sum capping.Amount
	}
	byStatus := map[string]*tot{}
	var billed capping.Amount
	for d := from; d <= to; d++ {
		cs, err := a.Store.Charges(ctx, d)
		if err != nil {
			return err
		}
		for _, c := range cs {
			t := byStatus[c.Status]
			if t == nil {
				t = &tot{}
				byStatus[c.Status] = t
			}
			t.n++
			t.sum += c.Amount
			billed += c.Amount
		}
	}
	f := a.Rules.Currency.Format
	out.Billed = f(billed)
	out.Billing = []StatusTotalJSON{}
	for _, st := range []string{ChargePending, ChargeApproved, ChargeDeclined, ChargeFailed, ChargeNone} {
		t := byStatus[st]
		if t == nil {
			t = &tot{}
		}
		j := StatusTotalJSON{Status: st, Charges: t.n, Amount: f(t.sum)}
		out.Billing = append(out.Billing, j)
		if st == ChargeDeclined {
			out.Declined = j
		}
	}
	return nil
}

// DenyEntryJSON is a deny-list entry in the read API.
type DenyEntryJSON struct {
	Token      rider.Token `json:"token"`
	Reason     string      `json:"reason"`
	Actor      string      `json:"actor,omitempty"`
	Owed       string      `json:"owed"` // amount and currency
	DeclinedAt *time.Time  `json:"declined_at,omitempty"`
	ListedAt   time.Time   `json:"listed_at"`
	Version    uint64      `json:"version"`
}

func (a *ReadAPI) denyEntryJSON(e denylistreg.Entry) DenyEntryJSON {
	owed := ""
	switch {
	case e.Currency == "" && e.Owed == 0:
		owed = ""
	case e.Currency == a.Rules.Currency.Code:
		owed = a.Rules.Currency.Format(e.Owed) + " " + e.Currency
	default:
		owed = strconv.FormatInt(int64(e.Owed), 10) + " minor units " + e.Currency
	}
	return DenyEntryJSON{Token: rider.Token(e.Token), Reason: e.Reason, Actor: e.Actor, Owed: owed,
		DeclinedAt: optTime(e.DeclinedAt), ListedAt: e.ListedAt, Version: e.Version}
}

// DenyListJSON is GET /v1/denylist/status: the newest version, its
// entries (newest first, at most limit) and the version every gate runs.
type DenyListJSON struct {
	Version   uint64          `json:"version"`
	Published *time.Time      `json:"published,omitempty"`
	Listed    int             `json:"listed"`
	Debt      DebtJSON        `json:"debt"`
	Entries   []DenyEntryJSON `json:"entries"`
	Gates     []GateJSON      `json:"gates"`
}

// maxDenyEntries bounds the entries of one status answer.
const maxDenyEntries = 1000

func (a *ReadAPI) denylistStatus(w http.ResponseWriter, r *http.Request) {
	if a.DenyList == nil {
		apiError(w, http.StatusNotFound, "no deny list here (faregate backend --denylist-key)")
		return
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxDenyEntries {
			apiError(w, http.StatusBadRequest, "limit: 1 to 1000")
			return
		}
		limit = n
	}
	out, err := a.DenyListStatus(r.Context(), limit)
	writeResult(w, out, err)
}

// DenyListStatus returns the deny list's state; a.DenyList must be set.
func (a *ReadAPI) DenyListStatus(ctx context.Context, limit int) (DenyListJSON, error) {
	cur := a.DenyList.Current()
	out := DenyListJSON{Version: cur.Version(), Entries: []DenyEntryJSON{}}
	if cur.Version() > 0 {
		out.Published = optTime(cur.Created())
	}
	var err error
	if out.Debt, err = a.debt(ctx); err != nil {
		return DenyListJSON{}, err
	}
	out.Listed = out.Debt.Listed
	es, err := a.DenyList.ListEntries(ctx, limit)
	if err != nil {
		return DenyListJSON{}, err
	}
	for _, e := range es {
		out.Entries = append(out.Entries, a.denyEntryJSON(e))
	}
	if out.Gates, err = a.Gates(ctx); err != nil {
		return DenyListJSON{}, err
	}
	return out, nil
}

// debt sums the deny list's debt.
func (a *ReadAPI) debt(ctx context.Context) (DebtJSON, error) {
	n, owed, err := a.DenyList.Debt(ctx)
	if err != nil {
		return DebtJSON{}, err
	}
	d := DebtJSON{Listed: n, Owed: a.Rules.Currency.Format(capping.Amount(owed[a.Rules.Currency.Code]))}
	for c, v := range owed {
		if c != a.Rules.Currency.Code {
			if d.Other == nil {
				d.Other = map[string]int64{}
			}
			d.Other[c] = v
		}
	}
	return d, nil
}
