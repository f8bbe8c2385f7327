package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/backend/console"
	"github.com/faregate/faregate/capping"
)

const (
	alicePassword = "correct horse battery staple"
	bobPassword   = "bob's long enough password"
)

// hash is a bcrypt hash at the minimum cost: tests stay fast, the code
// path is the same.
func hash(t *testing.T, password string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	require.NoError(t, err)
	return string(h)
}

func usersFile(t *testing.T) []byte {
	return []byte("# operators\nalice:" + hash(t, alicePassword) + "\n\n  bob:" + hash(t, bobPassword) + "  \n")
}

func TestParseUsers(t *testing.T) {
	u, err := console.ParseUsers(usersFile(t))
	require.NoError(t, err)
	require.Equal(t, 2, u.Len())
	good := hash(t, alicePassword)
	for name, file := range map[string]string{
		"empty":          "# nobody\n",
		"no hash":        "alice\n",
		"a password":     "alice:" + alicePassword + "\n",
		"bad name":       "al ice:" + good + "\n",
		"long name":      strings.Repeat("a", 65) + ":" + good + "\n",
		"twice":          "alice:" + good + "\nalice:" + good + "\n",
		"truncated hash": "alice:" + good[:59] + "\n",
		"long line":      "alice:" + good + strings.Repeat("x", 2000) + "\n",
	} {
		_, err := console.ParseUsers([]byte(file))
		require.ErrorIs(t, err, console.ErrUsersFile, name)
		require.NotContains(t, err.Error(), alicePassword, name)
	}
	_, err = console.ParseUsers(make([]byte, console.MaxUsersFile+1))
	require.ErrorIs(t, err, console.ErrUsersFile)
}

func TestHashPassword(t *testing.T) {
	_, err := console.HashPassword([]byte("short"))
	require.ErrorIs(t, err, console.ErrPasswordTooShort)
	_, err = console.HashPassword([]byte(strings.Repeat("p", console.MaxPasswordLength+1)))
	require.ErrorIs(t, err, console.ErrPasswordTooLong)
	h, err := console.HashPassword([]byte(alicePassword))
	require.NoError(t, err)
	require.NotContains(t, h, alicePassword)
	cost, err := bcrypt.Cost([]byte(h))
	require.NoError(t, err)
	require.Equal(t, console.PasswordCost, cost)
	require.NoError(t, bcrypt.CompareHashAndPassword([]byte(h), []byte(alicePassword)))
	_, err = console.ParseUsers([]byte("alice:" + h + "\n"))
	require.NoError(t, err, "what HashPassword makes is what a users file takes")
}

// newConsole serves a console over an empty back office, with o's users
// and token, on plain HTTP or TLS.
func newConsole(t *testing.T, token string, users []byte, tls bool) (*httptest.Server, *clock) {
	t.Helper()
	store, err := backend.OpenSQLite(context.Background(), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	rules, err := capping.ParseRules([]byte(rulesJSON))
	require.NoError(t, err)
	clk := &clock{}
	clk.Set(time.Now())
	o := console.Options{API: &backend.ReadAPI{Store: store, Rules: rules, Token: token, Now: clk.Now}, Now: clk.Now}
	if users != nil {
		o.Users, err = console.ParseUsers(users)
		require.NoError(t, err)
	}
	con, err := console.New(o)
	require.NoError(t, err)
	t.Cleanup(con.Close)
	srv := httptest.NewUnstartedServer(con.Handler())
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, clk
}

// login posts the login form with a fresh CSRF token.
func login(t *testing.T, c *http.Client, base string, form url.Values) (*http.Response, string) {
	t.Helper()
	_, body := get(t, c, base+"/console/login")
	m := csrfRE.FindStringSubmatch(body)
	require.NotEmpty(t, m, body)
	form.Set("csrf", m[1])
	return post(t, c, base+"/console/login", form)
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, ck := range resp.Cookies() {
		if ck.Name == "faregate_console" {
			return ck
		}
	}
	return nil
}

// TestPasswordLogin: operators from the users file log in with user name
// and password; a wrong password and an unknown user get the same answer
// and count towards the client's failure limit; the session names the
// operator; the token form is absent without a token.
func TestPasswordLogin(t *testing.T) {
	srv, _ := newConsole(t, "", usersFile(t), false)
	c := client(t)
	for _, p := range []string{"", "gates", "denylist", "rider"} {
		resp, _ := get(t, c, srv.URL+"/console/"+p)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, p)
		require.Equal(t, "/console/login", resp.Header.Get("Location"), p)
	}
	_, body := get(t, c, srv.URL+"/console/login")
	require.Contains(t, body, `id="password"`)
	require.NotContains(t, body, `id="token"`, "no operator token configured")

	resp, body := login(t, c, srv.URL, url.Values{"user": {"alice"}, "password": {bobPassword}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, body, "Wrong user name or password.")
	resp, body2 := login(t, c, srv.URL, url.Values{"user": {"mallory"}, "password": {alicePassword}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, body2, "Wrong user name or password.", "an unknown user reads like a wrong password")
	resp, _ = login(t, c, srv.URL, url.Values{"token": {""}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no token configured: an empty one is no way in")

	resp, _ = login(t, c, srv.URL, url.Values{"user": {"alice"}, "password": {alicePassword}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	ck := sessionCookie(resp)
	require.NotNil(t, ck)
	require.True(t, ck.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	require.False(t, ck.Secure, "plain HTTP")
	resp, body = get(t, c, srv.URL+"/console/gates")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `id="user-name">alice<`)

	// The failure limit: 5 a minute per client address, then 429 even
	// for the right password.
	c = client(t)
	for range 5 {
		resp, _ = login(t, c, srv.URL, url.Values{"user": {"bob"}, "password": {"a guess, a guess"}})
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	resp, _ = login(t, c, srv.URL, url.Values{"user": {"bob"}, "password": {bobPassword}})
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
}

// TestSecureCookieOverTLS: served over TLS, the session and login cookies
// are Secure without Options.SecureCookie.
func TestSecureCookieOverTLS(t *testing.T) {
	srv, _ := newConsole(t, operatorToken, nil, true)
	c := client(t)
	c.Transport = srv.Client().Transport
	resp, _ := get(t, c, srv.URL+"/console/login")
	require.NotEmpty(t, resp.Cookies())
	for _, ck := range resp.Cookies() {
		require.True(t, ck.Secure, ck.Name)
	}
	resp, _ = login(t, c, srv.URL, url.Values{"token": {operatorToken}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	ck := sessionCookie(resp)
	require.NotNil(t, ck)
	require.True(t, ck.Secure)
	require.True(t, ck.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
}

// TestSessionExpiry: a session unused for more than an hour is gone, and
// so is one older than 12 hours however busy.
func TestSessionExpiry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		every time.Duration // a page this often
		until time.Duration
	}{{"idle", 61 * time.Minute, 61 * time.Minute}, {"lifetime", 50 * time.Minute, 12*time.Hour + time.Minute}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, clk := newConsole(t, "", usersFile(t), false)
			c := client(t)
			start := time.Now()
			clk.Set(start)
			resp, _ := login(t, c, srv.URL, url.Values{"user": {"bob"}, "password": {bobPassword}})
			require.Equal(t, http.StatusSeeOther, resp.StatusCode)
			for at := tc.every; at < tc.until; at += tc.every {
				clk.Set(start.Add(at))
				resp, _ = get(t, c, srv.URL+"/console/")
				require.Equal(t, http.StatusOK, resp.StatusCode, "at %v the session still holds", at)
			}
			clk.Set(start.Add(tc.until))
			resp, _ = get(t, c, srv.URL+"/console/")
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, "expired")
			require.Equal(t, "/console/login", resp.Header.Get("Location"))
		})
	}
}

// TestCSRFOnStateChanges: with a session, the POSTs (rider look-up by PAN,
// logout) need the session's form token.
func TestCSRFOnStateChanges(t *testing.T) {
	srv, _ := newConsole(t, "", usersFile(t), false)
	c := client(t)
	resp, _ := login(t, c, srv.URL, url.Values{"user": {"alice"}, "password": {alicePassword}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	for _, p := range []string{"rider", "logout"} {
		for _, form := range []url.Values{{}, {"csrf": {strings.Repeat("0", 64)}}} {
			form.Set("pan", "4761739001010010")
			resp, _ = post(t, c, srv.URL+"/console/"+p, form)
			require.Equal(t, http.StatusForbidden, resp.StatusCode, p)
		}
	}
	resp, _ = get(t, c, srv.URL+"/console/")
	require.Equal(t, http.StatusOK, resp.StatusCode, "still logged in")
}
