package backend

import (
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/faregate/faregate/backend/denylistreg"
	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/prometheus/client_golang/prometheus"
)

// QRVerifier verifies the provisional QR taps of every upload for real
// (qr.BackOffice over a QRStore: issuer signature, device key issued to
// that token and not revoked at tap time, validity and window at the
// gate's tap time, counter replay across all gates) and records each
// verdict.
type QRVerifier struct {
	o        qr.BackOfficeOptions
	store    QRStore
	outcomes *prometheus.CounterVec
}

// NewQRVerifier returns a verifier trusting issuers (the current issuing
// key and the retired ones whose credentials may still arrive); window is
// the gates' ±window (0: qr.DefaultWindow). Its metric is registered on
// reg (nil: not registered).
func NewQRVerifier(store QRStore, issuers *qr.Issuers, window time.Duration, reg prometheus.Registerer) (*QRVerifier, error) {
	o := qr.BackOfficeOptions{Issuers: issuers, Store: store, Window: window}
	if _, err := qr.NewBackOffice(o); err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	v := &QRVerifier{o: o, store: store, outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "faregate_backend_qr_taps_total",
		Help: "Uploaded provisional QR taps verified: confirmed, or refused by reason (replay, revoked, not_issued …).",
	}, []string{"outcome", "reason"})}
	if reg != nil {
		if err := reg.Register(v.outcomes); err != nil {
			return nil, fmt.Errorf("backend: qr metrics: %w", err)
		}
	}
	return v, nil
}

func (v *QRVerifier) counted(o QROutcome) {
	v.outcomes.WithLabelValues(o.Outcome, string(o.Reason)).Inc()
}

// Verify returns the verdicts on the batch's provisional QR taps the gate
// opened for (a tap the gate refused is not checked: it uses no counter and
// is never charged). An error is the store's: answer the upload 503, the
// gate sends it again (the same tap id is no replay of itself).
//
// Two passes keep the signatures out of the store's write lock: first
// every check but the counter (qr.BackOffice over a store whose UseCounter
// only notes the counter), then the batch's counters in one transaction.
func (v *QRVerifier) Verify(ctx context.Context, b *tap.Batch) ([]QROutcome, error) {
	probe := &counterProbe{QRStore: v.store}
	o := v.o
	o.Store = probe
	bo, err := qr.NewBackOffice(o)
	if err != nil {
		return nil, err
	}
	var out []QROutcome
	var uses []counterUse // of the taps that passed every other check
	for i := range b.Taps {
		r := &b.Taps[i]
		if r.Kind != tap.KindQR || !r.Provisional || r.Decision != tap.Open {
			continue
		}
		probe.last = nil
		code, err := bo.Verify(ctx, qr.Upload{TapID: r.ID.String(), Payload: r.QR, At: r.Time})
		if err == nil && code.Credential.Token != r.Token {
			err = &qr.Error{Reason: qr.ReasonNotIssued, Detail: "the tap names another token than the credential"}
		}
		o := QROutcome{TapID: r.ID}
		switch reason := qr.ReasonOf(err); {
		case err == nil:
			o.Outcome, o.Category, o.Leg = QRConfirmed, code.Credential.Category.String(), opensLeg(r)
			u := *probe.last
			u.outcome = len(out)
			uses = append(uses, u)
		case reason != "":
			o.Outcome, o.Reason, o.Detail = QRRefused, reason, truncate(err.Error(), 200)
		default:
			return nil, err
		}
		out = append(out, o)
	}
	if len(uses) == 0 {
		return out, nil
	}
	firsts, err := v.useCounters(ctx, uses)
	if err != nil {
		return nil, err
	}
	for i, u := range uses {
		if firsts[i] != u.tap {
			e := &qr.Error{Reason: qr.ReasonReplay, Detail: fmt.Sprintf("counter %d was used by tap %s", u.counter, firsts[i])}
			out[u.outcome] = QROutcome{TapID: out[u.outcome].TapID, Outcome: QRRefused, Reason: e.Reason, Detail: truncate(e.Error(), 200)}
		}
	}
	return out, nil
}

type counterUse struct {
	device  qr.DeviceKey
	counter uint32
	tap     string
	outcome int // index in the verdicts
}

// counterProbe is the first pass's qr.Store: the real credentials, and a
// UseCounter that only notes what the tap would use.
type counterProbe struct {
	QRStore
	last *counterUse
}

func (p *counterProbe) UseCounter(_ context.Context, device qr.DeviceKey, counter uint32, tap string) (string, error) {
	p.last = &counterUse{device: device, counter: counter, tap: tap}
	return tap, nil
}

// useCounters claims the counters, in one transaction on a SQL store, and
// returns the tap that holds each.
func (v *QRVerifier) useCounters(ctx context.Context, uses []counterUse) ([]string, error) {
	firsts := make([]string, len(uses))
	sq, ok := v.store.(interface{ sql() *sqlStore })
	if !ok {
		for i, u := range uses {
			first, err := v.store.UseCounter(ctx, u.device, u.counter, u.tap)
			if err != nil {
				return nil, err
			}
			firsts[i] = first
		}
		return firsts, nil
	}
	s := sq.sql()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("backend: qr: counters: %w", err)
	}
	defer tx.Rollback()
	for i, u := range uses {
		if firsts[i], err = s.useCounter(ctx, tx, u.device, u.counter, u.tap); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("backend: qr: counters: %w", err)
	}
	return firsts, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// ReasonQRRevoked is the deny-list reason of a token listed because one of
// its QR device keys was revoked.
const ReasonQRRevoked = "qr_revoked"

// Denylister lists tokens on the deny list the gates replicate
// (*denylistreg.Registry).
type Denylister interface {
	Apply(ctx context.Context, changes []denylistreg.Change) (uint64, error)
}

// QRAPI serves the back office's QR credential endpoints (docs/api.md),
// with the read API's operator token:
//
//	POST /v1/qr/credentials                 issue a credential for an enrolled rider
//	POST /v1/qr/credentials/{device}/revoke revoke a device key, deny-list its token
type QRAPI struct {
	Store Store   // the vault's records: a rider is enrolled when it holds card data for the token
	QR    QRStore // issued credentials
	Key   ed25519.PrivateKey
	// Denylist, when set, lists a revoked credential's token.
	Denylist Denylister
	Token    string // operator token; empty refuses every request
	Now      func() time.Time
	// MaxValidity bounds a credential's validity (0: 31 days).
	MaxValidity time.Duration
}

// Register adds the QR routes to mux.
func (a *QRAPI) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/qr/credentials", a.auth(a.issue))
	mux.HandleFunc("POST /v1/qr/credentials/{device}/revoke", a.auth(a.revoke))
}

func (a *QRAPI) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if a.Token == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
			return
		}
		h(w, r)
	}
}

func (a *QRAPI) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// QRIssueRequest is the body of POST /v1/qr/credentials.
type QRIssueRequest struct {
	Token     rider.Token `json:"token"`                // 32 hex digits
	Device    string      `json:"device"`               // the device's Ed25519 public key, 64 hex digits
	NotBefore *time.Time  `json:"not_before,omitempty"` // default now
	Valid     string      `json:"valid"`                // Go duration, e.g. "168h"
	Category  string      `json:"category,omitempty"`   // adult (default), child, senior, reduced
}

// QRCredentialJSON is a credential in the QR API's answers.
type QRCredentialJSON struct {
	Credential      []byte `json:"credential,omitempty"` // the signed credential (qr.CredentialSize bytes), base64
	Token           string `json:"token"`
	Device          string `json:"device"`
	KeyID           string `json:"key_id"`
	NotBefore       string `json:"not_before"`
	NotAfter        string `json:"not_after"`
	Category        string `json:"category"`
	RevokedAt       string `json:"revoked_at,omitempty"`
	DenylistVersion uint64 `json:"denylist_version,omitempty"`
}

func credentialJSON(c QRCredential) QRCredentialJSON {
	out := QRCredentialJSON{Token: c.Token.String(), Device: hex.EncodeToString(c.Device[:]), KeyID: c.KeyID.String(),
		NotBefore: c.NotBefore.UTC().Format(time.RFC3339), NotAfter: c.NotAfter.UTC().Format(time.RFC3339), Category: c.Category.String()}
	if !c.RevokedAt.IsZero() {
		out.RevokedAt = c.RevokedAt.UTC().Format(time.RFC3339Nano)
	}
	return out
}

func parseDevice(s string) (qr.DeviceKey, error) {
	var d qr.DeviceKey
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(d) {
		return d, errors.New("device: want the Ed25519 public key in 64 hex digits")
	}
	copy(d[:], b)
	return d, nil
}

func (a *QRAPI) issue(w http.ResponseWriter, r *http.Request) {
	var req QRIssueRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "body: want JSON {token, device, valid, category, not_before}")
		return
	}
	if req.Token.IsZero() {
		apiError(w, http.StatusBadRequest, "token: required")
		return
	}
	device, err := parseDevice(req.Device)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Category == "" {
		req.Category = qr.Adult.String()
	}
	cat, err := qr.ParseCategory(req.Category)
	if err != nil {
		apiError(w, http.StatusBadRequest, "category: want adult, child, senior or reduced")
		return
	}
	maxValid := a.MaxValidity
	if maxValid <= 0 {
		maxValid = 31 * 24 * time.Hour
	}
	valid, err := time.ParseDuration(req.Valid)
	if err != nil || valid < time.Second || valid > maxValid {
		apiError(w, http.StatusBadRequest, fmt.Sprintf("valid: want a duration from 1s to %s", maxValid))
		return
	}
	now := a.now()
	nb := now.Truncate(time.Second)
	if req.NotBefore != nil {
		nb = req.NotBefore.Truncate(time.Second)
	}
	na := nb.Add(valid.Truncate(time.Second) - time.Second)
	if nb.Unix() < 0 || na.Unix() > math.MaxUint32 || na.Before(now) {
		apiError(w, http.StatusBadRequest, "not_before, valid: the credential must end in the future, before 2106")
		return
	}
	if _, enrolled, err := a.Store.SealedCard(r.Context(), req.Token); err != nil {
		apiError(w, http.StatusServiceUnavailable, "store unavailable")
		return
	} else if !enrolled {
		apiError(w, http.StatusUnprocessableEntity, "token: no payment method in the vault for this rider")
		return
	}
	cred := qr.Credential{Token: req.Token, Device: device, NotBefore: nb, NotAfter: na, Category: cat}
	if err := cred.Sign(a.Key); err != nil {
		apiError(w, http.StatusBadRequest, "cannot sign this credential")
		return
	}
	raw, err := cred.MarshalBinary()
	if err != nil {
		apiError(w, http.StatusInternalServerError, "cannot encode the credential")
		return
	}
	rec := QRCredential{Issued: qr.Issued{Token: req.Token, Device: device, IssuedAt: now}, KeyID: cred.KeyID, NotBefore: nb, NotAfter: na, Category: cat}
	if err := a.QR.IssueQR(r.Context(), rec); errors.Is(err, ErrQRCredentialExists) {
		apiError(w, http.StatusConflict, "device: this key was issued before: make a new device key")
		return
	} else if err != nil {
		apiError(w, http.StatusServiceUnavailable, "store unavailable")
		return
	}
	out := credentialJSON(rec)
	out.Credential = raw
	writeJSON(w, http.StatusCreated, out)
}

func (a *QRAPI) revoke(w http.ResponseWriter, r *http.Request) {
	device, err := parseDevice(r.PathValue("device"))
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := a.QR.RevokeQR(r.Context(), device, a.now())
	if errors.Is(err, ErrNoQRCredential) {
		apiError(w, http.StatusNotFound, "device: never issued")
		return
	}
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "store unavailable")
		return
	}
	out := credentialJSON(c)
	if a.Denylist != nil {
		// Gates cannot revoke one device key, only the token: it stays
		// listed until an operator removes it (the stolen credential has
		// expired and the rider has a new device key).
		v, err := a.Denylist.Apply(r.Context(), []denylistreg.Change{{
			Token: c.Token, Reason: ReasonQRRevoked, Actor: "qr revoke " + hex.EncodeToString(device[:4]),
		}})
		if err != nil {
			apiError(w, http.StatusServiceUnavailable, "deny list unavailable: revoked, not yet listed; send again")
			return
		}
		out.DenylistVersion = v
	}
	writeJSON(w, http.StatusOK, out)
}
