package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cookie names. Both are HttpOnly, SameSite=Strict and scoped to the
// console's prefix.
const (
	SessionCookie = "ff_console_session"
	// LoginCookie carries the login form's own CSRF token, before any
	// session exists.
	LoginCookie = "ff_console_login"
)

// maxSessions bounds the live sessions; the oldest goes first.
const maxSessions = 256

// session is one operator's login.
type session struct {
	key     string // the raw session id
	csrf    string // the per-session CSRF token of every form
	created time.Time
	expires time.Time
	flash   string // a one-time message for the next page
}

// checkCSRF compares a form's token with the session's in constant time.
func (s *session) checkCSRF(got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

// sessionStore keeps sessions in memory: they end with the process.
type sessionStore struct {
	mu   sync.Mutex
	mac  []byte // HMAC key of the cookie values, random per process
	ttl  time.Duration
	now  func() time.Time
	byID map[string]*session
}

func newSessionStore(ttl time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{mac: randomBytes(32), ttl: ttl, now: now, byID: map[string]*session{}}
}

// randomBytes returns n bytes from crypto/rand (which never fails on the
// platforms Go supports; it panics if it ever does).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("console: crypto/rand: " + err.Error())
	}
	return b
}

func randomToken() string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }

// sign returns the cookie value of a session id: the id and its HMAC.
func (st *sessionStore) sign(id string) string {
	m := hmac.New(sha256.New, st.mac)
	m.Write([]byte("ff-console-session\x00" + id))
	return id + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// create starts a session and returns it with its cookie value.
func (st *sessionStore) create() (*session, string) {
	now := st.now()
	s := &session{key: randomToken(), csrf: randomToken(), created: now, expires: now.Add(st.ttl)}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expire(now)
	for len(st.byID) >= maxSessions {
		var oldest *session
		for _, x := range st.byID {
			if oldest == nil || x.created.Before(oldest.created) {
				oldest = x
			}
		}
		delete(st.byID, oldest.key)
	}
	st.byID[s.key] = s
	return s, st.sign(s.key)
}

// expire drops ended sessions; the caller holds mu.
func (st *sessionStore) expire(now time.Time) {
	for k, s := range st.byID {
		if !now.Before(s.expires) {
			delete(st.byID, k)
		}
	}
}

// fromRequest returns the live session the request's cookie names, or nil.
// The cookie's MAC is checked in constant time before the lookup.
func (st *sessionStore) fromRequest(r *http.Request) *session {
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil
	}
	id, _, ok := strings.Cut(ck.Value, ".")
	if !ok || subtle.ConstantTimeCompare([]byte(st.sign(id)), []byte(ck.Value)) != 1 {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.byID[id]
	if s == nil {
		return nil
	}
	if !st.now().Before(s.expires) {
		delete(st.byID, id)
		return nil
	}
	return s
}

// end removes a session.
func (st *sessionStore) end(s *session) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.byID, s.key)
}

// setFlash leaves a one-time message for the session's next page.
func (st *sessionStore) setFlash(s *session, msg string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s.flash = msg
}

// takeFlash returns and clears the session's message.
func (st *sessionStore) takeFlash(s *session) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	m := s.flash
	s.flash = ""
	return m
}

// cookie returns a console cookie: HttpOnly, SameSite=Strict, on the
// console's path, Secure unless secureFor says the request may go without.
func (c *Console) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: c.prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.secureCookie(r),
	}
}

// secureCookie decides the Secure attribute: always, except with
// Options.PlainHTTPLoopback on a plain-HTTP request for a loopback host
// from a loopback peer.
func (c *Console) secureCookie(r *http.Request) bool {
	if !c.opts.PlainHTTPLoopback || r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = r.RemoteAddr
	}
	return !isLoopback(host) || !isLoopback(peer)
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameOrigin refuses a POST a browser says came from another site or
// origin: Sec-Fetch-Site cross-site or same-site (another port of the same
// host is same-site), or an Origin header naming another host. Browsers
// send "Origin: null" on form posts from a page with Referrer-Policy:
// no-referrer, as every console page has, so null passes to the CSRF check,
// as do requests without either header (other clients).
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// loginLimiter makes an address wait after too many wrong tokens.
type loginLimiter struct {
	mu       sync.Mutex
	now      func() time.Time
	failures map[string][]time.Time
}

// Login throttling: at most loginFailures wrong tokens per address within
// loginWindow.
const (
	loginFailures = 5
	loginWindow   = 10 * time.Minute
	maxTracked    = 10_000
)

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, failures: map[string][]time.Time{}}
}

// peerHost is the address a limit applies to: the peer's IP.
func peerHost(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// recent returns addr's failures still inside the window; the caller holds mu.
func (l *loginLimiter) recent(addr string) []time.Time {
	cut := l.now().Add(-loginWindow)
	f := l.failures[addr]
	i := 0
	for i < len(f) && f[i].Before(cut) {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.failures, addr)
	} else {
		l.failures[addr] = f
	}
	return f
}

// blocked reports whether addr must wait, and how long.
func (l *loginLimiter) blocked(addr string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.recent(addr)
	if len(f) < loginFailures {
		return 0, false
	}
	return f[0].Add(loginWindow).Sub(l.now()), true
}

// fail records a wrong token from addr.
func (l *loginLimiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) >= maxTracked {
		clear(l.failures)
	}
	l.failures[addr] = append(l.recent(addr), l.now())
}

// tokenMatches compares a typed token with the admin token in constant
// time, whatever their lengths (both are hashed first).
func tokenMatches(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1 && got != ""
}

// safeNext reports whether next is a path of the console to go back to
// after login: under the prefix, with no scheme, host or backslash.
func (c *Console) safeNext(next string) bool {
	return strings.HasPrefix(next, c.prefix) && !strings.HasPrefix(next, "//") &&
		!strings.ContainsAny(next, "\\\r\n") && !strings.Contains(next, "/../")
}

func queryEscape(s string) string { return url.QueryEscape(s) }

// loginView is the data of the login page.
type loginView struct {
	Next  string
	Token string // the login form's CSRF token
	Error string
}

// loginPage shows the login form, with a fresh login token in a cookie
// and in the form.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.sessions.fromRequest(r) != nil {
		http.Redirect(w, r, c.prefix, http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, r.URL.Query().Get("next"), "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, next, msg string) {
	if !c.safeNext(next) {
		next = c.prefix
	}
	tok := randomToken()
	http.SetCookie(w, c.cookie(r, LoginCookie, tok, 3600))
	c.render(w, r, nil, status, "login", page{Title: "Sign in", Data: loginView{Next: next, Token: tok, Error: msg}})
}

// login checks the admin token and starts a session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !sameOrigin(r) {
		c.renderStatus(w, r, nil, http.StatusForbidden, "Refused", "This form was sent from another site.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.renderStatus(w, r, nil, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	next := r.PostForm.Get("next")
	ck, err := r.Cookie(LoginCookie)
	form := r.PostForm.Get("login_csrf")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(form)) != 1 {
		c.showLogin(w, r, http.StatusForbidden, next, "The sign-in form expired or was not sent from this page. Type the token again.")
		return
	}
	addr := peerHost(r)
	if wait, ok := c.logins.blocked(addr); ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		c.opts.Logger.Warn("console: login throttled", "remote_addr", r.RemoteAddr)
		c.showLogin(w, r, http.StatusTooManyRequests, next,
			"Too many wrong tokens from this address: wait "+humanDuration(wait)+" and try again.")
		return
	}
	if !tokenMatches(r.PostForm.Get("token"), c.opts.AdminToken) {
		c.logins.fail(addr)
		c.opts.Logger.Warn("console: login refused: wrong admin token", "remote_addr", r.RemoteAddr)
		c.showLogin(w, r, http.StatusUnauthorized, next, "That is not the admin token.")
		return
	}
	_, value := c.sessions.create()
	http.SetCookie(w, c.cookie(r, SessionCookie, value, int(c.opts.SessionTTL/time.Second)))
	http.SetCookie(w, c.cookie(r, LoginCookie, "", -1))
	c.opts.Logger.Info("console: signed in", "remote_addr", r.RemoteAddr)
	if !c.safeNext(next) {
		next = c.prefix
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.end(s)
	http.SetCookie(w, c.cookie(r, SessionCookie, "", -1))
	c.opts.Logger.Info("console: signed out", "remote_addr", r.RemoteAddr)
	http.Redirect(w, r, c.prefix+"login", http.StatusSeeOther)
}
