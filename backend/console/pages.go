package console

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/rider"
)

var funcs = template.FuncMap{
	"when": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"ts": func(s string) string { // an RFC 3339 string, shortened
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return s
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"deref": func(p *uint64) uint64 {
		if p == nil {
			return 0
		}
		return *p
	},
}

// age is how long ago t was, for humans.
func age(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return "—"
	}
	d := now.Sub(*t).Round(time.Second)
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// apiFailed answers a query the read API refused or could not serve.
func (c *Console) apiFailed(w http.ResponseWriter, r *http.Request, page string, data map[string]any, err error) {
	code, msg := http.StatusServiceUnavailable, "The store is unavailable; try again."
	if errors.Is(err, backend.ErrBadRequest) {
		code, msg = http.StatusBadRequest, strings.TrimPrefix(err.Error(), backend.ErrBadRequest.Error()+": ")
	}
	data["Error"] = msg
	c.render(w, r, code, page, data)
}

// bar is one bar of the taps-per-hour chart (SVG user units).
type bar struct {
	X, Y, W, H, RY, RH float64
	Title              string
}

// chart lays out the hours as SVG bars: the refused part of each bar on top.
type chart struct {
	Width, Height float64
	Bars          []bar
	Max           int
	Ticks         []tick
}

type tick struct {
	X     float64
	Label string
}

const chartW, chartH = 900.0, 160.0

func newChart(hours []backend.HourJSON) chart {
	ch := chart{Width: chartW, Height: chartH}
	for _, h := range hours {
		ch.Max = max(ch.Max, h.Taps)
	}
	if len(hours) == 0 {
		return ch
	}
	w := chartW / float64(len(hours))
	for i, h := range hours {
		x := float64(i) * w
		b := bar{X: x, W: max(w-1, 0.5), Title: fmt.Sprintf("%s: %d taps, %d refused", h.Hour.UTC().Format("2006-01-02 15:00Z"), h.Taps, h.Refused)}
		if ch.Max > 0 {
			b.H = float64(h.Taps) / float64(ch.Max) * (chartH - 4)
			b.RH = float64(h.Refused) / float64(ch.Max) * (chartH - 4)
		}
		b.Y = chartH - b.H
		b.RY = b.Y
		ch.Bars = append(ch.Bars, b)
		if h.Hour.UTC().Hour() == 0 {
			ch.Ticks = append(ch.Ticks, tick{X: x, Label: h.Hour.UTC().Format("Jan 2")})
		}
	}
	return ch
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	data := map[string]any{"From": q.Get("from"), "To": q.Get("to")}
	from, to, err := c.o.API.Period(q.Get("from"), q.Get("to"), 6)
	if err != nil {
		c.apiFailed(w, r, "overview", data, err)
		return
	}
	ov, err := c.o.API.Overview(r.Context(), from, to)
	if err != nil {
		c.apiFailed(w, r, "overview", data, err)
		return
	}
	data["From"], data["To"] = ov.From, ov.To
	data["O"] = ov
	data["Chart"] = newChart(ov.Hours)
	c.render(w, r, http.StatusOK, "overview", data)
}

func (c *Console) rider(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	data := map[string]any{"Token": q.Get("token"), "From": q.Get("from"), "To": q.Get("to"), "PANLookup": c.o.Vault != nil}
	if q.Get("token") == "" {
		c.render(w, r, http.StatusOK, "rider", data)
		return
	}
	token, err := rider.ParseToken(strings.TrimSpace(q.Get("token")))
	if err != nil {
		c.apiFailed(w, r, "rider", data, fmt.Errorf("%w: token: want 32 hex digits", backend.ErrBadRequest))
		return
	}
	from, to, err := c.o.API.Period(q.Get("from"), q.Get("to"), 30)
	if err != nil {
		c.apiFailed(w, r, "rider", data, err)
		return
	}
	rc, err := c.o.API.Receipt(r.Context(), token, from, to)
	if err != nil {
		c.apiFailed(w, r, "rider", data, err)
		return
	}
	data["From"], data["To"] = rc.From, rc.To
	data["R"] = rc
	c.render(w, r, http.StatusOK, "rider", data)
}

// riderByPAN looks a rider up by PAN: the vault computes the token and the
// PAN goes no further (not in a URL, a log or the page).
func (c *Console) riderByPAN(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	data := map[string]any{"PANLookup": c.o.Vault != nil}
	if !c.checkCSRF(r) {
		http.Error(w, "bad form token", http.StatusForbidden)
		return
	}
	pan := strings.ReplaceAll(strings.TrimSpace(r.PostFormValue("pan")), " ", "")
	psn := strings.TrimSpace(r.PostFormValue("psn"))
	if !digits(pan, 12, 19) || (psn != "" && !digits(psn, 2, 2)) {
		c.apiFailed(w, r, "rider", data, fmt.Errorf("%w: PAN: 12 to 19 digits; PAN sequence number: 2 digits or empty", backend.ErrBadRequest))
		return
	}
	if c.o.Vault == nil {
		c.apiFailed(w, r, "rider", data, fmt.Errorf("%w: look-up by PAN needs the vault's token key (faregate backend --token-key)", backend.ErrBadRequest))
		return
	}
	token, err := c.o.Vault.TokenOf(pan, psn)
	if err != nil {
		c.apiFailed(w, r, "rider", data, fmt.Errorf("%w: look-up by PAN needs the vault's token key (faregate backend --token-key)", backend.ErrBadRequest))
		return
	}
	http.Redirect(w, r, Prefix+"rider?"+url.Values{"token": {token.String()}}.Encode(), http.StatusSeeOther)
}

func digits(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

type gateRow struct {
	backend.GateJSON
	SeenAge, UnsentAge, ListAge string
}

func (c *Console) gateRows(gs []backend.GateJSON) []gateRow {
	now := c.o.Now()
	rows := make([]gateRow, len(gs))
	for i, g := range gs {
		rows[i] = gateRow{GateJSON: g, SeenAge: age(now, g.LastSeen), UnsentAge: age(now, g.OldestUnsent), ListAge: age(now, g.DenylistPublished)}
	}
	return rows
}

func (c *Console) denylist(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{}
	if c.o.API.DenyList == nil {
		data["Error"] = "This back office serves no deny list (faregate backend --denylist-key)."
		c.render(w, r, http.StatusOK, "denylist", data)
		return
	}
	dl, err := c.o.API.DenyListStatus(r.Context(), 100)
	if err != nil {
		c.apiFailed(w, r, "denylist", data, err)
		return
	}
	data["D"] = dl
	data["Age"] = age(c.o.Now(), dl.Published)
	data["Gates"] = c.gateRows(dl.Gates)
	c.render(w, r, http.StatusOK, "denylist", data)
}

func (c *Console) gates(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{}
	gs, err := c.o.API.Gates(r.Context())
	if err != nil {
		c.apiFailed(w, r, "gates", data, err)
		return
	}
	data["Gates"] = c.gateRows(gs)
	c.render(w, r, http.StatusOK, "gates", data)
}
