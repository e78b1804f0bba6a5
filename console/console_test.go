package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/console"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// pages are the console's pages, for checks that hold on each.
var pages = []string{"/console/", "/console/suspended", "/console/executions/order-1", "/console/keys", "/console/no-such-page"}

func TestAuth(t *testing.T) {
	t.Run("without a session every page redirects to the login form", func(t *testing.T) {
		f := newFixture(t)
		f.suspend("order-1", 0, nil, "approve")
		b := f.browser()
		for _, p := range pages {
			a := b.get(p)
			require.Equal(t, http.StatusSeeOther, a.status, p)
			require.True(t, strings.HasPrefix(a.header.Get("Location"), "/console/login"), p)
			require.NotContains(t, a.body, "<h1>", p)
		}
		require.Equal(t, "/console/login?next=%2Fconsole%2Fsuspended%3Ftag%3Dx", b.get("/console/suspended?tag=x").header.Get("Location"))
	})

	t.Run("without a session a form post redirects and changes nothing", func(t *testing.T) {
		f := newFixture(t)
		f.suspend("order-1", 0, nil, "approve")
		b := f.browser()
		a := b.post("/console/executions/order-1/cancel", url.Values{"confirm": {"yes"}})
		require.Equal(t, http.StatusSeeOther, a.status)
		a = b.post("/console/keys/rotate", url.Values{"new_kid": {"k2"}, "grace": {"1h"}})
		require.Equal(t, http.StatusSeeOther, a.status)
		list, err := f.e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{})
		require.NoError(t, err)
		require.Len(t, list.Executions, 1)
		kids, err := f.e.ListKids(context.Background())
		require.NoError(t, err)
		require.Equal(t, "k1", *kids.Partitions[0].CurrentKid)
	})

	t.Run("a wrong token is refused and starts no session", func(t *testing.T) {
		f := newFixture(t)
		b := f.browser()
		a := b.login("not-the-token")
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Contains(t, a.body, "That is not the admin token.")
		require.NotContains(t, b.cookies, console.SessionCookie)
		require.Equal(t, http.StatusSeeOther, b.get("/console/").status)
		require.Contains(t, f.logs.String(), "console: login refused")
		require.NotContains(t, f.logs.String(), "not-the-token")
	})

	t.Run("the right token starts a session whose cookie holds no token", func(t *testing.T) {
		f := newFixture(t)
		b := f.browser()
		a := b.login(adminToken)
		require.Equal(t, http.StatusSeeOther, a.status)
		require.Equal(t, "/console/", a.header.Get("Location"))
		ck := b.cookies[console.SessionCookie]
		require.NotNil(t, ck)
		require.True(t, ck.HttpOnly)
		require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
		require.Equal(t, "/console/", ck.Path)
		require.NotContains(t, ck.Value, adminToken)
		require.Regexp(t, `^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$`, ck.Value, "a session id and its HMAC")
		page := b.get("/console/")
		require.Equal(t, http.StatusOK, page.status)
		require.Contains(t, page.body, "<h1>Overview</h1>")
		require.NotContains(t, page.body, adminToken)
	})

	t.Run("the cookie is Secure unless plain HTTP on loopback is allowed", func(t *testing.T) {
		plain := newFixture(t)
		b := plain.browser()
		b.login(adminToken)
		require.False(t, b.cookies[console.SessionCookie].Secure, "plain HTTP on loopback with PlainHTTPLoopback")

		proxied := plain.browser()
		proxied.header.Set("X-Forwarded-Proto", "https")
		proxied.login(adminToken)
		require.True(t, proxied.cookies[console.SessionCookie].Secure, "behind a TLS proxy")

		strict := newFixture(t, func(o *console.Options) { o.PlainHTTPLoopback = false })
		s := strict.browser()
		s.login(adminToken)
		require.True(t, s.cookies[console.SessionCookie].Secure)
		require.True(t, s.cookies[console.LoginCookie] == nil || s.cookies[console.LoginCookie].Secure)
	})

	t.Run("a login post without the form's token is refused", func(t *testing.T) {
		f := newFixture(t)
		b := f.browser()
		b.get("/console/login")
		a := b.post("/console/login", url.Values{"token": {adminToken}})
		require.Equal(t, http.StatusForbidden, a.status)
		require.NotContains(t, b.cookies, console.SessionCookie)
	})

	t.Run("a tampered or unknown session cookie is no session", func(t *testing.T) {
		f := newFixture(t)
		b := f.signedIn()
		ck := b.cookies[console.SessionCookie]
		id, mac, _ := strings.Cut(ck.Value, ".")
		for _, v := range []string{id + "." + strings.Repeat("A", len(mac)), id, "x." + mac, adminToken} {
			forged := f.browser()
			forged.cookies[console.SessionCookie] = &http.Cookie{Name: console.SessionCookie, Value: v}
			require.Equal(t, http.StatusSeeOther, forged.get("/console/").status, v)
		}
	})

	t.Run("after logout the old cookie is no session", func(t *testing.T) {
		f := newFixture(t)
		b := f.signedIn()
		old := *b.cookies[console.SessionCookie]
		a := b.post("/console/logout", url.Values{"csrf": {b.csrf()}})
		require.Equal(t, http.StatusSeeOther, a.status)
		require.Equal(t, "/console/login", a.header.Get("Location"))
		replay := f.browser()
		replay.cookies[old.Name] = &old
		require.Equal(t, http.StatusSeeOther, replay.get("/console/").status)
	})

	t.Run("a session ends after its TTL", func(t *testing.T) {
		f := newFixture(t, func(o *console.Options) { o.SessionTTL = time.Hour })
		b := f.signedIn()
		require.Equal(t, http.StatusOK, b.get("/console/").status)
		f.clock.Advance(time.Hour)
		require.Equal(t, http.StatusSeeOther, b.get("/console/").status)
	})

	t.Run("too many wrong tokens make the address wait", func(t *testing.T) {
		f := newFixture(t)
		b := f.browser()
		for range 5 {
			require.Equal(t, http.StatusUnauthorized, b.login("wrong").status)
		}
		a := b.login(adminToken)
		require.Equal(t, http.StatusTooManyRequests, a.status)
		require.NotEmpty(t, a.header.Get("Retry-After"))
		require.NotContains(t, b.cookies, console.SessionCookie)
		f.clock.Advance(11 * time.Minute)
		require.Equal(t, http.StatusSeeOther, b.login(adminToken).status)
	})

	t.Run("next only leads back into the console", func(t *testing.T) {
		f := newFixture(t)
		for next, want := range map[string]string{
			"/console/keys":           "/console/keys",
			"//evil.example/console/": "/console/",
			"https://evil.example/":   "/console/",
			"/console/../admin":       "/console/",
			"/other":                  "/console/",
		} {
			b := f.browser()
			page := b.get("/console/login?next=" + url.QueryEscape(next))
			m := loginTokenRE.FindStringSubmatch(page.body)
			a := b.post("/console/login", url.Values{"login_csrf": {m[1]}, "token": {adminToken}, "next": {next}})
			require.Equal(t, want, a.header.Get("Location"), next)
		}
	})

	t.Run("without an admin token the console is off", func(t *testing.T) {
		f := newFixture(t, func(o *console.Options) { o.AdminToken = "" })
		b := f.browser()
		for _, p := range append(pages, "/console/login") {
			a := b.get(p)
			require.Equal(t, http.StatusForbidden, a.status, p)
			require.Contains(t, a.body, "FF_ADMIN_TOKEN")
		}
		require.Equal(t, http.StatusForbidden, b.post("/console/login", url.Values{"token": {""}}).status)
	})
}

func TestCSRF(t *testing.T) {
	t.Run("a cancel without the CSRF token is refused and changes nothing", func(t *testing.T) {
		f := newFixture(t)
		f.suspend("order-1", 0, nil, "approve")
		b := f.signedIn()
		for name, form := range map[string]url.Values{
			"none":            {"confirm": {"yes"}},
			"wrong":           {"confirm": {"yes"}, "csrf": {"AAAA"}},
			"other session's": {"confirm": {"yes"}, "csrf": {f.signedIn().csrf()}},
		} {
			a := b.post("/console/executions/order-1/cancel", form)
			require.Equal(t, http.StatusForbidden, a.status, name)
			require.Contains(t, a.body, "nothing was changed", name)
		}
		list, err := f.e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{})
		require.NoError(t, err)
		require.Len(t, list.Executions, 1)
	})

	t.Run("a rotation without the CSRF token is refused and changes nothing", func(t *testing.T) {
		f := newFixture(t)
		b := f.signedIn()
		a := b.post("/console/keys/rotate", url.Values{"new_kid": {"k2"}, "grace": {"1h"}})
		require.Equal(t, http.StatusForbidden, a.status)
		kids, err := f.e.ListKids(context.Background())
		require.NoError(t, err)
		require.Equal(t, "k1", *kids.Partitions[0].CurrentKid)
		require.Empty(t, kids.Partitions[0].Verifying)
		require.Empty(t, f.rotated)
	})

	t.Run("a post from another origin is refused even with the token", func(t *testing.T) {
		f := newFixture(t)
		f.suspend("order-1", 0, nil, "approve")
		b := f.signedIn()
		tok := b.csrf()
		b.header.Set("Origin", "https://evil.example")
		a := b.post("/console/executions/order-1/cancel", url.Values{"confirm": {"yes"}, "csrf": {tok}})
		require.Equal(t, http.StatusForbidden, a.status)
		b.header.Del("Origin")
		for _, site := range []string{"cross-site", "same-site"} {
			b.header.Set("Sec-Fetch-Site", site)
			a = b.post("/console/executions/order-1/cancel", url.Values{"confirm": {"yes"}, "csrf": {tok}})
			require.Equal(t, http.StatusForbidden, a.status, site)
		}
		list, err := f.e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{})
		require.NoError(t, err)
		require.Len(t, list.Executions, 1)
	})

	t.Run("a same-origin post with Origin null (Referrer-Policy no-referrer) passes with its token", func(t *testing.T) {
		f := newFixture(t)
		f.suspend("order-1", 0, nil, "approve")
		b := f.signedIn()
		tok := b.csrf()
		b.header.Set("Origin", "null")
		b.header.Set("Sec-Fetch-Site", "same-origin")
		a := b.post("/console/executions/order-1/cancel", url.Values{"confirm": {"yes"}, "csrf": {tok}})
		require.Equal(t, http.StatusSeeOther, a.status)
	})

	t.Run("a logout without the CSRF token keeps the session", func(t *testing.T) {
		f := newFixture(t)
		b := f.signedIn()
		require.Equal(t, http.StatusForbidden, b.post("/console/logout", url.Values{}).status)
		require.Equal(t, http.StatusOK, b.get("/console/").status)
	})
}

var (
	inlineScriptRE = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]`)
	eventAttrRE    = regexp.MustCompile(`(?i)<[a-z][^>]*\son[a-z]+\s*=`)
	styleAttrRE    = regexp.MustCompile(`(?i)<[a-z][^>]*\sstyle\s*=`)
)

func TestHeaders(t *testing.T) {
	f := newFixture(t)
	f.suspend("order-1", time.Hour, []string{"mail"}, "approve")
	b := f.signedIn()
	paths := append(pages, "/console/login", "/console/static/console.css", "/console/static/console.js", "/console/executions/order-1?at=1")
	for _, who := range []*browser{b, f.browser()} {
		for _, p := range paths {
			a := who.get(p)
			csp := a.header.Get("Content-Security-Policy")
			require.Contains(t, csp, "default-src 'self'", p)
			require.Contains(t, csp, "frame-ancestors 'none'", p)
			require.NotContains(t, csp, "unsafe-inline", p)
			require.NotContains(t, csp, "unsafe-eval", p)
			require.Equal(t, "nosniff", a.header.Get("X-Content-Type-Options"), p)
			require.Equal(t, "no-referrer", a.header.Get("Referrer-Policy"), p)
			require.Equal(t, "DENY", a.header.Get("X-Frame-Options"), p)
			if strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
				require.Equal(t, "no-store", a.header.Get("Cache-Control"), p)
				require.NotRegexp(t, inlineScriptRE, a.body, "no inline script: %s", p)
				require.NotRegexp(t, eventAttrRE, a.body, "no event handler attribute: %s", p)
				require.NotRegexp(t, styleAttrRE, a.body, "no style attribute (CSP refuses them): %s", p)
			}
		}
	}
	require.Equal(t, "text/javascript; charset=utf-8", b.get("/console/static/console.js").header.Get("Content-Type"))
	require.Equal(t, http.StatusNotFound, b.get("/console/static/nope.js").status)
}

func TestEscaping(t *testing.T) {
	const (
		script = `<script>alert(1)</script>`
		img    = `"><img src=x onerror=alert(2)>`
	)
	t.Run("payloads and idempotency keys are shown escaped", func(t *testing.T) {
		f := newFixture(t)
		s := f.suspend("order-1", 0, nil, "approve", "audit")
		f.signal(s, 1, "note", `{"html":"`+strings.ReplaceAll(script+img, `"`, `\"`)+`"}`, img+script)
		b := f.signedIn()
		a := b.get("/console/executions/order-1")
		require.Equal(t, http.StatusOK, a.status)
		require.NotContains(t, a.body, script)
		require.NotContains(t, a.body, "<img")
		require.Contains(t, a.body, "&lt;script&gt;alert(1)&lt;/script&gt;")
		require.Contains(t, a.body, "&lt;img src=x onerror=alert(2)&gt;")
		require.NotRegexp(t, eventAttrRE, a.body)
	})

	t.Run("a tag filter is reflected escaped, and refused", func(t *testing.T) {
		f := newFixture(t)
		b := f.signedIn()
		a := b.get("/console/suspended?tag=" + url.QueryEscape(img+script))
		require.Equal(t, http.StatusBadRequest, a.status)
		require.Contains(t, a.body, "invalid_input")
		require.NotContains(t, a.body, script)
		require.NotContains(t, a.body, "<img")
		require.Contains(t, a.body, `value="&#34;&gt;&lt;img src=x onerror=alert(2)&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`)
	})

	t.Run("a tag with markup cannot be stored", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.e.Suspend(context.Background(), contracts.SuspendArgs{ExecutionID: "x", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, Tags: []string{script}})
		require.ErrorIs(t, err, contracts.ErrInvalidInput)
	})
}

func TestSuspendedPaging(t *testing.T) {
	f := newFixture(t, func(o *console.Options) { o.PageSize = 3 })
	for i := range 7 {
		tags := []string{"all"}
		if i%2 == 0 {
			tags = append(tags, "even")
		}
		f.suspend("order-"+string(rune('a'+i)), 0, tags, "approve")
		f.clock.Advance(time.Minute)
	}
	b := f.signedIn()
	rowRE := regexp.MustCompile(`class="id">([^<]+)</a>`)
	nextRE := regexp.MustCompile(`<a href="([^"]+)" rel="next">`)
	walk := func(start string) (pages [][]string) {
		path := start
		for path != "" {
			a := b.get(strings.ReplaceAll(path, "&amp;", "&"))
			require.Equal(t, http.StatusOK, a.status, path)
			var ids []string
			for _, m := range rowRE.FindAllStringSubmatch(a.body, -1) {
				ids = append(ids, m[1])
			}
			pages = append(pages, ids)
			path = ""
			if m := nextRE.FindStringSubmatch(a.body); m != nil {
				path = m[1]
			}
		}
		return pages
	}

	t.Run("pages hold PageSize rows, oldest first, until the last", func(t *testing.T) {
		require.Equal(t, [][]string{
			{"order-a", "order-b", "order-c"}, {"order-d", "order-e", "order-f"}, {"order-g"},
		}, walk("/console/suspended"))
	})

	t.Run("a tag filter pages through the tagged executions only", func(t *testing.T) {
		require.Equal(t, [][]string{{"order-a", "order-c", "order-e"}, {"order-g"}}, walk("/console/suspended?tag=even"))
	})

	t.Run("an age filter stops at the first younger execution", func(t *testing.T) {
		// order-a is 7 minutes old, order-c 5, order-d 4.
		require.Equal(t, [][]string{{"order-a", "order-b", "order-c"}}, walk("/console/suspended?older=5m"))
	})

	t.Run("a cursor not made by list_suspended is a clear error", func(t *testing.T) {
		a := b.get("/console/suspended?cursor=garbage")
		require.Equal(t, http.StatusBadRequest, a.status)
		require.Contains(t, a.body, "cursor: must be a cursor returned by list_suspended")
	})

	t.Run("an age not offered is refused", func(t *testing.T) {
		require.Equal(t, http.StatusBadRequest, b.get("/console/suspended?older=3m").status)
	})
}

func TestExecutionPage(t *testing.T) {
	f := newFixture(t)
	s := f.suspend("order-7", 2*time.Hour, []string{"mail", "eu"}, "approve", "audit")
	f.signal(s, 1, "seen", `{"by":"ana","items":[1,2]}`, "mail-1")
	b := f.signedIn()

	t.Run("shows state, the signal's payload pretty-printed and waitpoints with fingerprints, never tokens", func(t *testing.T) {
		a := b.get("/console/executions/order-7")
		require.Equal(t, http.StatusOK, a.status)
		require.Contains(t, a.body, `<dd id="state">suspended</dd>`)
		require.Contains(t, a.body, "in 2h 0m")
		require.Contains(t, a.body, "{\n  &#34;by&#34;: &#34;ana&#34;,\n  &#34;items&#34;: [\n    1,\n    2\n  ]\n}")
		require.Contains(t, a.body, "mail-1")
		require.Contains(t, a.body, s.Waitpoints[1].WaitpointID)
		require.Regexp(t, `<code>[0-9a-f]{16}</code>`, a.body, "a token fingerprint")
		for _, wp := range s.Waitpoints {
			require.NotContains(t, a.body, wp.Token)
			_, mac, _ := strings.Cut(wp.Token, ":")
			require.NotContains(t, a.body, mac)
		}
		require.Contains(t, a.body, "Cancel this suspension")
	})

	t.Run("every waitpoint of the suspension is listed, signals or not", func(t *testing.T) {
		a := b.get("/console/executions/order-7")
		require.Contains(t, a.body, s.Waitpoints[0].WaitpointID, "approve has no signal")
		require.Contains(t, a.body, "status-open")
		require.NotContains(t, a.body, `class="looked-up"`)
	})

	t.Run("a listed waitpoint looked up by id is marked", func(t *testing.T) {
		a := b.get("/console/executions/order-7?waitpoint=" + s.Waitpoints[0].WaitpointID)
		require.Equal(t, http.StatusOK, a.status)
		require.Regexp(t, `<tr class="looked-up">\s*<td>approve <strong class="badge">looked up</strong></td>\s*<td><code>`+s.Waitpoints[0].WaitpointID, a.body)
		require.NotContains(t, a.body, "not listed")
		a = b.get("/console/executions/order-7?waitpoint=not-a-uuid")
		require.Contains(t, a.body, "waitpoint: must be")
		a = b.get("/console/executions/order-7?waitpoint=00000000-0000-4000-8000-000000000000")
		require.Contains(t, a.body, "waitpoint_not_found")
	})

	t.Run("a waitpoint of an earlier suspension is found by id", func(t *testing.T) {
		first := f.suspend("order-again", 0, nil, "first")
		f.signal(first, 0, "go", `1`, "")
		c := f.claim(time.Hour)
		require.Equal(t, "order-again", c.ExecutionID)
		_, err := f.e.Suspend(context.Background(), contracts.SuspendArgs{ExecutionID: "order-again", LeaseID: &c.LeaseID,
			Waitpoints: []contracts.WaitpointSpec{{Key: "second"}}, Condition: contracts.ConditionAll})
		require.NoError(t, err)
		a := b.get("/console/executions/order-again")
		require.NotContains(t, a.body, first.Waitpoints[0].WaitpointID, "describe_execution lists the latest suspension's")
		require.Contains(t, a.body, "<td>second</td>")
		a = b.get("/console/executions/order-again?waitpoint=" + first.Waitpoints[0].WaitpointID)
		require.Equal(t, http.StatusOK, a.status)
		require.Contains(t, a.body, `<td>first <strong class="badge">looked up</strong> <span class="muted">not listed: of an earlier suspension, or expired</span></td>`)
		require.Contains(t, a.body, first.Waitpoints[0].WaitpointID)
		require.Contains(t, a.body, "status-closed")
	})

	t.Run("an old link's at= is ignored", func(t *testing.T) {
		a := b.get("/console/executions/order-7?at=1")
		require.Equal(t, http.StatusOK, a.status)
		require.Contains(t, a.body, `<dd id="state">suspended</dd>`)
		require.NotContains(t, a.body, `name="at"`)
	})

	t.Run("a large payload is capped", func(t *testing.T) {
		big := f.suspend("order-big", 0, nil, "a")
		f.signal(big, 0, "blob", `"`+strings.Repeat("x", 20_000)+`"`, "")
		a := b.get("/console/executions/order-big")
		require.Contains(t, a.body, "only the first part is shown")
		require.Less(t, len(a.body), 20_000)
	})

	t.Run("an unknown execution answers 404, a malformed id 400", func(t *testing.T) {
		require.Equal(t, http.StatusNotFound, b.get("/console/executions/nobody").status)
		require.Equal(t, http.StatusBadRequest, b.get("/console/executions/"+url.PathEscape("a b")).status)
	})

	t.Run("the find form opens the execution", func(t *testing.T) {
		a := b.get("/console/executions?id=order-7")
		require.Equal(t, http.StatusSeeOther, a.status)
		require.Equal(t, "/console/executions/order-7", a.header.Get("Location"))
	})
}

func TestCancel(t *testing.T) {
	f := newFixture(t)
	s := f.suspend("order-1", 0, nil, "approve")
	b := f.signedIn()
	tok := b.csrf()

	a := b.post("/console/executions/order-1/cancel", url.Values{"csrf": {tok}, "at": {"1"}})
	require.Equal(t, http.StatusOK, a.status, "the first post asks for confirmation")
	require.Contains(t, a.body, "Yes, cancel it")
	list, err := f.e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{})
	require.NoError(t, err)
	require.Len(t, list.Executions, 1, "asking changes nothing")

	a = b.post("/console/executions/order-1/cancel", url.Values{"csrf": {tok}, "confirm": {"yes"}})
	require.Equal(t, http.StatusSeeOther, a.status)
	page := b.get(a.header.Get("Location"))
	require.Contains(t, page.body, "Cancelled order-1")
	require.Contains(t, page.body, `<dd id="state">resumed, waiting for a worker (reason cancelled)</dd>`)
	require.Contains(t, page.body, `<dd id="claim">not claimed: a worker may claim it now (reason cancelled)</dd>`)
	require.NotContains(t, page.body, "Cancel this suspension")
	require.Contains(t, page.body, "status-closed")
	list, err = f.e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{})
	require.NoError(t, err)
	require.Empty(t, list.Executions)
	_, err = f.e.DeliverSignal(context.Background(), contracts.DeliverSignalArgs{ExecutionID: "order-1",
		WaitpointID: s.Waitpoints[0].WaitpointID, Token: s.Waitpoints[0].Token, Name: "late"})
	require.ErrorIs(t, err, contracts.ErrWaitpointClosed)

	again := b.post("/console/executions/order-1/cancel", url.Values{"csrf": {tok}, "confirm": {"yes"}})
	require.Equal(t, http.StatusConflict, again.status)
	require.Contains(t, again.body, "not_suspended")

	ask := b.post("/console/executions/order-1/cancel", url.Values{"csrf": {tok}})
	require.Equal(t, http.StatusConflict, ask.status, "no confirmation for what is not suspended")
	require.Contains(t, ask.body, "is not suspended (it is resumed, waiting for a worker (reason cancelled))")
	require.NotContains(t, ask.body, "Yes, cancel it")
	require.Equal(t, http.StatusNotFound, b.post("/console/executions/nobody/cancel", url.Values{"csrf": {tok}}).status)

	t.Run("a suspension past its timeout can be cancelled, and the page says so", func(t *testing.T) {
		f.suspend("order-late", time.Minute, nil, "approve")
		f.clock.Advance(2 * time.Minute)
		a := b.post("/console/executions/order-late/cancel", url.Values{"csrf": {tok}})
		require.Equal(t, http.StatusOK, a.status)
		require.Contains(t, a.body, "It is past its timeout")
		require.Contains(t, a.body, "on 1 waitpoint(s)")
		require.Equal(t, http.StatusSeeOther, b.post("/console/executions/order-late/cancel", url.Values{"csrf": {tok}, "confirm": {"yes"}}).status)
		info, err := f.e.DescribeExecution(context.Background(), contracts.DescribeExecutionArgs{ExecutionID: "order-late"})
		require.NoError(t, err)
		require.Equal(t, contracts.StateResumed, info.State)
		require.Equal(t, contracts.ReasonCancelled, *info.Reason, "the reason timeout became cancelled")
	})
}

// TestExecutionStates checks the state, claim and lease the execution page
// shows for each state describe_execution answers.
func TestExecutionStates(t *testing.T) {
	state := regexp.MustCompile(`<dd id="state">([^<]*)</dd>`)
	page := func(t *testing.T, b *browser, id string) string {
		t.Helper()
		a := b.get("/console/executions/" + id)
		require.Equal(t, http.StatusOK, a.status, a.body)
		return a.body
	}
	stateOf := func(t *testing.T, body string) string {
		t.Helper()
		m := state.FindStringSubmatch(body)
		require.NotNil(t, m, "the page shows a state")
		return m[1]
	}

	t.Run("suspended", func(t *testing.T) {
		f := newFixture(t)
		f.suspend("order-1", time.Hour, []string{"mail"}, "approve")
		body := page(t, f.signedIn(), "order-1")
		require.Equal(t, "suspended", stateOf(t, body))
		require.Contains(t, body, `<dd id="claim">not claimed: it waits for its signals</dd>`)
		require.Contains(t, body, ">in 1h 0m</time>")
		require.Contains(t, body, `<a class="tag" href="/console/suspended?tag=mail">mail</a>`)
		require.Contains(t, body, "Cancel this suspension")
		require.Contains(t, body, "No signal yet on its latest suspension.")
	})

	t.Run("suspended past its timeout", func(t *testing.T) {
		f := newFixture(t)
		f.suspend("order-1", time.Minute, nil, "approve")
		f.clock.Advance(90 * time.Second)
		body := page(t, f.signedIn(), "order-1")
		require.Equal(t, "suspended, past its timeout: a worker may claim it now (reason timeout)", stateOf(t, body))
		require.Contains(t, body, `<dd id="claim">not claimed: a worker may claim it now (reason timeout)</dd>`)
		require.Contains(t, body, `class="countdown past"`)
		require.Contains(t, body, ">30s ago</time>")
		require.Contains(t, body, "status-expired")
		require.Contains(t, body, "Cancel this suspension", "a timed-out suspension still cancels")
	})

	t.Run("resumed by a signal", func(t *testing.T) {
		f := newFixture(t)
		s := f.suspend("order-1", 0, nil, "approve")
		f.signal(s, 0, "approved", `{"ok":true}`, "")
		body := page(t, f.signedIn(), "order-1")
		require.Equal(t, "resumed, waiting for a worker (reason signal)", stateOf(t, body))
		require.Contains(t, body, `<dd id="claim">not claimed: a worker may claim it now (reason signal)</dd>`)
		require.NotContains(t, body, "Cancel this suspension")
		require.Contains(t, body, `<span class="signal-name">approved</span>`)
		require.Contains(t, body, "status-closed")
	})

	t.Run("resumed by a cancel", func(t *testing.T) {
		f := newFixture(t)
		f.suspend("order-1", 0, nil, "approve")
		_, err := f.e.CancelSuspension(context.Background(), contracts.CancelArgs{ExecutionID: "order-1"})
		require.NoError(t, err)
		body := page(t, f.signedIn(), "order-1")
		require.Equal(t, "resumed, waiting for a worker (reason cancelled)", stateOf(t, body))
		require.NotContains(t, body, "Cancel this suspension")
	})

	t.Run("claimed: the lease's expiry and its countdown", func(t *testing.T) {
		f := newFixture(t)
		s := f.suspend("order-1", 0, nil, "approve")
		f.signal(s, 0, "approved", `1`, "")
		c := f.claim(30 * time.Second)
		b := f.signedIn()
		body := page(t, b, "order-1")
		require.Equal(t, "claimed (reason signal)", stateOf(t, body))
		exp := strconv.FormatInt(c.LeaseExpiresAtMs, 10)
		require.Contains(t, body, `<dd id="claim">claimed with reason <code>signal</code>; its lease expires at `+
			`<time datetime="2026-12-06T12:00:30Z">2026-12-06 12:00:30 UTC</time>, `+
			`<time id="lease" class="countdown" datetime="2026-12-06T12:00:30Z" data-deadline-ms="`+exp+`">in 30s</time></dd>`)
		require.NotContains(t, body, "Cancel this suspension")
		require.NotContains(t, body, c.LeaseID, "never the lease id")
		require.Contains(t, body, `<span class="signal-name">approved</span>`, "the claimed suspension's signals")
		f.clock.Advance(10 * time.Second)
		require.Contains(t, page(t, b, "order-1"), `>in 20s</time></dd>`)
	})

	t.Run("claimed with an expired lease", func(t *testing.T) {
		f := newFixture(t)
		f.suspend("order-1", time.Minute, nil, "approve")
		f.clock.Advance(2 * time.Minute)
		c := f.claim(30 * time.Second)
		require.Equal(t, contracts.ReasonTimeout, c.Reason)
		f.clock.Advance(45 * time.Second)
		body := page(t, f.signedIn(), "order-1")
		require.Equal(t, "claimed, lease expired: a worker may claim it again now (reason timeout)", stateOf(t, body))
		require.Contains(t, body, `; its lease expired at <time datetime="2026-12-06T12:02:30Z">2026-12-06 12:02:30 UTC</time>, `)
		require.Contains(t, body, `<time id="lease" class="countdown past"`)
		require.Contains(t, body, `>15s ago</time>: nobody claimed it again, so a worker may claim it now</dd>`)
	})

	t.Run("none: pending waitpoints only", func(t *testing.T) {
		f := newFixture(t)
		wp, err := f.e.CreateWaitpoint(context.Background(), contracts.CreateWaitpointArgs{ExecutionID: "order-1", Key: "early", ExpiresInMs: time.Hour.Milliseconds(), Tags: []string{"pre"}})
		require.NoError(t, err)
		body := page(t, f.signedIn(), "order-1")
		require.Equal(t, "none: not suspended, resumed or claimed; it holds pending waitpoints only", stateOf(t, body))
		require.Contains(t, body, `<dd id="claim">not claimed</dd>`)
		require.Contains(t, body, "<dd>none: it never suspended</dd>")
		require.Contains(t, body, wp.WaitpointID)
		require.Contains(t, body, "status-pending")
		require.Contains(t, body, `<span class="tag">pre</span>`)
		require.Contains(t, body, "It never suspended: there is no signal to show.")
		require.NotContains(t, body, "No signal yet on its latest suspension.")
		require.NotContains(t, body, "Cancel this suspension")
		require.NotContains(t, body, wp.Token)
	})
}

// TestUnsupported runs the console over a driver without driver.Inspector:
// the execution page and the cancel confirmation say so, the overview
// shows the message in place of the counts.
func TestUnsupported(t *testing.T) {
	f := newFixtureOn(t, func(m *memory.Backend) driver.Backend { return withoutInspector{m, m} })
	f.suspend("order-1", 0, []string{"mail"}, "approve")
	b := f.signedIn()

	a := b.get("/console/executions/order-1")
	require.Equal(t, http.StatusNotImplemented, a.status)
	require.Contains(t, a.body, "This store&#39;s driver does not implement describe_execution (docs/spec.md §8.9)")
	require.NotContains(t, a.body, `id="state"`)

	a = b.post("/console/executions/order-1/cancel", url.Values{"csrf": {b.csrf()}})
	require.Equal(t, http.StatusNotImplemented, a.status)
	require.Contains(t, a.body, "does not implement describe_execution")

	a = b.get("/console/")
	require.Equal(t, http.StatusOK, a.status)
	require.Contains(t, a.body, `id="counts-unsupported">This store&#39;s driver does not implement count_executions (docs/spec.md §8.9)`)
	require.NotContains(t, a.body, `class="counts"`)
	require.Contains(t, a.body, `Oldest wait: <a href="/console/executions/order-1">order-1</a>`)
	require.Contains(t, a.body, `href="/console/suspended?tag=mail">mail</a></td><td class="num">1</td>`)
}

func TestRotate(t *testing.T) {
	t.Run("rotates every partition and shows the old kid's countdown", func(t *testing.T) {
		f := newFixture(t)
		b := f.signedIn()
		a := b.post("/console/keys/rotate", url.Values{"csrf": {b.csrf()}, "new_kid": {"k2"}, "grace": {"90m"}})
		require.Equal(t, http.StatusSeeOther, a.status)
		page := b.get("/console/keys")
		require.Contains(t, page.body, "Rotation to k2: 1 partition(s) rotated")
		require.Contains(t, page.body, `<code class="kid current-kid">k2</code>`)
		require.Contains(t, page.body, `data-kid="k1">in 1h 30m</time>`)
		f.clock.Advance(30 * time.Minute)
		require.Contains(t, b.get("/console/keys").body, `data-kid="k1">in 1h 0m</time>`)
		kids, err := f.e.ListKids(context.Background())
		require.NoError(t, err)
		require.Equal(t, "k2", *kids.Partitions[0].CurrentKid)
		require.Len(t, f.rotated, 1)
		require.Equal(t, "k2", f.rotated[0].NewKid)
		require.Equal(t, int64(90*60*1000), f.rotated[0].GraceMs)
		require.NoError(t, f.rotated[0].Err)
		require.Contains(t, f.logs.String(), `"msg":"console: rotated"`)
		require.NotRegexp(t, `[0-9a-f]{64}`, f.logs.String(), "no secret in the log")
	})

	t.Run("bad input is a clear error and changes nothing", func(t *testing.T) {
		f := newFixture(t)
		b := f.signedIn()
		tok := b.csrf()
		for form, want := range map[[2]string]string{
			{"k:2", "1h"}:       "new_kid: must be 1-64 bytes",
			{"", "1h"}:          "new_kid: must be",
			{"k2", "soon"}:      "grace: must be a duration",
			{"k2", "-1h"}:       "grace: must not be negative",
			{"<b>k2</b>", "1h"}: "new_kid: must be",
			{"k2", "1.5ms"}:     "grace: must be whole milliseconds",
		} {
			a := b.post("/console/keys/rotate", url.Values{"csrf": {tok}, "new_kid": {form[0]}, "grace": {form[1]}})
			require.Equal(t, http.StatusBadRequest, a.status, form)
			require.Contains(t, a.body, want, form)
			require.NotContains(t, a.body, "<b>k2</b>")
		}
		kids, err := f.e.ListKids(context.Background())
		require.NoError(t, err)
		require.Equal(t, "k1", *kids.Partitions[0].CurrentKid)
		require.Empty(t, f.rotated)
	})

	t.Run("a kid name used before is a rotation conflict", func(t *testing.T) {
		f := newFixture(t)
		b := f.signedIn()
		tok := b.csrf()
		require.Equal(t, http.StatusSeeOther, b.post("/console/keys/rotate", url.Values{"csrf": {tok}, "new_kid": {"k2"}, "grace": {"1h"}}).status)
		require.Equal(t, http.StatusSeeOther, b.post("/console/keys/rotate", url.Values{"csrf": {tok}, "new_kid": {"k2"}, "grace": {"1h"}}).status)
		require.Contains(t, b.get("/console/keys").body, "1 failed (rotation_conflict)")
	})
}

// metricsText is a gateway exposition with the given counts.
func metricsText(delivered, errs int) string {
	return "# HELP ff_http_requests_total x\n# TYPE ff_http_requests_total counter\n" +
		`ff_http_requests_total{outcome="ok",route="deliver_signal"} ` + itoa(delivered) + "\n" +
		`ff_http_requests_total{outcome="invalid_token",route="deliver_signal"} ` + itoa(errs) + "\n" +
		`ff_token_verification_failures_total{reason="signature_mismatch"} ` + itoa(errs) + "\n"
}

func itoa(n int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + func() string { return fmtInt(n) }())
}

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// countsOf reads the overview's counts: label to number.
func countsOf(body string) map[string]string {
	got := map[string]string{}
	for _, m := range regexp.MustCompile(`<dt>([^<]+)</dt><dd>(?:<a [^>]+>)?([^<]+)`).FindAllStringSubmatch(body, -1) {
		got[m[1]] = m[2]
	}
	return got
}

func TestOverview(t *testing.T) {
	var text string
	f := newFixture(t, func(o *console.Options) {
		o.Metrics = func() []byte { return []byte(text) }
		o.MetricsEvery = time.Hour // samples are taken by the test
	})
	ctx := context.Background()
	// Claimed, and claimed with a lease that expires below.
	for id, lease := range map[string]time.Duration{"claimed-1": time.Hour, "expired-1": time.Minute} {
		sus := f.suspend(id, 0, nil, "a")
		f.signal(sus, 0, "go", "1", "")
		require.Equal(t, id, f.claim(lease).ExecutionID)
	}
	f.suspend("order-1", time.Minute, []string{"mail"}, "a")
	f.clock.Advance(time.Second)
	f.suspend("order-2", time.Hour, []string{"mail", "eu"}, "a")
	f.suspend("order-3", 0, nil, "a")
	f.signal(f.suspend("resumed-1", 0, nil, "a"), 0, "go", "1", "")
	f.suspend("cancelled-1", 0, nil, "a")
	_, err := f.e.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: "cancelled-1"})
	require.NoError(t, err)
	_, err = f.e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: "pending-1", Key: "p", ExpiresInMs: time.Hour.Milliseconds()})
	require.NoError(t, err)          // state none: counted nowhere
	f.clock.Advance(2 * time.Minute) // order-1 is past its timeout, expired-1's lease too
	text = metricsText(0, 0)
	f.c.SampleMetrics()
	f.clock.Advance(10 * time.Second)
	text = metricsText(50, 5)
	f.c.SampleMetrics()

	b := f.signedIn()
	a := b.get("/console/")
	require.Equal(t, http.StatusOK, a.status)
	require.Equal(t, map[string]string{
		"Suspended, waiting": "2", "Timed out, waiting for a worker": "1",
		"Resumed, waiting for a worker": "2", "Claimed": "1", "Lease expired, claimable again": "1",
	}, countsOf(a.body))
	require.Contains(t, a.body, `<a href="/console/suspended">2</a>`)
	require.Contains(t, a.body, `<span class="chart-now">7 in all</span>`)
	require.Contains(t, a.body, `<desc id="counts-chart-d">Executions by state: suspended 2, timed out 1, resumed 2, claimed 1, lease expired 1 (7 in all).</desc>`)
	require.Regexp(t, `<g class="bar-suspended">\s*<text[^>]*>Suspended</text>\s*<rect x="120" y="5" width="300" height="16" class="track"></rect>\s*<rect x="120" y="5" width="300" height="16" class="bar"></rect>\s*<text x="480" y="18" class="bar-count">2</text>`, a.body)
	require.Regexp(t, `<g class="bar-timedout">\s*<text[^>]*>Timed out</text>\s*<rect [^>]*class="track"></rect>\s*<rect x="120" y="31" width="150" height="16" class="bar"></rect>`, a.body)
	require.Contains(t, a.body, `role="img" aria-labelledby="counts-chart counts-chart-d"`)
	require.Contains(t, a.body, `href="/console/suspended?tag=mail">mail</a></td><td class="num">2</td>`)
	require.Contains(t, a.body, "Top tags among the oldest 3 suspended execution(s), which is all of them.")
	require.Contains(t, a.body, `Oldest wait: <a href="/console/executions/order-1">order-1</a>`)
	require.Contains(t, a.body, `<span class="chart-title">Signals delivered</span> <span class="chart-now">5.0 signals/s</span>`)
	require.Contains(t, a.body, `<span class="chart-title">Errors</span> <span class="chart-now">0.50 answers/s</span>`)
	require.Contains(t, a.body, "<polyline points=")
	require.Contains(t, a.body, "current kid: <code>k1</code>")

	t.Run("the tags are read up to the cap, which the page says; the counts are not capped", func(t *testing.T) {
		f := newFixture(t, func(o *console.Options) { o.CountCap = 2 })
		for _, id := range []string{"a", "b", "c"} {
			f.suspend(id, 0, []string{"t-" + id}, "w")
		}
		a := f.signedIn().get("/console/")
		require.Contains(t, a.body, "Top tags among the oldest 2 suspended execution(s): list_suspended is read up to its first 2 rows")
		require.Equal(t, "3", countsOf(a.body)["Suspended, waiting"])
		require.Contains(t, a.body, ">t-a</a>")
		require.NotContains(t, a.body, ">t-c</a>")
	})

	t.Run("an empty store counts zeros and draws no bar", func(t *testing.T) {
		a := newFixture(t).signedIn().get("/console/")
		require.Equal(t, "0", countsOf(a.body)["Claimed"])
		require.Contains(t, a.body, "(0 in all)")
		require.NotRegexp(t, `width="[1-9][0-9]*" height="16" class="bar"`, a.body)
		require.NotContains(t, a.body, "Top tags among")
	})

	t.Run("without a metrics source the rates say so", func(t *testing.T) {
		a := newFixture(t).signedIn().get("/console/")
		require.Contains(t, a.body, "No metrics source")
	})
}
