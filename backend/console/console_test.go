package console_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/backend/console"
	"github.com/faregate/faregate/backend/denylistreg"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
)

const rulesJSON = `{
  "currency": "GBP", "time_zone": "Europe/London", "service_day_start": "04:30", "week_start": "monday",
  "fares": [{"id": "bus", "modes": ["bus"], "price": "1.75"}, {"id": "rail", "modes": ["rail"], "price": "2.90"}],
  "caps": [
    {"id": "bus-day", "amount": "5.25", "period": {"kind": "service_day"}, "modes": ["bus"]},
    {"id": "z1-2-day", "amount": "8.90", "period": {"kind": "service_day"}, "zones": ["1", "2"]},
    {"id": "z1-2-week", "amount": "44.70", "period": {"kind": "calendar_week"}, "zones": ["1", "2"]}
  ]
}`

const operatorToken = "console-test-operator-token"

var tokenKey = []byte("console test token key")

// clock is the test's clock, read by the server's goroutines.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// backoffice is a back office filled with real data: gates upload signed
// batches with sealed card data over HTTP, days are settled, two charges
// are declined and their riders deny-listed.
type backoffice struct {
	url      string
	declined []string // PANs of riders with a declined charge
	declTok  []rider.Token
}

func pan(i int) string { return fmt.Sprintf("47617390%08d", i) }

func newBackoffice(t *testing.T) *backoffice {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := backend.OpenSQLite(ctx, dir)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	rules, err := capping.ParseRules([]byte(rulesJSON))
	require.NoError(t, err)
	clk := &clock{}
	clk.Set(time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC))
	dlStore, err := denylistreg.OpenSQLite(ctx, filepath.Join(dir, "denylist.db"))
	require.NoError(t, err)
	t.Cleanup(func() { dlStore.Close() })
	_, dlKey, _ := ed25519.GenerateKey(nil)
	reg, err := denylistreg.New(ctx, dlStore, denylistreg.Options{Key: dlKey, Now: clk.Now})
	require.NoError(t, err)
	vaultKey, err := tap.GenerateVaultKey(nil)
	require.NoError(t, err)
	vault := backend.NewVault(store, vaultKey, tokenKey)
	api := &backend.ReadAPI{Store: store, Rules: rules, Token: operatorToken, Now: clk.Now, DenyList: reg}
	users, err := console.ParseUsers(usersFile(t))
	require.NoError(t, err)
	con, err := console.New(console.Options{API: api, Vault: vault, Users: users, Now: clk.Now})
	require.NoError(t, err)
	t.Cleanup(con.Close)
	ingest := backend.NewIngest(store, backend.NewMetrics(nil), backend.IngestOptions{Now: clk.Now})
	srv := httptest.NewServer((&backend.Server{Ingest: ingest, Read: api, Extra: map[string]http.Handler{console.Prefix: con.Handler()}}).Handler())
	t.Cleanup(func() { srv.Close(); ingest.Close() })

	type gate struct {
		id  string
		key ed25519.PrivateKey
		seq uint64
	}
	b := &backoffice{url: srv.URL}
	var gates []*gate
	for _, id := range []string{"G-001", "G-002", "BUS-07"} {
		pub, key, err := ed25519.GenerateKey(nil)
		require.NoError(t, err)
		require.NoError(t, store.AddGate(ctx, id, pub, clk.Now()))
		gates = append(gates, &gate{id: id, key: key})
	}
	// running is the deny-list version a gate runs: the newest, but the
	// bus never got past version 0.
	running := func(id string) uint64 {
		if id == "BUS-07" {
			return 0
		}
		return reg.Current().Version()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	days := []capping.Date{}
	first, err := capping.ParseDate("2026-11-23")
	require.NoError(t, err)
	for d := range 3 {
		day := first + capping.Date(d)
		days = append(days, day)
		start, _ := backend.DayBounds(rules, day)
		for gi, g := range gates {
			var recs []tap.Record
			for r := range 24 {
				i := r
				at := start.Add(time.Duration(2+rng.IntN(16))*time.Hour + time.Duration(rng.IntN(3600))*time.Second)
				mode, zones := "rail", []string{"1", "2"}
				if g.id == "BUS-07" {
					mode, zones = "bus", nil
				}
				g.seq++
				id := uuid.Must(uuid.NewV7())
				rec := tap.Record{ID: id, Gate: g.id, Seq: g.seq, Time: at, LocalTime: at.Format(time.RFC3339),
					Location: tap.Location{Operator: "metro", Stop: fmt.Sprintf("Stop %d", gi), Zones: zones, Mode: mode, Role: tap.RoleEntry},
					Kind:     tap.KindEMV, Scheme: "visa", ODA: tap.ODA{Method: "fDDA", OK: true}, Decision: tap.Open, Reason: "ok", DenylistVersion: running(g.id)}
				if r%11 == 10 { // a forged card: refused, never charged
					rec.Decision, rec.Reason, rec.ODA = tap.Reject, "oda_failed", tap.ODA{Method: "fDDA", Stage: "icc", Reason: "hash"}
				} else {
					p := pan(i % 16)
					rec.Token = rider.NewToken(tokenKey, p, "00")
					rec.MaskedPAN = p[:6] + "******" + p[12:]
					if listed, _, _ := reg.Entry(ctx, rec.Token); listed.Version > 0 && listed.Version <= running(g.id) {
						rec.Decision, rec.Reason = tap.Reject, "denied" // the gate knows the late decline
					} else {
						rec.Sealed, err = tap.SealCardData(vaultKey.PublicKey(), g.id, id, tap.CardData{PAN: p, PSN: "00", Expiry: "291231", Scheme: "visa"})
						require.NoError(t, err)
					}
				}
				recs = append(recs, rec)
			}
			batch := tap.Batch{Gate: g.id, Taps: recs, DenylistVersion: running(g.id)}
			if g.id == "BUS-07" { // a bus out of reach: a backlog, and no new deny list
				oldest := recs[len(recs)-1].Time.Add(10 * time.Minute)
				batch.Backlog, batch.OldestUnsent = 17, &oldest
			}
			body, err := json.Marshal(batch)
			require.NoError(t, err)
			req, err := http.NewRequest("POST", srv.URL+"/v1/taps", bytes.NewReader(body))
			require.NoError(t, err)
			tap.SignRequest(req, g.id, g.key, clk.Now(), body)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, string(msg))
		}
		// The day ends and is settled.
		_, end := backend.DayBounds(rules, day)
		clk.Set(end.Add(3 * time.Hour))
		_, err = (&backend.Settler{Store: store, Rules: rules, Now: clk.Now}).Settle(ctx, day, backend.Shard{I: 0, N: 1})
		require.NoError(t, err)
		if d > 0 {
			continue
		}
		// The first day's settlement: two late declines, deny-listed
		// (versions 1 and 2, which the gates then report running).
		cs, err := store.Charges(ctx, days[0])
		require.NoError(t, err)
		for _, c := range cs[:2] {
			require.NoError(t, store.RecordOutcome(ctx, c.ID, backend.Outcome{Status: backend.ChargeDeclined, Code: "51", Reference: "RRN" + fmt.Sprint(c.ID), At: clk.Now()}))
			_, err := reg.AddLateDecline(ctx, c.Token, c.Amount, capping.Currency{Code: "GBP", Digits: 2}, clk.Now(), "settlement "+days[0].String())
			require.NoError(t, err)
			for i := range 16 {
				if rider.NewToken(tokenKey, pan(i), "00") == c.Token {
					b.declined = append(b.declined, pan(i))
				}
			}
			b.declTok = append(b.declTok, c.Token)
		}
		require.Len(t, b.declined, 2)
		for _, c := range cs[2:4] {
			require.NoError(t, store.RecordOutcome(ctx, c.ID, backend.Outcome{Status: backend.ChargeApproved, Code: "00", At: clk.Now()}))
		}
	}
	clk.Set(clk.Now().Add(time.Hour))
	return b
}

// client returns an HTTP client with a cookie jar that does not follow
// redirects.
func client(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f.]+)"`)

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestLoginEnforced: every page but the login needs a session; the login
// needs the form's CSRF token and the operator token, and is rate limited;
// the session cookie is HttpOnly and SameSite=Strict and renewed at login.
func TestLoginEnforced(t *testing.T) {
	b := newBackoffice(t)
	c := client(t)
	for _, p := range []string{"", "rider", "rider?token=00000000000000000000000000000000", "denylist", "gates"} {
		resp, _ := get(t, c, b.url+"/console/"+p)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, p)
		require.Equal(t, "/console/login", resp.Header.Get("Location"), p)
	}
	resp, _ := post(t, c, b.url+"/console/rider", url.Values{"pan": {b.declined[0]}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "PAN look-up without a session")

	// A session id planted before login (fixation) is never the one the
	// operator gets.
	u, _ := url.Parse(b.url + "/console/")
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "faregate_console", Value: "planted-by-an-attacker", Path: "/console/"}})

	resp, body := get(t, c, b.url+"/console/login")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	require.NotEmpty(t, csrfRE.FindStringSubmatch(body), "the login form carries a CSRF token")
	for _, ck := range resp.Cookies() {
		require.NotEqual(t, "faregate_console", ck.Name, "no session before login")
		require.Equal(t, "faregate_login", ck.Name)
		require.True(t, ck.HttpOnly)
		require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	}

	resp, _ = post(t, c, b.url+"/console/login", url.Values{"token": {operatorToken}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "no CSRF token")
	resp, _ = post(t, c, b.url+"/console/login", url.Values{"token": {operatorToken}, "csrf": {strings.Repeat("0", 64) + "." + strings.Repeat("0", 64)}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a wrong CSRF token")
	_, body = get(t, c, b.url+"/console/login")
	csrf := csrfRE.FindStringSubmatch(body)[1]
	bare := client(t) // the form's token without its cookie
	resp, _ = post(t, bare, b.url+"/console/login", url.Values{"token": {operatorToken}, "csrf": {csrf}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a CSRF token without its cookie")
	resp, _ = get(t, c, b.url+"/console/gates")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)

	resp, body = post(t, c, b.url+"/console/login", url.Values{"token": {"wrong"}, "csrf": {csrf}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, body, "Wrong operator token")
	csrf = csrfRE.FindStringSubmatch(body)[1]

	resp, _ = post(t, c, b.url+"/console/login", url.Values{"token": {operatorToken}, "csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/console/", resp.Header.Get("Location"))
	var after string
	for _, ck := range resp.Cookies() {
		if ck.Name == "faregate_console" {
			after = ck.Value
			require.True(t, ck.HttpOnly)
			require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
			require.Equal(t, "/console/", ck.Path)
			require.False(t, ck.Secure, "plain HTTP here; --console-secure-cookie sets it")
		}
	}
	require.NotEmpty(t, after)
	require.NotEqual(t, "planted-by-an-attacker", after, "a new session id at login")
	for _, p := range []string{"", "denylist", "gates", "rider?token=" + b.declTok[0].String()} {
		resp, body := get(t, c, b.url+"/console/"+p)
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		require.NotContains(t, body, b.declined[0], "never a PAN on a page")
	}
	// The PAN look-up: the vault gives the token, the PAN goes nowhere.
	resp, body = get(t, c, b.url+"/console/rider")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	csrf = csrfRE.FindStringSubmatch(body)[1]
	resp, _ = post(t, c, b.url+"/console/rider", url.Values{"pan": {b.declined[0]}, "psn": {"00"}, "csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/console/rider?token="+b.declTok[0].String(), resp.Header.Get("Location"))
	resp, body = get(t, c, b.url+resp.Header.Get("Location"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, b.declined[0][:6]+"******"+b.declined[0][12:])
	require.Contains(t, body, `id="owed"`)

	// Log out: the session is gone.
	resp, _ = post(t, c, b.url+"/console/logout", url.Values{"csrf": {"nope"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = post(t, c, b.url+"/console/logout", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, _ = get(t, c, b.url+"/console/")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)

	// Rate limit: 5 failures a minute per client address, then 429 even
	// with the right token.
	c = client(t)
	_, body = get(t, c, b.url+"/console/login")
	csrf = csrfRE.FindStringSubmatch(body)[1]
	for range 5 { // the success above reset the count
		resp, body = post(t, c, b.url+"/console/login", url.Values{"token": {"guess"}, "csrf": {csrf}})
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		csrf = csrfRE.FindStringSubmatch(body)[1]
	}
	resp, _ = post(t, c, b.url+"/console/login", url.Values{"token": {operatorToken}, "csrf": {csrf}})
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
}

// TestBrowser drives the console in Debian's chromium with Playwright
// (e2e/console.mjs): login enforced, and every page shows the read API's
// numbers. Screenshots go to FAREGATE_E2E_ARTIFACTS or a temporary
// directory the test prints.
func TestBrowser(t *testing.T) {
	skip := t.Skipf
	if os.Getenv("FAREGATE_CONSOLE_E2E_REQUIRED") != "" { // .ci/run installed them
		skip = t.Fatalf
	}
	chromium := os.Getenv("FAREGATE_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		skip("no chromium at %s (apt-get install chromium): browser test skipped", chromium)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("no node in PATH: browser test skipped")
	}
	if _, err := os.Stat("e2e/node_modules/playwright-core"); err != nil {
		skip("no playwright-core (cd backend/console/e2e && npm ci): browser test skipped")
	}
	b := newBackoffice(t)
	art := os.Getenv("FAREGATE_E2E_ARTIFACTS")
	if art == "" {
		art, err = os.MkdirTemp("", "faregate-console-e2e-")
		require.NoError(t, err)
	}
	require.NoError(t, os.MkdirAll(art, 0o755))
	t.Logf("screenshots in %s", art)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "e2e/console.mjs")
	cmd.Env = append(os.Environ(),
		"FAREGATE_URL="+b.url, "FAREGATE_OPERATOR_TOKEN="+operatorToken, "FAREGATE_CHROMIUM="+chromium,
		"FAREGATE_OPERATOR_USER=alice", "FAREGATE_OPERATOR_PASSWORD="+alicePassword,
		"FAREGATE_RIDER="+b.declTok[0].String(), "FAREGATE_RIDER_PAN="+b.declined[0],
		"FAREGATE_ARTIFACTS="+art, "FAREGATE_USER_DATA="+t.TempDir())
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	require.NoError(t, err)
}

// TestSessionStore: sessions expire, and the store keeps at most its bound,
// dropping expired sessions first, then the one closest to expiry.
func TestSessionStore(t *testing.T) {
	clk := &clock{}
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	clk.Set(t0)
	s := console.NewSessionStoreForTest(clk.Now, 3)
	require.NoError(t, s.Commit("a", []byte("A"), t0.Add(time.Minute)))
	require.NoError(t, s.Commit("b", []byte("B"), t0.Add(time.Hour)))
	require.NoError(t, s.Commit("c", []byte("C"), t0.Add(2*time.Hour)))
	b, ok, err := s.Find("a")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []byte("A"), b)
	clk.Set(t0.Add(2 * time.Minute))
	_, ok, _ = s.Find("a")
	require.False(t, ok, "expired")
	require.NoError(t, s.Commit("d", []byte("D"), t0.Add(3*time.Hour)))
	require.NoError(t, s.Commit("e", []byte("E"), t0.Add(3*time.Hour)))
	_, ok, _ = s.Find("b")
	require.False(t, ok, "the session closest to expiry made room")
	for _, k := range []string{"c", "d", "e"} {
		_, ok, _ = s.Find(k)
		require.True(t, ok, k)
	}
	require.NoError(t, s.Delete("c"))
	_, ok, _ = s.Find("c")
	require.False(t, ok)
}
