// Package console is the back office's web console (docs/console.md):
// server-rendered pages over the read API's own query functions
// (backend.ReadAPI), so a page shows exactly what the API answers. Every
// page but the login needs an operator session.
package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/faregate/faregate/backend"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is served.
const Prefix = "/console/"

// Options configure the console.
type Options struct {
	// API is the read API whose queries the pages show; its Token is the
	// operator token the login accepts (empty: no login by token).
	API *backend.ReadAPI
	// Users are the operators who log in with a user name and password
	// (nil: none). With neither a token nor users nobody can log in.
	Users *Users
	// Vault looks riders up by PAN (nil, or a vault without the token
	// key: look-up by token only).
	Vault *backend.Vault
	// SecureCookie marks the cookies Secure: set it when the console is
	// reached over TLS through a proxy. A request that arrives over TLS
	// gets Secure cookies without it.
	SecureCookie bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// LoginFailures is how many failed logins a client address may make
	// per LoginWindow before it must wait (defaults 5 and 1 minute).
	LoginFailures int
	LoginWindow   time.Duration
}

// Console serves the pages.
type Console struct {
	o        Options
	sessions *scs.SessionManager
	store    *sessionStore
	pages    map[string]*template.Template
	limiter  *limiter
	loginKey []byte // signs the login form's CSRF cookie
}

// Errors of New.
var ErrNoAPI = errors.New("console: no read API")

// New returns the console.
func New(o Options) (*Console, error) {
	if o.API == nil {
		return nil, ErrNoAPI
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LoginFailures <= 0 {
		o.LoginFailures = 5
	}
	if o.LoginWindow <= 0 {
		o.LoginWindow = time.Minute
	}
	c := &Console{o: o, pages: map[string]*template.Template{}, limiter: &limiter{max: o.LoginFailures, window: o.LoginWindow, now: o.Now, fails: map[string][]time.Time{}}}
	c.loginKey = make([]byte, 32)
	rand.Read(c.loginKey)
	c.store = newSessionStore(time.Now, maxSessions) // scs's expiries are on time.Now
	sm := scs.New()
	sm.Store = c.store
	sm.Lifetime = sessionLifetime
	sm.IdleTimeout = sessionIdle
	sm.Cookie.Name = "faregate_console"
	sm.Cookie.Path = Prefix
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteStrictMode
	sm.Cookie.Secure = o.SecureCookie
	sm.Cookie.Persist = false
	sm.ErrorFunc = func(w http.ResponseWriter, _ *http.Request, _ error) {
		http.Error(w, "session store error", http.StatusInternalServerError)
	}
	c.sessions = sm
	for _, name := range []string{"login", "overview", "rider", "denylist", "gates"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return c, nil
}

// Close ends every session.
func (c *Console) Close() {
	c.store.mu.Lock()
	defer c.store.mu.Unlock()
	clear(c.store.sessions)
}

// Handler returns the console's routes, all under Prefix.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", http.FileServerFS(static)))
	mux.HandleFunc("GET "+Prefix+"login", c.loginPage)
	mux.HandleFunc("POST "+Prefix+"login", c.login)
	mux.Handle("POST "+Prefix+"logout", c.auth(c.logout))
	mux.Handle("GET "+Prefix+"{$}", c.auth(c.overview))
	mux.Handle("GET "+Prefix+"rider", c.auth(c.rider))
	mux.Handle("POST "+Prefix+"rider", c.auth(c.riderByPAN))
	mux.Handle("GET "+Prefix+"denylist", c.auth(c.denylist))
	mux.Handle("GET "+Prefix+"gates", c.auth(c.gates))
	cop := http.NewCrossOriginProtection() // refuses cross-site POSTs (Sec-Fetch-Site, Origin)
	return headers(secureOverTLS(cop.Handler(c.sessions.LoadAndSave(mux))))
}

// secureOverTLS marks every cookie of an answer to a request that came
// over TLS Secure, so a console served over TLS never sends its session
// cookie in the clear, whatever Options.SecureCookie says.
func secureOverTLS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w = &secureCookies{ResponseWriter: w}
		}
		h.ServeHTTP(w, r)
	})
}

type secureCookies struct {
	http.ResponseWriter
	done bool
}

func (s *secureCookies) mark() {
	if s.done {
		return
	}
	s.done = true
	cs := s.Header()["Set-Cookie"]
	for i, c := range cs {
		if !strings.Contains(strings.ToLower(c), "; secure") {
			cs[i] = c + "; Secure"
		}
	}
}

func (s *secureCookies) WriteHeader(code int) {
	s.mark()
	s.ResponseWriter.WriteHeader(code)
}

func (s *secureCookies) Write(b []byte) (int, error) {
	s.mark()
	return s.ResponseWriter.Write(b)
}

func (s *secureCookies) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// headers adds the security headers every answer carries.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

const (
	keyOperator = "operator"
	keyUser     = "user" // the operator's user name; "" after a token login
	keyCSRF     = "csrf"
	keyLogin    = "login" // when the operator logged in, Unix seconds on Options.Now
	keySeen     = "seen"  // the session's last request, Unix seconds on Options.Now
)

// A session ends 12 hours after the login, or after an hour without a
// request. The session store expires it on time.Now; auth checks both
// again on Options.Now.
const (
	sessionLifetime = 12 * time.Hour
	sessionIdle     = time.Hour
)

// auth lets a request with an operator session through and sends any
// other to the login page.
func (c *Console) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, now := r.Context(), c.o.Now()
		ok := c.sessions.GetBool(ctx, keyOperator)
		if ok && c.expired(r, now) {
			if err := c.sessions.Destroy(ctx); err != nil {
				http.Error(w, "session store error", http.StatusInternalServerError)
				return
			}
			ok = false
		}
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
				return
			}
			http.Error(w, "login required", http.StatusUnauthorized)
			return
		}
		c.sessions.Put(ctx, keySeen, now.Unix())
		h(w, r)
	})
}

// expired reports whether the session outlived its lifetime or idled too
// long.
func (c *Console) expired(r *http.Request, now time.Time) bool {
	login := time.Unix(c.sessions.GetInt64(r.Context(), keyLogin), 0)
	seen := time.Unix(c.sessions.GetInt64(r.Context(), keySeen), 0)
	return now.Sub(login) >= sessionLifetime || now.Sub(seen) >= sessionIdle
}

// csrfToken returns the session's CSRF token, making one when it has none.
func (c *Console) csrfToken(r *http.Request) string {
	t := c.sessions.GetString(r.Context(), keyCSRF)
	if t == "" {
		t = newSecret()
		c.sessions.Put(r.Context(), keyCSRF, t)
	}
	return t
}

// checkCSRF reports whether the form's token is the session's.
func (c *Console) checkCSRF(r *http.Request) bool {
	want := c.sessions.GetString(r.Context(), keyCSRF)
	got := r.PostFormValue("csrf")
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// The login form's CSRF token is a signed double-submit cookie: nonce and
// HMAC of it, in a cookie and in the form; the form must carry the
// cookie's value and the HMAC must verify. Anonymous visitors get no
// server-side session, so the login page cannot fill the session store.
const loginCookie = "faregate_login"

func (c *Console) newLoginToken(w http.ResponseWriter) string {
	nonce := newSecret()
	m := hmac.New(sha256.New, c.loginKey)
	m.Write([]byte(nonce))
	v := nonce + "." + hex.EncodeToString(m.Sum(nil))
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: v, Path: Prefix + "login", MaxAge: 3600,
		HttpOnly: true, Secure: c.o.SecureCookie, SameSite: http.SameSiteStrictMode})
	return v
}

func (c *Console) checkLoginToken(r *http.Request) bool {
	ck, err := r.Cookie(loginCookie)
	if err != nil {
		return false
	}
	form := r.PostFormValue("csrf")
	if subtle.ConstantTimeCompare([]byte(form), []byte(ck.Value)) != 1 {
		return false
	}
	nonce, sig, ok := strings.Cut(ck.Value, ".")
	got, err := hex.DecodeString(sig)
	if !ok || err != nil {
		return false
	}
	m := hmac.New(sha256.New, c.loginKey)
	m.Write([]byte(nonce))
	return hmac.Equal(got, m.Sum(nil))
}

func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// equalSecret compares two secrets in constant time (their hashes, so the
// length does not leak either).
func equalSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return want != "" && subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

const maxForm = 4 << 10

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.sessions.GetBool(r.Context(), keyOperator) {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	c.renderLogin(w, r, http.StatusOK, "")
}

// renderLogin shows the login form (with a fresh CSRF token) for the ways
// to log in that are configured, and an error when there is one.
func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	data := map[string]any{"CSRF": c.newLoginToken(w), "ByToken": c.o.API.Token != "", "ByPassword": c.o.Users.Len() > 0}
	if msg != "" {
		data["Error"] = msg
	}
	c.render(w, r, code, "login", data)
}

// checkLogin reports whether the form's credentials are an operator's, and
// the user name for a password login. A form with a user name is checked
// against the users, any other against the operator token.
func (c *Console) checkLogin(r *http.Request) (string, bool, string) {
	if name := r.PostFormValue("user"); name != "" {
		who, ok := c.o.Users.check(name, r.PostFormValue("password"))
		return who, ok, "Wrong user name or password."
	}
	return "", c.o.API.Token != "" && equalSecret(r.PostFormValue("token"), c.o.API.Token), "Wrong operator token."
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	client := clientAddr(r)
	if wait := c.limiter.blocked(client); wait > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		c.renderLogin(w, r, http.StatusTooManyRequests, "Too many failed logins: try again in a minute.")
		return
	}
	if !c.checkLoginToken(r) {
		c.renderLogin(w, r, http.StatusForbidden, "The form expired: try again.")
		return
	}
	who, ok, wrong := c.checkLogin(r)
	if !ok {
		c.limiter.fail(client)
		c.renderLogin(w, r, http.StatusUnauthorized, wrong)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: Prefix + "login", MaxAge: -1, HttpOnly: true, Secure: c.o.SecureCookie, SameSite: http.SameSiteStrictMode})
	c.limiter.reset(client)
	if err := c.sessions.RenewToken(r.Context()); err != nil { // a new session id: no fixation
		http.Error(w, "session store error", http.StatusInternalServerError)
		return
	}
	c.sessions.Put(r.Context(), keyOperator, true)
	c.sessions.Put(r.Context(), keyUser, who)
	c.sessions.Put(r.Context(), keyLogin, c.o.Now().Unix())
	c.sessions.Put(r.Context(), keySeen, c.o.Now().Unix())
	c.sessions.Put(r.Context(), keyCSRF, newSecret())
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if !c.checkCSRF(r) {
		http.Error(w, "bad form token", http.StatusForbidden)
		return
	}
	if err := c.sessions.Destroy(r.Context()); err != nil {
		http.Error(w, "session store error", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter counts failed logins per client address in a sliding window.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	fails  map[string][]time.Time
}

// maxClients bounds the addresses the limiter remembers.
const maxClients = 10000

func (l *limiter) recent(client string, now time.Time) []time.Time {
	fs := l.fails[client]
	for len(fs) > 0 && now.Sub(fs[0]) >= l.window {
		fs = fs[1:]
	}
	if len(fs) == 0 {
		delete(l.fails, client)
		return nil
	}
	l.fails[client] = fs
	return fs
}

// blocked returns how long client must wait before trying again (0: not).
func (l *limiter) blocked(client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range []string{client, "*"} {
		if fs := l.recent(k, now); len(fs) >= l.max {
			return l.window - now.Sub(fs[0])
		}
	}
	return 0
}

func (l *limiter) fail(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.fails) >= maxClients {
		for k := range l.fails {
			l.recent(k, now)
		}
		if len(l.fails) >= maxClients {
			l.fails["*"] = append(l.fails["*"], now) // everyone shares one bucket under a flood
			return
		}
	}
	l.fails[client] = append(l.recent(client, now), now)
}

func (l *limiter) reset(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, client)
}

// render executes a page with the layout's common data.
func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, page string, data map[string]any) {
	data["Page"] = page
	data["LoggedIn"] = c.sessions.GetBool(r.Context(), keyOperator)
	data["User"] = c.sessions.GetString(r.Context(), keyUser)
	if _, ok := data["CSRF"]; !ok && data["LoggedIn"] == true {
		data["CSRF"] = c.csrfToken(r)
	}
	var b strings.Builder
	if err := c.pages[page].Execute(&b, data); err != nil {
		http.Error(w, "cannot render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write([]byte(b.String()))
}
