package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

const (
	xssScript = `<script>alert("xss-script")</script>`
	xssImg    = `"><img src=x onerror=alert("xss-img")>`
)

// TestConsoleInBrowser drives the console in headless Chromium against a
// real server (gateway and console over one Engine on SQLite): the story
// of an operator, then the attacks a page must resist.
func TestConsoleInBrowser(t *testing.T) {
	s := startServer(t, time.Second)
	base := s.srv.URL
	s.suspend("order-1", 0, []string{"mail"}, "approve")
	vip := s.suspend("order-vip", 24*time.Hour, []string{"vip", "eu"}, "approve", "ship")
	require.Equal(t, http.StatusOK, s.signal(vip, 0, "approved", map[string]any{"approved_by": "ana", "amount": 120}, "mail-42"))
	evil := s.suspend("order-evil", 0, []string{"mail"}, "approve", "ship")
	require.Equal(t, http.StatusOK, s.signal(evil, 0, "approved",
		map[string]any{"note": xssScript, "html": xssImg}, xssImg+xssScript))
	b := newBrowser(t, 1280, 900)

	t.Run("without the cookie every page redirects to login", func(t *testing.T) {
		for _, p := range []string{"/console/", "/console/suspended?tag=vip", "/console/executions/order-vip", "/console/keys"} {
			b.do(t, chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.ID("token")))
			loc := b.location(t)
			require.True(t, strings.HasPrefix(loc, "/console/login"), "%s went to %s", p, loc)
			require.NotContains(t, b.text(t, "main"), "order-")
		}
	})

	t.Run("log in", func(t *testing.T) {
		b.login(t, base)
		require.Equal(t, "/console/", b.location(t))
		require.Equal(t, "Overview", b.text(t, "h1"))
		cookies := run(t, b, chromedp.Evaluate[string](`document.cookie`))
		require.Empty(t, cookies, "the session cookie is HttpOnly: scripts cannot read it")
	})

	t.Run("find a suspended execution by tag and open it", func(t *testing.T) {
		b.do(t,
			chromedp.Navigate(base+"/console/suspended"),
			chromedp.SendKeys(chromedp.ID("tag"), "vip"),
		)
		b.follow(t, chromedp.Submit(chromedp.ID("tag")))
		b.do(t,
			chromedp.WaitVisible(chromedp.CSS("table.list")),
		)
		require.Equal(t, "/console/suspended?tag=vip&older=", b.location(t))
		ids := run(t, b, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.list a.id")].map(a => a.textContent)`))
		require.Equal(t, []string{"order-vip"}, ids)
		b.follow(t, chromedp.Click(chromedp.CSS(`a.id`)))
		b.do(t,
			chromedp.WaitVisible(chromedp.ID("state")),
		)
		require.Equal(t, "/console/executions/order-vip", b.location(t))
		require.Equal(t, "suspended", b.text(t, "#state"))
		require.Equal(t, "not claimed: it waits for its signals", b.text(t, "#claim"))
	})

	t.Run("see a signal's payload and the waitpoint's fingerprint, never its token", func(t *testing.T) {
		payload := b.text(t, "pre.payload")
		require.Contains(t, payload, `"approved_by": "ana"`)
		require.Contains(t, payload, `"amount": 120`)
		require.Equal(t, "mail-42", b.text(t, "code.idem"))
		html := b.js(t, `document.documentElement.outerHTML`)
		require.Contains(t, html, vip.Waitpoints[0].WaitpointID)
		require.Regexp(t, `<code>[0-9a-f]{16}</code>`, html)
		for _, wp := range vip.Waitpoints {
			_, mac, _ := strings.Cut(wp.Token, ":")
			require.NotContains(t, html, mac)
		}
	})

	t.Run("cancel it, with confirmation", func(t *testing.T) {
		b.follow(t, chromedp.Click(chromedp.CSS(`button.danger`)))
		b.do(t,
			chromedp.WaitVisible(chromedp.ID("confirm-cancel")),
		)
		list, err := s.e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{Tag: "vip"})
		require.NoError(t, err)
		require.Len(t, list.Executions, 1, "the confirmation page changes nothing")
		b.follow(t, chromedp.Click(chromedp.ID("confirm-cancel")))
		b.do(t,
			chromedp.WaitVisible(chromedp.CSS(".flash")),
		)
		require.Contains(t, b.text(t, ".flash"), "Cancelled order-vip")
		require.Equal(t, "resumed, waiting for a worker (reason cancelled)", b.text(t, "#state"))
		require.Equal(t, "not claimed: a worker may claim it now (reason cancelled)", b.text(t, "#claim"))
		require.Zero(t, run(t, b, chromedp.Evaluate[int](`document.querySelectorAll("button.danger").length`)), "nothing left to cancel")
		list, err = s.e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{Tag: "vip"})
		require.NoError(t, err)
		require.Empty(t, list.Executions)
	})

	t.Run("a worker claims it: the page shows the claim and a moving lease countdown", func(t *testing.T) {
		claim, err := s.e.ClaimResumedExecution(context.Background(), contracts.ClaimArgs{WorkerID: "w1", LeaseMs: (10 * time.Minute).Milliseconds()})
		require.NoError(t, err)
		require.Equal(t, "order-vip", claim.ExecutionID)
		require.Equal(t, "cancelled", claim.Reason)
		b.do(t,
			chromedp.Navigate(base+"/console/executions/order-vip"),
			chromedp.WaitVisible(chromedp.ID("lease")),
		)
		require.Equal(t, "claimed (reason cancelled)", b.text(t, "#state"))
		require.Contains(t, b.text(t, "#claim"), "claimed with reason cancelled; its lease expires at ")
		exp := b.js(t, `document.getElementById("lease").getAttribute("data-deadline-ms")`)
		require.Equal(t, strconv.FormatInt(claim.LeaseExpiresAtMs, 10), exp)
		first := secondsLeft(t, b.text(t, "#lease"))
		require.InDelta(t, 600, first, 10)
		time.Sleep(2500 * time.Millisecond)
		later := secondsLeft(t, b.text(t, "#lease"))
		require.Less(t, later, first, "the lease countdown moves without a reload")
		require.GreaterOrEqual(t, later, first-5)
		html := b.js(t, `document.documentElement.outerHTML`)
		require.NotContains(t, html, claim.LeaseID, "never the lease id")
	})

	t.Run("rotate a key and watch the old kid's countdown", func(t *testing.T) {
		b.do(t,
			chromedp.Navigate(base+"/console/keys"),
			chromedp.WaitVisible(chromedp.ID("new_kid")),
			chromedp.SetValue(chromedp.ID("new_kid"), "k2"),
			chromedp.SetValue(chromedp.ID("grace"), "1h"),
		)
		b.follow(t, chromedp.Submit(chromedp.ID("new_kid")))
		b.do(t,
			chromedp.WaitVisible(chromedp.CSS(".flash")),
		)
		require.Contains(t, b.text(t, ".flash"), "Rotation to k2: 1 partition(s) rotated")
		require.Equal(t, "k2", b.text(t, "code.current-kid"))
		first := secondsLeft(t, b.text(t, `time[data-kid="k1"]`))
		require.InDelta(t, 3600, first, 10)
		time.Sleep(2500 * time.Millisecond)
		later := secondsLeft(t, b.text(t, `time[data-kid="k1"]`))
		require.Less(t, later, first, "the countdown moves without a reload")
		require.GreaterOrEqual(t, later, first-5)
		kids, err := s.e.ListKids(context.Background())
		require.NoError(t, err)
		require.Equal(t, "k2", *kids.Partitions[0].CurrentKid)
		require.Equal(t, "k1", kids.Partitions[0].Verifying[0].Kid)
		require.Contains(t, s.logs.String(), `"msg":"keystore audit","op":"rotate_all","kid":"k2"`)
	})

	t.Run("XSS in a signal renders inert and shown escaped", func(t *testing.T) {
		b.do(t,
			chromedp.Navigate(base+"/console/executions/order-evil"),
			chromedp.WaitVisible(chromedp.CSS("pre.payload")),
		)
		payload := b.text(t, "pre.payload")
		require.Contains(t, payload, `"note": "<script>alert(\"xss-script\")</script>"`, "the markup is shown as text")
		require.Contains(t, payload, `"html": "\"><img src=x onerror=alert(\"xss-img\")>"`)
		require.Equal(t, xssImg+xssScript, b.text(t, "code.idem"), "the idempotency key is shown as text")
		requireInert(t, b)
	})

	t.Run("XSS in a tag filter renders inert and shown escaped", func(t *testing.T) {
		b.do(t,
			chromedp.Navigate(base+"/console/suspended?tag="+url.QueryEscape(xssImg+xssScript)),
			chromedp.WaitVisible(chromedp.CSS(".error")),
		)
		require.Contains(t, b.text(t, ".error"), "tag: each tag must be 1-64 bytes")
		value := b.js(t, `document.getElementById("tag").value`)
		require.Equal(t, xssImg+xssScript, value, "the input holds the text as typed")
		requireInert(t, b)
		_, err := s.e.Suspend(context.Background(), contracts.SuspendArgs{ExecutionID: "x",
			Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, Tags: []string{xssScript}})
		require.ErrorIs(t, err, contracts.ErrInvalidInput, "no tag with markup can be stored")
	})

	t.Run("a forged form post without the CSRF token is refused and changes nothing", func(t *testing.T) {
		// From a page of the console (same origin, with the session
		// cookie), a post without the token.
		b.do(t, chromedp.Navigate(base+"/console/keys"), chromedp.WaitVisible(chromedp.CSS("h1")))
		status := run(t, b, chromedp.Evaluate[int](`fetch("/console/keys/rotate", {method: "POST", credentials: "same-origin",
			body: new URLSearchParams({new_kid: "forged", grace: "1s"})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
		require.Equal(t, http.StatusForbidden, status)

		// From another site's page: a form aimed at the console.
		evilSite := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(`<!doctype html><form method="post" action="` + base + `/console/executions/order-1/cancel">` +
				`<input type="hidden" name="confirm" value="yes"><button id="go" type="submit">win a prize</button></form>`))
		}))
		defer evilSite.Close()
		resp, err := chromedp.RunResponse(b.ctx, chromedp.Navigate(evilSite.URL))
		require.NoError(t, err)
		require.Equal(t, int64(http.StatusOK), resp.Status)
		resp, err = chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.ID("go")))
		require.NoError(t, err)
		require.Equal(t, int64(http.StatusForbidden), resp.Status)

		kids, err := s.e.ListKids(context.Background())
		require.NoError(t, err)
		require.Equal(t, "k2", *kids.Partitions[0].CurrentKid, "no forged rotation")
		list, err := s.e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{Tag: "mail"})
		require.NoError(t, err)
		require.Len(t, list.Executions, 2, "no forged cancel")
	})

	t.Run("log out", func(t *testing.T) {
		b.do(t,
			chromedp.Navigate(base+"/console/"),
			chromedp.WaitVisible(chromedp.CSS("form.logout button")),
		)
		b.follow(t, chromedp.Click(chromedp.CSS("form.logout button")))
		b.do(t,
			chromedp.WaitVisible(chromedp.ID("token")),
		)
		b.do(t, chromedp.Navigate(base+"/console/keys"), chromedp.WaitVisible(chromedp.ID("token")))
		require.True(t, strings.HasPrefix(b.location(t), "/console/login"))
	})

	require.Empty(t, b.dialogs.list(), "no page opened a dialog")
}

// requireInert checks that nothing an attacker wrote ran or became markup.
func requireInert(t *testing.T, b *browser) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // an onerror would have fired by now
	require.Empty(t, b.dialogs.list(), "no dialog opened")
	type found struct {
		Scripts  []string `json:"scripts"`
		Images   int      `json:"images"`
		Handlers int      `json:"handlers"`
	}
	n := run(t, b, chromedp.Evaluate[found](`({
		scripts: [...document.scripts].map(s => s.getAttribute("src")),
		images: document.images.length,
		handlers: [...document.querySelectorAll("*")].filter(e => [...e.attributes].some(a => a.name.startsWith("on"))).length,
	})`))
	require.Equal(t, []string{"/console/static/console.js"}, n.Scripts, "the console's script is the only one")
	require.Zero(t, n.Images)
	require.Zero(t, n.Handlers)
}

var countdownRE = regexp.MustCompile(`^in (?:(\d+)h )?(\d+)m(?: (\d+)s)?$`)

// secondsLeft reads "in 59m 58s" or "in 1h 0m".
func secondsLeft(t *testing.T, s string) int {
	t.Helper()
	m := countdownRE.FindStringSubmatch(s)
	require.NotNil(t, m, "countdown %q", s)
	n := 0
	for i, mult := range []int{3600, 60, 1} {
		if m[i+1] != "" {
			v, _ := strconv.Atoi(m[i+1])
			n += v * mult
		}
	}
	return n
}
