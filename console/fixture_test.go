package console_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/console"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/syncbuf"
)

const adminToken = "console-test-admin-token-0123456789abcdef"

// clock is a settable clock shared by the backend and the console.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC).UnixMilli())
	return c
}
func (c *clock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// fixture is a console over a memory backend, mounted under /console/ of
// a loopback test server, as ff serve mounts it.
type fixture struct {
	t       *testing.T
	e       *engine.Engine
	c       *console.Console
	clock   *clock
	srv     *httptest.Server
	logs    *syncbuf.Buffer
	rotated []console.Rotation
	mu      sync.Mutex
}

func newFixture(t *testing.T, tweak ...func(*console.Options)) *fixture {
	t.Helper()
	return newFixtureOn(t, nil, tweak...)
}

// withoutInspector hides the memory backend's driver.Inspector, as a
// third-party driver written before docs/spec.md §8.9 would.
type withoutInspector struct {
	driver.Backend
	driver.Lifecycle
}

// newFixtureOn is newFixture over wrap(the memory backend); nil wrap: the
// backend itself.
func newFixtureOn(t *testing.T, wrap func(*memory.Backend) driver.Backend, tweak ...func(*console.Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: newClock(), logs: &syncbuf.Buffer{}}
	mem := memory.New(memory.WithClock(f.clock.Now))
	var b driver.Backend = mem
	if wrap != nil {
		b = wrap(mem)
	}
	f.e = engine.New(b)
	opts := console.Options{
		AdminToken: adminToken, PlainHTTPLoopback: true, Now: f.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(f.logs, nil)),
		OnRotate: func(_ context.Context, r console.Rotation) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.rotated = append(f.rotated, r)
		},
	}
	for _, tw := range tweak {
		tw(&opts)
	}
	f.c = console.New(f.e, opts)
	mux := http.NewServeMux()
	mux.Handle("/console/", f.c)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.srv.Close()
		_ = f.c.Close()
		_ = f.e.Close()
		require.NotContains(t, f.logs.String(), adminToken, "the admin token must never be logged")
	})
	_, err := f.e.Seed(context.Background(), contracts.SeedArgs{Kid: "k1", Secret: bytes.Repeat([]byte{7}, 32)})
	require.NoError(t, err)
	return f
}

// suspend suspends id on the given waitpoint keys (condition all) with
// tags and a timeout.
func (f *fixture) suspend(id string, timeout time.Duration, tags []string, keys ...string) contracts.SuspendOutcome {
	f.t.Helper()
	var wps []contracts.WaitpointSpec
	for _, k := range keys {
		wps = append(wps, contracts.WaitpointSpec{Key: k})
	}
	args := contracts.SuspendArgs{ExecutionID: id, Waitpoints: wps, Tags: tags, Condition: contracts.ConditionAll}
	if timeout > 0 {
		ms := timeout.Milliseconds()
		args.TimeoutMs = &ms
	}
	out, err := f.e.Suspend(context.Background(), args)
	require.NoError(f.t, err)
	return out
}

// signal delivers a signal to waitpoint i of a suspension.
func (f *fixture) signal(s contracts.SuspendOutcome, i int, name, payload, idem string) {
	f.t.Helper()
	wp := s.Waitpoints[i]
	_, err := f.e.DeliverSignal(context.Background(), contracts.DeliverSignalArgs{
		ExecutionID: s.ExecutionID, WaitpointID: wp.WaitpointID, Token: wp.Token,
		Name: name, Payload: []byte(payload), IdempotencyKey: idem,
	})
	require.NoError(f.t, err)
}

// claim claims one claimable execution with a lease of lease and returns
// the claim; it fails the test when nothing is claimable.
func (f *fixture) claim(lease time.Duration) contracts.ClaimOutcome {
	f.t.Helper()
	out, err := f.e.ClaimResumedExecution(context.Background(), contracts.ClaimArgs{WorkerID: "w1", LeaseMs: lease.Milliseconds()})
	require.NoError(f.t, err)
	require.NotEmpty(f.t, out.LeaseID, "something to claim")
	return out
}

// browser is one client with its own cookies; it follows no redirect.
type browser struct {
	f       *fixture
	cookies map[string]*http.Cookie
	header  http.Header // extra headers on every request
}

func (f *fixture) browser() *browser {
	return &browser{f: f, cookies: map[string]*http.Cookie{}, header: http.Header{}}
}

type answer struct {
	status int
	header http.Header
	body   string
	set    []*http.Cookie
}

func (b *browser) do(method, path string, form url.Values) answer {
	b.f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.f.srv.URL+path, body)
	require.NoError(b.f.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	for _, c := range b.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(b.f.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.f.t, err)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(raw), set: resp.Cookies()}
}

func (b *browser) get(path string) answer { return b.do(http.MethodGet, path, nil) }

func (b *browser) post(path string, form url.Values) answer {
	return b.do(http.MethodPost, path, form)
}

var (
	loginTokenRE = regexp.MustCompile(`name="login_csrf" value="([^"]+)"`)
	csrfRE       = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// login signs in with token and returns the answer to the form.
func (b *browser) login(token string) answer {
	b.f.t.Helper()
	page := b.get("/console/login")
	require.Equal(b.f.t, http.StatusOK, page.status)
	m := loginTokenRE.FindStringSubmatch(page.body)
	require.NotNil(b.f.t, m, "the login form carries its token")
	return b.post("/console/login", url.Values{"login_csrf": {m[1]}, "token": {token}, "next": {"/console/"}})
}

// signedIn returns a browser with a session.
func (f *fixture) signedIn() *browser {
	f.t.Helper()
	b := f.browser()
	a := b.login(adminToken)
	require.Equal(f.t, http.StatusSeeOther, a.status, a.body)
	return b
}

// csrf returns the CSRF token of the session's forms.
func (b *browser) csrf() string {
	b.f.t.Helper()
	m := csrfRE.FindStringSubmatch(b.get("/console/").body)
	require.NotNil(b.f.t, m)
	return m[1]
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }
