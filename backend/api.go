package backend

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

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
}

// Register adds the read API's routes to mux.
func (a *ReadAPI) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/charges", a.auth(a.charges))
	mux.HandleFunc("GET /v1/riders/{token}/receipts", a.auth(a.receipts))
	mux.HandleFunc("GET /v1/gates", a.auth(a.gates))
	mux.HandleFunc("GET /v1/runs", a.auth(a.runs))
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

func (a *ReadAPI) charges(w http.ResponseWriter, r *http.Request) {
	day, err := capping.ParseDate(r.URL.Query().Get("day"))
	if err != nil {
		apiError(w, http.StatusBadRequest, "day: want YYYY-MM-DD")
		return
	}
	cs, err := a.Store.Charges(r.Context(), day)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "store unavailable")
		return
	}
	out := struct {
		Day      string       `json:"day"`
		Currency string       `json:"currency"`
		Total    string       `json:"total"`
		Charges  []ChargeJSON `json:"charges"`
	}{Day: day.String(), Currency: a.Rules.Currency.Code, Charges: []ChargeJSON{}}
	var total capping.Amount
	for _, c := range cs {
		total += c.Amount
		out.Charges = append(out.Charges, a.chargeJSON(c))
	}
	out.Total = a.Rules.Currency.Format(total)
	writeJSON(w, http.StatusOK, out)
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
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	to := a.Rules.ServiceDay(now())
	from := to - 30
	q := r.URL.Query()
	if s := q.Get("to"); s != "" {
		if to, err = capping.ParseDate(s); err != nil {
			apiError(w, http.StatusBadRequest, "to: want YYYY-MM-DD")
			return
		}
		from = to - 30
	}
	if s := q.Get("from"); s != "" {
		if from, err = capping.ParseDate(s); err != nil {
			apiError(w, http.StatusBadRequest, "from: want YYYY-MM-DD")
			return
		}
	}
	if from > to || to-from > maxReceiptDays {
		apiError(w, http.StatusBadRequest, "from..to: at most 366 days, from before to")
		return
	}
	_, end := DayBounds(a.Rules, to)
	stored, err := a.Store.Taps(r.Context(), token, time.Time{}, end)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "store unavailable")
		return
	}
	var legs []capping.Tap
	var src []int // legs[i] is stored[src[i]]
	for i := range stored {
		if cat, ok := stored[i].Leg(); ok {
			t := &stored[i].Record
			legs = append(legs, capping.Tap{Token: token.String(), Time: t.Time, Mode: t.Location.Mode, Category: cat, Zones: t.Location.Zones})
			src = append(src, i)
		}
	}
	var rd capping.Rider
	if err := capping.NewEngine(a.Rules).Rate(&rd, legs); err != nil {
		apiError(w, http.StatusInternalServerError, "cannot rate the rider's taps")
		return
	}
	charges, err := a.Store.RiderCharges(r.Context(), token)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "store unavailable")
		return
	}
	writeJSON(w, http.StatusOK, a.receiptJSON(token, rd.Receipt(from, to), &rd, stored, src, charges))
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
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (a *ReadAPI) gates(w http.ResponseWriter, r *http.Request) {
	gs, err := a.Store.Gates(r.Context())
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "store unavailable")
		return
	}
	out := []GateJSON{}
	for _, g := range gs {
		out = append(out, GateJSON{ID: g.ID, Disabled: g.Disabled, LastSeen: optTime(g.LastSeen), LastSeq: g.LastSeq, Backlog: g.Backlog,
			OldestUnsent: optTime(g.OldestUnsent), DenylistVersion: g.DenylistVersion, Taps: g.Taps})
	}
	writeJSON(w, http.StatusOK, map[string]any{"gates": out})
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
