package charging_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/backend/charging"
	"github.com/faregate/faregate/backend/denylistreg"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
)

var (
	tokenKey = []byte("faregate test token key 32 bytes")
	gbp      = capping.Currency{Code: "GBP", Digits: 2}
	t0       = time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)
)

type card struct {
	pan   string
	token rider.Token
}

func newCard(i int) card {
	pan := "47617390010101" + string(rune('0'+i/10)) + string(rune('0'+i%10))
	return card{pan: pan, token: rider.NewToken(tokenKey, pan, "01")}
}

type ledger struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *ledger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *ledger) entries(t *testing.T) []acquirer.LedgerEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	es, err := acquirer.ReadLedger(bytes.NewReader(l.b.Bytes()))
	require.NoError(t, err)
	return es
}

// held sums what the simulated acquirer holds per masked card.
func held(es []acquirer.LedgerEntry) capping.Amount {
	var sum capping.Amount
	for _, e := range es {
		sum += e.Effect
	}
	return sum
}

type env struct {
	store  backend.Store
	pg     bool
	prom   *prometheus.Registry
	client *acquirer.Client
	reg    *denylistreg.Registry
	link   *charging.Link
	led    *ledger
	now    time.Time
	dir    string
	vault  *backend.Vault
	vk     *ecdh.PrivateKey
	seq    uint64
}

// engines runs f on SQLite, and on PostgreSQL when FAREGATE_TEST_POSTGRES
// names a server (a database of its own per test, dropped at the end).
func engines(t *testing.T, f func(t *testing.T, pg bool)) {
	t.Run("sqlite", func(t *testing.T) { f(t, false) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv("FAREGATE_TEST_POSTGRES") == "" {
			t.Skip("FAREGATE_TEST_POSTGRES unset: PostgreSQL not tested (.ci/run sets it)")
		}
		f(t, true)
	})
}

func postgresDB(t *testing.T) string {
	base := os.Getenv("FAREGATE_TEST_POSTGRES")
	admin, err := sql.Open("pgx", base)
	require.NoError(t, err)
	name := fmt.Sprintf("faregate_charging_%d", time.Now().UnixNano())
	_, err = admin.Exec("CREATE DATABASE " + name)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		require.NoError(t, err)
		admin.Close()
	})
	u, err := url.Parse(base)
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

func setup(t *testing.T, pg bool, rules acquirer.Rules, policy ...acquirer.Policy) *env {
	ctx := context.Background()
	dir := t.TempDir()
	e := &env{dir: dir, now: t0, led: &ledger{}, pg: pg}
	var dls interface {
		denylistreg.Store
		Close() error
	}
	var err error
	if pg {
		dsn := postgresDB(t)
		e.store, err = backend.OpenPostgres(ctx, dsn)
		require.NoError(t, err)
		dls, err = denylistreg.OpenPostgres(ctx, dsn)
	} else {
		e.store, err = backend.OpenSQLite(ctx, dir)
		require.NoError(t, err)
		dls, err = denylistreg.OpenSQLite(ctx, filepath.Join(dir, "denylist.db"))
	}
	t.Cleanup(func() { e.store.Close() })
	require.NoError(t, err)
	t.Cleanup(func() { dls.Close() })
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	e.reg, err = denylistreg.New(ctx, dls, denylistreg.Options{Key: key, Now: func() time.Time { return e.now }})
	require.NoError(t, err)

	host, err := acquirer.NewHost(rules, e.led, acquirer.HostOptions{})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- host.Serve(ln) }()
	t.Cleanup(func() { host.Close(); <-done })
	client, err := acquirer.Dial(ctx, acquirer.Options{Addr: ln.Addr().String(), SendTimeout: 2 * time.Second, RetryWait: 10 * time.Millisecond,
		Merchant: acquirer.Merchant{AcquirerID: "123456", ID: "FAREGATE0000001", Name: "FAREGATE TRANSIT        LONDON       GB"}})
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	e.client = client

	vk, err := tap.GenerateVaultKey(rand.Reader)
	require.NoError(t, err)
	e.vault, e.vk = backend.NewVault(e.store, vk, tokenKey), vk
	require.NoError(t, e.store.AddGate(ctx, "G-1", make(ed25519.PublicKey, ed25519.PublicKeySize), t0))
	e.prom = prometheus.NewRegistry()
	o := charging.Options{Currency: gbp, Now: func() time.Time { return e.now }, Metrics: charging.NewMetrics(e.prom)}
	if len(policy) > 0 {
		o.Policy = policy[0]
	}
	e.link = charging.New(client, e.store, e.vault, e.reg, o)
	return e
}

// tap stores one tap of c as the gate uploads it (sealed card data).
func (e *env) tap(t *testing.T, c card) {
	e.seq++
	id := uuid.Must(uuid.NewV7())
	sealed, err := tap.SealCardData(e.vk.PublicKey(), "G-1", id, tap.CardData{PAN: c.pan, PSN: "01", Expiry: "291231",
		Track2: []byte{0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19, 0xD2, 0x91, 0x22, 0x01, 0x00, 0x00, 0x12, 0x34, 0x5F}, Scheme: "visa"})
	require.NoError(t, err)
	r := tap.Record{ID: id, Gate: "G-1", Seq: e.seq, Time: e.now, LocalTime: e.now.Format(time.RFC3339Nano),
		Location: tap.Location{Operator: "metro", Stop: "North", Zones: []string{"1"}, Mode: "bus", Role: tap.RoleEntry},
		Kind:     tap.KindEMV, Token: c.token, MaskedPAN: c.pan[:6] + "******" + c.pan[12:], Scheme: "visa",
		ODA: tap.ODA{Method: "fDDA", OK: true}, Decision: tap.Open, Reason: "ok", Sealed: sealed}
	_, err = e.store.StoreBatches(context.Background(), []*tap.Batch{{Gate: "G-1", Taps: []tap.Record{r}}}, e.now)
	require.NoError(t, err)
}

func (e *env) charge(t *testing.T, c card, day capping.Date, amount capping.Amount) {
	require.NoError(t, e.store.AddCharges(context.Background(), []backend.Charge{{Token: c.token, Day: day, Amount: amount, DayAmount: amount,
		Taps: 1, Currency: "GBP", Status: backend.ChargePending, Created: e.now}}))
}

func (e *env) status(t *testing.T, c card) backend.Charge {
	cs, err := e.store.RiderCharges(context.Background(), c.token)
	require.NoError(t, err)
	require.NotEmpty(t, cs)
	return cs[len(cs)-1]
}

func (e *env) listed(c card) bool { return e.reg.Current().Contains(c.token) }

// TestRecovery: approved, declined (deny-listed) then recovered on a
// scheduled resubmission, on a tap, and by a payoff; a never-retry decline
// waits for the rider; the acquirer's ledger holds exactly the approvals.
func TestRecovery(t *testing.T) {
	engines(t, func(t *testing.T, pg bool) {
		ok, sched, retap, pay, stolen := newCard(1), newCard(2), newCard(3), newCard(4), newCard(5)
		rules := acquirer.Rules{Rules: []acquirer.Rule{
			{MTI: []string{"0200"}, PANRanges: []acquirer.PANRange{{From: sched.pan, To: sched.pan}}, Times: 1, ResponseCode: "51"},
			{MTI: []string{"0200"}, PANRanges: []acquirer.PANRange{{From: retap.pan, To: retap.pan}}, Times: 1, ResponseCode: "51"},
			{MTI: []string{"0200"}, PANRanges: []acquirer.PANRange{{From: pay.pan, To: pay.pan}}, Times: 1, ResponseCode: "51"},
			{MTI: []string{"0200"}, PANRanges: []acquirer.PANRange{{From: stolen.pan, To: stolen.pan}}, Times: 1, ResponseCode: "43"},
		}}
		e := setup(t, pg, rules)
		ctx := context.Background()
		day := capping.DateOf(2026, 11, 23)
		for _, c := range []card{ok, sched, retap, pay, stolen} {
			e.tap(t, c)
			e.charge(t, c, day, 250)
		}

		r, err := e.link.RunOnce(ctx)
		require.NoError(t, err)
		require.Equal(t, charging.Round{Checked: 5, Sent: 5}, r)
		require.Equal(t, backend.ChargeApproved, e.status(t, ok).Status)
		require.False(t, e.listed(ok))
		for _, c := range []card{sched, retap, pay} {
			st := e.status(t, c)
			require.Equal(t, backend.ChargeDeclined, st.Status)
			require.Equal(t, "51", st.Outcome)
			require.Equal(t, "retry_later", st.Category)
			require.Equal(t, "retry_at", st.Action)
			require.True(t, st.NextRetry.Equal(t0.Add(24*time.Hour)), "first resubmission a day later: %v", st.NextRetry)
			require.True(t, e.listed(c))
		}
		st := e.status(t, stolen)
		require.Equal(t, "never_retry", st.Category)
		require.Equal(t, "await_rider", st.Action)
		require.True(t, st.NextRetry.IsZero())
		require.True(t, e.listed(stolen))
		checks := 0
		for _, le := range e.led.entries(t) {
			if le.MTI == "0100" {
				checks++
				require.Equal(t, "00", le.ResponseCode)
				require.Zero(t, le.Amount)
			}
		}
		require.Equal(t, 5, checks, "one first-use account check per new card")
		for _, le := range e.led.entries(t) {
			if le.MTI == "0100" || le.MTI == "0200" {
				require.Equal(t, acquirer.TerminalID("G-1"), le.Terminal, "field 41 is the gate of the card's vault record")
			}
		}

		// Nothing is due an hour later; the retap card taps again: its debt
		// goes at once and is approved; it leaves the list.
		e.now = t0.Add(time.Hour)
		r, err = e.link.RunOnce(ctx)
		require.NoError(t, err)
		require.Equal(t, charging.Round{}, r)
		e.tap(t, retap)
		e.tap(t, stolen) // never-retry: a tap does not resubmit
		e.now = e.now.Add(time.Minute)
		r, err = e.link.RunOnce(ctx)
		require.NoError(t, err)
		require.Equal(t, charging.Round{Retapped: 1, Sent: 1}, r)
		st = e.status(t, retap)
		require.Equal(t, backend.ChargeApproved, st.Status)
		require.Equal(t, 1, st.Resubmissions)
		require.Equal(t, 2, st.Attempts)
		require.False(t, e.listed(retap))
		require.True(t, e.listed(stolen))

		// The payoff through the API: refused without the operator token;
		// then the debt is shown, paid, and the token leaves the list.
		fares := &capping.Rules{Currency: gbp}
		mux := http.NewServeMux()
		e.link.Register(mux, "op-secret", fares, func(tk rider.Token) bool { return e.reg.Current().Contains(tk) })
		srv := httptest.NewServer(mux)
		defer srv.Close()
		call := func(method, path, bearer string) (int, charging.DebtJSON) {
			req, err := http.NewRequest(method, srv.URL+path, nil)
			require.NoError(t, err)
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var d charging.DebtJSON
			if resp.StatusCode == http.StatusOK {
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
			}
			return resp.StatusCode, d
		}
		path := "/v1/riders/" + pay.token.String() + "/debt"
		code, _ := call("POST", path+"/pay", "")
		require.Equal(t, http.StatusUnauthorized, code)
		code, _ = call("POST", path+"/pay", "wrong")
		require.Equal(t, http.StatusUnauthorized, code)
		code, _ = call("POST", "/v1/riders/nothex/debt/pay", "op-secret")
		require.Equal(t, http.StatusBadRequest, code)
		code, d := call("GET", path, "op-secret")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "2.50", d.Owed)
		require.True(t, d.Listed)
		require.Len(t, d.Charges, 1)
		require.NotNil(t, d.Charges[0].NextRetry)
		code, d = call("POST", path+"/pay", "op-secret")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "0.00", d.Owed)
		require.Equal(t, "2.50", d.Paid)
		require.False(t, d.Listed)
		require.False(t, e.listed(pay))
		code, d = call("POST", path+"/pay", "op-secret")
		require.Equal(t, http.StatusOK, code)
		require.Empty(t, d.Charges, "no debt left: nothing sent")

		// The scheduled resubmission a day after the decline.
		e.now = t0.Add(24 * time.Hour)
		r, err = e.link.RunOnce(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, r.Sent)
		require.Equal(t, backend.ChargeApproved, e.status(t, sched).Status)
		require.False(t, e.listed(sched))
		require.True(t, e.listed(stolen))

		require.Equal(t, 5.0, metricValue(t, e.prom, "faregate_backend_acquirer_account_checks_total", "approved"))
		require.Equal(t, 4.0, metricValue(t, e.prom, "faregate_backend_acquirer_charges_total", "approved"))
		require.Equal(t, 4.0, metricValue(t, e.prom, "faregate_backend_acquirer_charges_total", "declined"))
		require.Equal(t, 1.0, metricValue(t, e.prom, "faregate_backend_acquirer_retap_resubmissions_total", ""))
		require.Equal(t, 1.0, metricValue(t, e.prom, "faregate_backend_acquirer_payoffs_total", "paid"))

		// The acquirer holds exactly the approved charges.
		require.Equal(t, capping.Amount(4*250), held(e.led.entries(t)))

		// No PAN in the tables (the vault holds it sealed), in the registry,
		// or in the errors of a charge without card data.
		if e.pg {
			return // the tables are checked on SQLite's files
		}
		require.NoError(t, e.store.Close())
		files, err := filepath.Glob(filepath.Join(e.dir, "*"))
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			for _, c := range []card{ok, sched, retap, pay, stolen} {
				require.False(t, bytes.Contains(b, []byte(c.pan)), "PAN in %s", f)
				require.False(t, strings.Contains(strings.ToLower(string(b)), c.pan[6:]), "PAN digits in %s", f)
			}
		}
	})
}

// TestLastDebt: a token with two debts stays on the list until both are
// paid; a payoff the acquirer declines again stays a debt.
func TestLastDebt(t *testing.T) {
	engines(t, func(t *testing.T, pg bool) {
		c := newCard(7)
		three := int64(300)
		e := setup(t, pg, acquirer.Rules{Rules: []acquirer.Rule{
			{MTI: []string{"0200"}, PANRanges: []acquirer.PANRange{{From: c.pan, To: c.pan}}, MinAmount: &three, ResponseCode: "51"},
			{MTI: []string{"0200"}, PANRanges: []acquirer.PANRange{{From: c.pan, To: c.pan}}, Times: 1, ResponseCode: "51"},
		}})
		ctx := context.Background()
		e.tap(t, c)
		e.charge(t, c, capping.DateOf(2026, 11, 23), 250)
		e.charge(t, c, capping.DateOf(2026, 11, 24), 350)
		_, err := e.link.RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, e.listed(c))
		paid, err := e.link.PayDebt(ctx, c.token)
		require.NoError(t, err)
		require.Len(t, paid, 2)
		require.Equal(t, backend.ChargeApproved, paid[0].Status)
		require.Equal(t, backend.ChargeDeclined, paid[1].Status)
		require.Equal(t, 1, paid[1].Resubmissions)
		require.True(t, e.listed(c), "one debt left: still listed")
		require.Equal(t, capping.Amount(250), held(e.led.entries(t)))
	})
}

// TestAcquirerDown: with no acquirer, nothing is recorded — the charge
// stays pending and the card unchecked, to be tried next round.
func TestAcquirerDown(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := backend.OpenSQLite(ctx, dir)
	require.NoError(t, err)
	defer store.Close()
	dls, err := denylistreg.OpenSQLite(ctx, filepath.Join(dir, "denylist.db"))
	require.NoError(t, err)
	defer dls.Close()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	reg, err := denylistreg.New(ctx, dls, denylistreg.Options{Key: key})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nobody listens
	client, err := acquirer.Dial(ctx, acquirer.Options{Addr: addr, SendTimeout: 200 * time.Millisecond, RetryWait: 10 * time.Millisecond,
		Merchant: acquirer.Merchant{AcquirerID: "123456", ID: "FAREGATE0000001", Name: "FAREGATE TRANSIT"}})
	require.NoError(t, err)
	defer client.Close()
	vk, err := tap.GenerateVaultKey(rand.Reader)
	require.NoError(t, err)
	e := &env{store: store, vault: backend.NewVault(store, vk, tokenKey), vk: vk, now: t0}
	e.link = charging.New(client, store, e.vault, reg, charging.Options{Currency: gbp})
	c := newCard(8)
	e.tap(t, c)
	e.charge(t, c, capping.DateOf(2026, 11, 23), 250)
	rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err = e.link.RunOnce(rctx)
	require.Error(t, err)
	require.NotContains(t, err.Error(), c.pan)
	require.Equal(t, backend.ChargePending, e.status(t, c).Status)
	check, err := store.TokensToCheck(ctx, 10)
	require.NoError(t, err)
	require.Len(t, check, 1, "the check is tried again next round")
}

// TestFirstRideRisk: a first decline up to the limit is written off — the
// card is refused from now on, but the debt is not resubmitted, not even at
// a tap; a larger one is chased.
func TestFirstRideRisk(t *testing.T) {
	engines(t, func(t *testing.T, pg bool) {
		small, large := newCard(11), newCard(12)
		e := setup(t, pg, acquirer.Rules{Rules: []acquirer.Rule{
			{MTI: []string{"0200"}, PANRanges: []acquirer.PANRange{{From: small.pan, To: small.pan}}, ResponseCode: "51"},
			{MTI: []string{"0200"}, PANRanges: []acquirer.PANRange{{From: large.pan, To: large.pan}}, ResponseCode: "51"},
		}}, acquirer.Policy{FirstRideLimit: 300})
		ctx := context.Background()
		day := capping.DateOf(2026, 11, 23)
		e.tap(t, small)
		e.charge(t, small, day, 250)
		e.tap(t, large)
		e.charge(t, large, day, 900)
		_, err := e.link.RunOnce(ctx)
		require.NoError(t, err)
		st := e.status(t, small)
		require.Equal(t, "write_off", st.Action)
		require.True(t, st.NextRetry.IsZero())
		require.True(t, e.listed(small))
		require.Equal(t, "retry_at", e.status(t, large).Action)
		e.now = e.now.Add(time.Hour)
		e.tap(t, small)
		e.now = e.now.Add(time.Minute)
		r, err := e.link.RunOnce(ctx)
		require.NoError(t, err)
		require.Zero(t, r.Sent, "a written-off debt is not chased at a tap")
		require.Equal(t, 1, e.status(t, small).Attempts)
	})
}

// metricValue is the value of a metric's series whose one label has the
// given value ("" for a metric without labels).
func metricValue(t *testing.T, g prometheus.Gatherer, name, label string) float64 {
	t.Helper()
	fams, err := g.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if (label == "" && len(m.GetLabel()) == 0) || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label) {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// TestRetapSpacing: taps right after a decline wait for the spacing, then
// trigger one resubmission; a rider tapping again and again does not use
// up the scheme's resubmissions.
func TestRetapSpacing(t *testing.T) {
	c := newCard(13)
	e := setup(t, false, acquirer.Rules{Rules: []acquirer.Rule{
		{MTI: []string{"0200"}, PANRanges: []acquirer.PANRange{{From: c.pan, To: c.pan}}, ResponseCode: "51"},
	}})
	e.link = charging.New(e.client, e.store, e.vault, e.reg, charging.Options{Currency: gbp, Now: func() time.Time { return e.now }, RetapSpacing: 10 * time.Minute})
	ctx := context.Background()
	e.tap(t, c)
	e.charge(t, c, capping.DateOf(2026, 11, 23), 250)
	_, err := e.link.RunOnce(ctx)
	require.NoError(t, err)
	for range 5 {
		e.now = e.now.Add(time.Minute)
		e.tap(t, c)
		r, err := e.link.RunOnce(ctx)
		require.NoError(t, err)
		require.Zero(t, r.Sent)
	}
	e.now = e.now.Add(6 * time.Minute)
	r, err := e.link.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, r.Sent, "the taps inside the spacing trigger one resubmission once it has passed")
	st := e.status(t, c)
	require.Equal(t, 1, st.Resubmissions)
	r, err = e.link.RunOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, r.Sent)
}

// TestRecheck: a card refused at its first-use check is listed with
// nothing owed; the payoff call checks it again and, approved, takes it
// off the list.
func TestRecheck(t *testing.T) {
	engines(t, func(t *testing.T, pg bool) {
		c := newCard(14)
		e := setup(t, pg, acquirer.Rules{Rules: []acquirer.Rule{
			{MTI: []string{"0100"}, PANRanges: []acquirer.PANRange{{From: c.pan, To: c.pan}}, Times: 1, ResponseCode: "05"},
		}})
		ctx := context.Background()
		e.tap(t, c)
		r, err := e.link.RunOnce(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, r.Checked)
		require.True(t, e.listed(c), "a card refused at its account check is refused at the gates")
		debts, err := e.store.Debts(ctx, c.token)
		require.NoError(t, err)
		require.Empty(t, debts)

		mux := http.NewServeMux()
		e.link.Register(mux, "op", &capping.Rules{Currency: gbp}, func(tk rider.Token) bool { return e.reg.Current().Contains(tk) })
		srv := httptest.NewServer(mux)
		defer srv.Close()
		req, err := http.NewRequest("POST", srv.URL+"/v1/riders/"+c.token.String()+"/debt/pay", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer op")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var d charging.DebtJSON
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
		require.False(t, d.Listed)
		require.Equal(t, "0.00", d.Owed)
		require.False(t, e.listed(c))
		checks := 0
		for _, le := range e.led.entries(t) {
			if le.MTI == "0100" {
				checks++
			}
		}
		require.Equal(t, 2, checks)
	})
}

// flakySender answers the first charge with an unacknowledged reversal
// and refuses the first reversal, as a link that went silent would.
type flakySender struct {
	*acquirer.Client
	mu        sync.Mutex
	dropped   bool
	reversals int
}

func (f *flakySender) Do(ctx context.Context, req acquirer.Request) (acquirer.Result, error) {
	f.mu.Lock()
	drop := !f.dropped && req.Kind == acquirer.KindCharge
	f.dropped = f.dropped || drop
	f.mu.Unlock()
	if drop {
		return acquirer.Result{}, &acquirer.ReversalPendingError{Original: acquirer.Original{MTI: "0200", STAN: "000042", Transmitted: "1201120000", Terminal: "G0000001", Kind: acquirer.KindCharge, Amount: req.Amount, Currency: req.Currency}}
	}
	return f.Client.Do(ctx, req)
}

func (f *flakySender) Reverse(ctx context.Context, orig acquirer.Original) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reversals++
	if f.reversals == 1 {
		return acquirer.ErrNoResponse
	}
	return nil
}

// TestReversalHeld: a charge whose reversal is not acknowledged is not
// sent again — not by the loop, not after a restart (the
// reversal is in the store) — until the reversal is; then it goes.
func TestReversalHeld(t *testing.T) {
	c := newCard(15)
	e := setup(t, false, acquirer.Rules{})
	ctx := context.Background()
	e.tap(t, c)
	e.charge(t, c, capping.DateOf(2026, 11, 23), 250)
	fs := &flakySender{Client: e.client}
	prom := prometheus.NewRegistry()
	link := charging.New(fs, e.store, e.vault, e.reg, charging.Options{Currency: gbp, Now: func() time.Time { return e.now }, Metrics: charging.NewMetrics(prom)})
	_, err := link.RunOnce(ctx)
	require.NoError(t, err)
	held, err := e.store.HeldReversals(ctx)
	require.NoError(t, err)
	require.Len(t, held, 1)
	require.NotContains(t, string(held[0].Reversal), c.pan)
	require.Equal(t, 1.0, metricValue(t, prom, "faregate_backend_acquirer_reversals_pending", ""))

	// The first reversal goes unanswered: nothing is sent.
	_, err = link.RunOnce(ctx)
	require.ErrorIs(t, err, acquirer.ErrNoResponse)
	require.Equal(t, backend.ChargePending, e.status(t, c).Status)
	require.Zero(t, held0200(t, e))

	// A restarted back office finds the reversal in the store, sends it,
	// and then the charge.
	restarted := charging.New(fs, e.store, e.vault, e.reg, charging.Options{Currency: gbp, Now: func() time.Time { return e.now }})
	r, err := restarted.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, r.Sent)
	require.Equal(t, 2, fs.reversals)
	require.Equal(t, backend.ChargeApproved, e.status(t, c).Status)
	require.Equal(t, 1, held0200(t, e))
}

func held0200(t *testing.T, e *env) int {
	n := 0
	for _, le := range e.led.entries(t) {
		if le.MTI == "0200" && le.ResponseCode == "00" {
			n++
		}
	}
	return n
}
