package backend

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/faregate/faregate/backend/denylistreg"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
)

// ReadAPI serves the operator's read API (docs/api.md): charges by day, a
// rider's receipts, gates and settlement runs. Every request carries
// "Authorization: Bearer <operator token>".
type ReadAPI struct {
	Store Store
	Rules *capping.Rules
	// Token is the operator token; empty refuses every request.
	Token string
	Now   func() time.Time
	// DenyList is the deny-list registry (nil: no deny list served): the
	// deny-list status, riders' debt, the overview's debt outstanding.
	DenyList *denylistreg.Registry
}

func (a *ReadAPI) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Register adds the read API's routes to mux.
func (a *ReadAPI) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/charges", a.auth(a.charges))
	mux.HandleFunc("GET /v1/riders/{token}/receipts", a.auth(a.receipts))
	mux.HandleFunc("GET /v1/gates", a.auth(a.gates))
	mux.HandleFunc("GET /v1/runs", a.auth(a.runs))
	mux.HandleFunc("GET /v1/overview", a.auth(a.overview))
	mux.HandleFunc("GET /v1/denylist/status", a.auth(a.denylistStatus))
}

// ErrBadRequest marks a query the read API refuses (400).
var ErrBadRequest = errors.New("backend: bad request")

// writeResult writes v, or the error: 400 for ErrBadRequest, else 503.
func writeResult(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, ErrBadRequest):
		apiError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), ErrBadRequest.Error()+": "))
	case err != nil:
		apiError(w, http.StatusServiceUnavailable, "store unavailable")
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

func (a *ReadAPI) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if a.Token == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
			return
		}
		h(w, r)
	}
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// ChargeJSON is a charge in the read API.
type ChargeJSON struct {
	ID         int64       `json:"id"`
	Token      rider.Token `json:"token"`
	Day        string      `json:"day"`
	Amount     string      `json:"amount"`
	DayAmount  string      `json:"day_amount"`
	Adjustment string      `json:"adjustment"`
	Taps       int         `json:"taps"`
	Currency   string      `json:"currency"`
	Status     string      `json:"status"`
	Outcome    string      `json:"outcome,omitempty"`
	Reference  string      `json:"reference,omitempty"`
}

func (a *ReadAPI) chargeJSON(c Charge) ChargeJSON {
	f := a.Rules.Currency.Format
	return ChargeJSON{ID: c.ID, Token: c.Token, Day: c.Day.String(), Amount: f(c.Amount), DayAmount: f(c.DayAmount),
		Adjustment: f(c.Adjustment), Taps: c.Taps, Currency: c.Currency, Status: c.Status, Outcome: c.Outcome, Reference: c.Reference}
}

// ChargesJSON is GET /v1/charges: the charges one run day recorded.
type ChargesJSON struct {
	Day      string       `json:"day"`
	Currency string       `json:"currency"`
	Total    string       `json:"total"`
	Charges  []ChargeJSON `json:"charges"`
}

func (a *ReadAPI) charges(w http.ResponseWriter, r *http.Request) {
	day, err := capping.ParseDate(r.URL.Query().Get("day"))
	if err != nil {
		apiError(w, http.StatusBadRequest, "day: want YYYY-MM-DD")
		return
	}
	out, err := a.Charges(r.Context(), day)
	writeResult(w, out, err)
}

// Charges returns the charges the run of day recorded, by token.
func (a *ReadAPI) Charges(ctx context.Context, day capping.Date) (ChargesJSON, error) {
	cs, err := a.Store.Charges(ctx, day)
	if err != nil {
		return ChargesJSON{}, err
	}
	out := ChargesJSON{Day: day.String(), Currency: a.Rules.Currency.Code, Charges: []ChargeJSON{}}
	var total capping.Amount
	for _, c := range cs {
		total += c.Amount
		out.Charges = append(out.Charges, a.chargeJSON(c))
	}
	out.Total = a.Rules.Currency.Format(total)
	return out, nil
}

// ReceiptJSON is GET /v1/riders/{token}/receipts: the capping engine's
// receipt of the rider's legs from..to, and the charges that billed them.
type ReceiptJSON struct {
	Token    rider.Token     `json:"token"`
	From     string          `json:"from"`
	To       string          `json:"to"`
	Currency string          `json:"currency"`
	Fares    string          `json:"fares"`
	Charged  string          `json:"charged"`
	Saved    string          `json:"saved"`
	SavedBy  []CapSavingJSON `json:"saved_by"`
	Legs     []LegJSON       `json:"legs"`
	Days     []DayJSON       `json:"days"`
	Windows  []WindowJSON    `json:"cap_windows"`
	Charges  []ChargeJSON    `json:"charges"`
	// QRTaps are the rider's provisional QR taps of the period and what
	// the back office made of them (a refused one is not in Legs).
	QRTaps []QRTapJSON `json:"qr_taps"`
	// MaskedPAN is the masked PAN (first 6 / last 4 at most) of the
	// rider's newest tap, when a gate sent one.
	MaskedPAN string `json:"masked_pan,omitempty"`
	// DenyList is the rider's deny-list entry: listed, and the debt.
	DenyList *DenyEntryJSON `json:"denylist,omitempty"`
}

// QRTapJSON is an uploaded QR tap and its verification outcome.
type QRTapJSON struct {
	ID       string `json:"id"`
	Time     string `json:"time"`
	Gate     string `json:"gate"`
	Decision string `json:"decision"`           // the gate's
	Outcome  string `json:"outcome"`            // confirmed, refused, or pending (not verified)
	Reason   string `json:"reason,omitempty"`   // refused: the qr reason code
	Category string `json:"category,omitempty"` // confirmed: the fare category
}

// LegJSON is one leg of a receipt.
type LegJSON struct {
	Time       string `json:"time"`
	ServiceDay string `json:"service_day"`
	Gate       string `json:"gate"`
	Stop       string `json:"stop,omitempty"`
	Mode       string `json:"mode,omitempty"`
	Fare       string `json:"fare"`
	Charged    string `json:"charged"`
	CappedBy   string `json:"capped_by,omitempty"`
	Transfer   string `json:"transfer,omitempty"`
}

// DayJSON is one service day of a receipt: one charge equals N taps.
type DayJSON struct {
	ServiceDay string `json:"service_day"`
	Taps       int    `json:"taps"`
	Fares      string `json:"fares"`
	Charged    string `json:"charged"`
}

// CapSavingJSON is what one cap took off.
type CapSavingJSON struct {
	Cap   string `json:"cap"`
	Saved string `json:"saved"`
}

// WindowJSON is one cap window of the receipt's period.
type WindowJSON struct {
	Cap     string `json:"cap"`
	From    string `json:"from"`
	To      string `json:"to"`
	Charged string `json:"charged"`
	Rides   int    `json:"rides"`
	Reached bool   `json:"reached"`
	Saved   string `json:"saved"`
}

// maxReceiptDays bounds the period of one receipt request.
const maxReceiptDays = 366

func (a *ReadAPI) receipts(w http.ResponseWriter, r *http.Request) {
	token, err := rider.ParseToken(r.PathValue("token"))
	if err != nil {
		apiError(w, http.StatusBadRequest, "token: want 32 hex digits")
		return
	}
	q := r.URL.Query()
	from, to, err := a.Period(q.Get("from"), q.Get("to"), 30)
	if err != nil {
		writeResult(w, nil, err)
		return
	}
	out, err := a.Receipt(r.Context(), token, from, to)
	if errors.Is(err, errRate) {
		apiError(w, http.StatusInternalServerError, "cannot rate the rider's taps")
		return
	}
	writeResult(w, out, err)
}

// Period parses a from..to query of service days: to defaults to today,
// from to days before to; at most maxReceiptDays.
func (a *ReadAPI) Period(fromS, toS string, days int) (from, to capping.Date, err error) {
	to = a.Rules.ServiceDay(a.now())
	if toS != "" {
		if to, err = capping.ParseDate(toS); err != nil {
			return 0, 0, fmt.Errorf("%w: to: want YYYY-MM-DD", ErrBadRequest)
		}
	}
	from = to - capping.Date(days)
	if fromS != "" {
		if from, err = capping.ParseDate(fromS); err != nil {
			return 0, 0, fmt.Errorf("%w: from: want YYYY-MM-DD", ErrBadRequest)
		}
	}
	if from > to || to-from > maxReceiptDays {
		return 0, 0, fmt.Errorf("%w: from..to: at most 366 days, from before to", ErrBadRequest)
	}
	return from, to, nil
}

var errRate = errors.New("backend: cannot rate the rider's taps")

// Receipt returns a rider's receipt for service days from..to: the
// capping engine's rating of every stored leg up to the end of to, and the
// charges of those days.
func (a *ReadAPI) Receipt(ctx context.Context, token rider.Token, from, to capping.Date) (ReceiptJSON, error) {
	_, end := DayBounds(a.Rules, to)
	stored, err := a.Store.Taps(ctx, token, time.Time{}, end)
	if err != nil {
		return ReceiptJSON{}, err
	}
	var legs []capping.Tap
	var src []int // legs[i] is stored[src[i]]
	for i := range stored {
		t := &stored[i].Record
		if cat, ok := stored[i].Leg(); ok && ratesRole(a.Rules, t.Location.Mode, string(t.Location.Role)) {
			legs = append(legs, capping.Tap{Token: token.String(), Time: t.Time, Mode: t.Location.Mode, Category: cat, Zones: t.Location.Zones,
				Role: string(t.Location.Role), Stop: t.Location.Stop})
			src = append(src, i)
		}
	}
	var rd capping.Rider
	if err := capping.NewEngine(a.Rules).Rate(&rd, legs); err != nil {
		return ReceiptJSON{}, fmt.Errorf("%w: %w", errRate, err)
	}
	charges, err := a.Store.RiderCharges(ctx, token)
	if err != nil {
		return ReceiptJSON{}, err
	}
	out := a.receiptJSON(token, rd.Receipt(from, to), &rd, stored, src, charges)
	for i := len(stored) - 1; i >= 0; i-- {
		if m := stored[i].MaskedPAN; m != "" {
			out.MaskedPAN = m
			break
		}
	}
	if a.DenyList != nil {
		e, ok, err := a.DenyList.Entry(ctx, token)
		if err != nil {
			return ReceiptJSON{}, err
		}
		if ok {
			j := a.denyEntryJSON(e)
			out.DenyList = &j
		}
	}
	return out, nil
}

func (a *ReadAPI) receiptJSON(token rider.Token, rc capping.Receipt, rd *capping.Rider, stored []StoredTap, src []int, charges []Charge) ReceiptJSON {
	f := a.Rules.Currency.Format
	out := ReceiptJSON{Token: token, From: rc.From.String(), To: rc.To.String(), Currency: a.Rules.Currency.Code,
		Fares: f(rc.Fares), Charged: f(rc.Charged), Saved: f(rc.Saved),
		SavedBy: []CapSavingJSON{}, Legs: []LegJSON{}, Days: []DayJSON{}, Windows: []WindowJSON{}, Charges: []ChargeJSON{}, QRTaps: []QRTapJSON{}}
	for _, s := range rc.SavedBy {
		out.SavedBy = append(out.SavedBy, CapSavingJSON{Cap: s.Cap, Saved: f(s.Saved)})
	}
	for _, l := range rc.Legs {
		st := &stored[src[l.Tap]].Record
		out.Legs = append(out.Legs, LegJSON{Time: l.Time.UTC().Format(time.RFC3339Nano), ServiceDay: l.ServiceDay.String(),
			Gate: st.Gate, Stop: st.Location.Stop, Mode: l.Mode, Fare: f(l.Fare), Charged: f(l.Charged), CappedBy: l.CappedBy, Transfer: l.Transfer})
	}
	for _, d := range rd.Days {
		if d.Day >= rc.From && d.Day <= rc.To {
			out.Days = append(out.Days, DayJSON{ServiceDay: d.Day.String(), Taps: d.Taps, Fares: f(d.Fares), Charged: f(d.Charged)})
		}
	}
	for _, cw := range rc.Windows {
		out.Windows = append(out.Windows, WindowJSON{Cap: cw.Cap, From: cw.From.String(), To: cw.To.String(), Charged: f(cw.Charged), Rides: cw.Rides, Reached: cw.Reached, Saved: f(cw.Saved)})
	}
	for _, c := range charges {
		if c.Day >= rc.From && c.Day <= rc.To {
			out.Charges = append(out.Charges, a.chargeJSON(c))
		}
	}
	for i := range stored {
		st := &stored[i]
		if d := a.Rules.ServiceDay(st.Time); !st.Provisional || d < rc.From || d > rc.To {
			continue
		}
		q := QRTapJSON{ID: st.ID.String(), Time: st.Time.UTC().Format(time.RFC3339Nano), Gate: st.Gate, Decision: string(st.Decision),
			Outcome: st.QROutcome, Reason: st.QRReason, Category: st.QRCategory}
		if q.Outcome == "" {
			q.Outcome = "pending"
		}
		out.QRTaps = append(out.QRTaps, q)
	}
	return out
}

// GateJSON is a gate in GET /v1/gates.
type GateJSON struct {
	ID              string     `json:"id"`
	Disabled        bool       `json:"disabled"`
	LastSeen        *time.Time `json:"last_seen,omitempty"`
	LastSeq         uint64     `json:"last_seq"`
	Backlog         int64      `json:"backlog"`
	OldestUnsent    *time.Time `json:"oldest_unsent,omitempty"`
	DenylistVersion uint64     `json:"denylist_version"`
	Taps            int64      `json:"taps"`
	// With a deny-list registry: when the version the gate runs was
	// published, and how many versions it is behind the newest.
	DenylistPublished *time.Time `json:"denylist_published,omitempty"`
	DenylistBehind    *uint64    `json:"denylist_behind,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (a *ReadAPI) gates(w http.ResponseWriter, r *http.Request) {
	out, err := a.Gates(r.Context())
	writeResult(w, map[string]any{"gates": out}, err)
}

// Gates lists the gates and what each last reported; with a deny-list
// registry, also how old the deny-list version each runs is.
func (a *ReadAPI) Gates(ctx context.Context) ([]GateJSON, error) {
	gs, err := a.Store.Gates(ctx)
	if err != nil {
		return nil, err
	}
	var head uint64
	if a.DenyList != nil {
		head = a.DenyList.Current().Version()
	}
	published := map[uint64]time.Time{}
	out := []GateJSON{}
	for _, g := range gs {
		j := GateJSON{ID: g.ID, Disabled: g.Disabled, LastSeen: optTime(g.LastSeen), LastSeq: g.LastSeq, Backlog: g.Backlog,
			OldestUnsent: optTime(g.OldestUnsent), DenylistVersion: g.DenylistVersion, Taps: g.Taps}
		if a.DenyList != nil && g.DenylistVersion > 0 {
			t, seen := published[g.DenylistVersion]
			if !seen {
				v, ok, err := a.DenyList.Version(ctx, g.DenylistVersion)
				if err != nil {
					return nil, err
				}
				if ok {
					t = v.Created
				}
				published[g.DenylistVersion] = t
			}
			j.DenylistPublished = optTime(t)
		}
		if a.DenyList != nil && head >= g.DenylistVersion {
			behind := head - g.DenylistVersion
			j.DenylistBehind = &behind
		}
		out = append(out, j)
	}
	return out, nil
}

func (a *ReadAPI) runs(w http.ResponseWriter, r *http.Request) {
	rs, err := a.Store.Runs(r.Context())
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "store unavailable")
		return
	}
	type runJSON struct {
		Day      string    `json:"day"`
		Cutoff   time.Time `json:"cutoff"`
		Complete bool      `json:"complete"`
	}
	out := []runJSON{}
	for _, x := range rs {
		out = append(out, runJSON{Day: x.Day.String(), Cutoff: x.Cutoff, Complete: x.Complete()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": out})
}
