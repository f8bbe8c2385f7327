package charging

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
)

// DebtJSON is a token's debt in the API: its declined charges.
type DebtJSON struct {
	Token   rider.Token      `json:"token"`
	Owed    string           `json:"owed"`
	Paid    string           `json:"paid,omitempty"`
	Listed  bool             `json:"deny_listed"`
	Charges []DebtChargeJSON `json:"charges"`
}

// DebtChargeJSON is one charge of a debt.
type DebtChargeJSON struct {
	ID            int64      `json:"id"`
	Day           string     `json:"day"`
	Amount        string     `json:"amount"`
	Currency      string     `json:"currency"`
	Status        string     `json:"status"`
	Outcome       string     `json:"outcome,omitempty"`
	Category      string     `json:"category,omitempty"`
	Action        string     `json:"action,omitempty"`
	Attempts      int        `json:"attempts"`
	Resubmissions int        `json:"resubmissions"`
	NextRetry     *time.Time `json:"next_retry,omitempty"`
}

// Listed reports whether a token is on the current deny list.
type Listed func(rider.Token) bool

// Register adds the debt routes to mux (docs/api.md): GET
// /v1/riders/{token}/debt and POST /v1/riders/{token}/debt/pay, both with
// the operator's bearer token (empty: refused).
func (l *Link) Register(mux *http.ServeMux, operatorToken string, rules *capping.Rules, listed Listed) {
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if operatorToken == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(operatorToken)) != 1 {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
				return
			}
			h(w, r)
		}
	}
	debtJSON := func(token rider.Token, cs []backend.Charge, paidNow bool) DebtJSON {
		f := rules.Currency.Format
		d := DebtJSON{Token: token, Listed: listed(token), Charges: []DebtChargeJSON{}}
		var owed, paid capping.Amount
		for _, c := range cs {
			j := DebtChargeJSON{ID: c.ID, Day: c.Day.String(), Amount: f(c.Amount), Currency: c.Currency, Status: c.Status, Outcome: c.Outcome,
				Category: c.Category, Action: c.Action, Attempts: c.Attempts, Resubmissions: c.Resubmissions}
			if !c.NextRetry.IsZero() && c.Status == backend.ChargeDeclined {
				j.NextRetry = &c.NextRetry
			}
			switch c.Status {
			case backend.ChargeDeclined:
				owed += c.Amount
			case backend.ChargeApproved:
				paid += c.Amount
			}
			d.Charges = append(d.Charges, j)
		}
		d.Owed = f(owed)
		if paidNow {
			d.Paid = f(paid)
		}
		return d
	}
	mux.HandleFunc("GET /v1/riders/{token}/debt", auth(func(w http.ResponseWriter, r *http.Request) {
		token, err := rider.ParseToken(r.PathValue("token"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "token: want 32 hex digits"})
			return
		}
		cs, err := l.store.Debts(r.Context(), token)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "store unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, debtJSON(token, cs, false))
	}))
	mux.HandleFunc("POST /v1/riders/{token}/debt/pay", auth(func(w http.ResponseWriter, r *http.Request) {
		token, err := rider.ParseToken(r.PathValue("token"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "token: want 32 hex digits"})
			return
		}
		cs, err := l.PayDebt(r.Context(), token)
		if err == nil && len(cs) == 0 && listed(token) {
			// Listed with nothing owed: a card refused at its account
			// check. Check it again; approved, it leaves the list.
			_, err = l.Recheck(r.Context(), token)
		}
		switch {
		case errors.Is(err, ErrNoAnswer):
			w.Header().Set("Retry-After", "60")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the acquirer did not answer; nothing was taken"})
			return
		case err != nil:
			// Errors of the link are redacted (no card data); still, the
			// API says no more than that it failed.
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": "payment failed"})
			return
		}
		writeJSON(w, http.StatusOK, debtJSON(token, cs, true))
	}))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
