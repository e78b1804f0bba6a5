package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	_ "github.com/flowfabric/flowfabric-go/backend/sqlite"
	"github.com/flowfabric/flowfabric-go/console"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
	"github.com/flowfabric/flowfabric-go/internal/syncbuf"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

const adminToken = "browser-test-admin-token-0123456789abcdef"

// chromiumPath finds Debian's chromium (FF_CHROMIUM overrides). Without
// it the test skips, and fails under CI=true.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("FF_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	msg := "chromium is not installed: the console's browser tests need it (apt-get install chromium, or set FF_CHROMIUM)"
	if testenv.InCI() {
		t.Fatal(msg + "; CI=true makes this a failure")
	}
	t.Skip(msg)
	return ""
}

// server is what ff serve --console runs: the gateway at /, the console
// at /console/, over one Engine on a SQLite file.
type server struct {
	t    *testing.T
	e    *engine.Engine
	api  *httpapi.Handler
	con  *console.Console
	srv  *httptest.Server
	logs *syncbuf.Buffer
}

func startServer(t *testing.T, metricsEvery time.Duration) *server {
	t.Helper()
	ctx := context.Background()
	e, err := engine.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "ff.db"))
	require.NoError(t, err)
	s := &server{t: t, e: e, logs: &syncbuf.Buffer{}}
	log := slog.New(slog.NewJSONHandler(s.logs, nil))
	s.api = httpapi.New(e, httpapi.Options{AdminToken: adminToken, Logger: log})
	s.con = console.New(e, console.Options{
		AdminToken: adminToken, PlainHTTPLoopback: true, Logger: log, MetricsEvery: metricsEvery,
		Metrics: func() []byte {
			var b bytes.Buffer
			_ = s.api.WriteMetrics(&b)
			return b.Bytes()
		},
		OnRotate: func(ctx context.Context, r console.Rotation) {
			s.api.KeystoreAudit().RotateAll(ctx, httpapi.Caller{Via: "console", Command: "rotate", RemoteAddr: r.RemoteAddr}, r.NewKid, r.GraceMs, r.Result, r.Err)
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/console/", s.con)
	mux.Handle("/", s.api)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		s.srv.Close()
		_ = s.con.Close()
		_ = s.api.Close()
		_ = e.Close()
		require.NotContains(t, s.logs.String(), adminToken, "the admin token is never logged")
	})
	_, err = e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: bytes.Repeat([]byte{0x5e}, 32)})
	require.NoError(t, err)
	return s
}

// suspend suspends id (condition all) on keys with tags and a timeout.
func (s *server) suspend(id string, timeout time.Duration, tags []string, keys ...string) contracts.SuspendOutcome {
	s.t.Helper()
	var wps []contracts.WaitpointSpec
	for _, k := range keys {
		wps = append(wps, contracts.WaitpointSpec{Key: k})
	}
	args := contracts.SuspendArgs{ExecutionID: id, Waitpoints: wps, Tags: tags, Condition: contracts.ConditionAll}
	if timeout > 0 {
		ms := timeout.Milliseconds()
		args.TimeoutMs = &ms
	}
	out, err := s.e.Suspend(context.Background(), args)
	require.NoError(s.t, err)
	return out
}

// signal delivers a signal to waitpoint i through the public signal route,
// as a caller holding the token would.
func (s *server) signal(sus contracts.SuspendOutcome, i int, name string, payload any, idem string) int {
	s.t.Helper()
	wp := sus.Waitpoints[i]
	// Markup stays raw in the JSON (no \u003c escapes), as a hostile
	// sender would write it.
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	require.NoError(s.t, enc.Encode(map[string]any{"name": name, "payload": payload, "idempotency_key": idem}))
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/v1/executions/"+sus.ExecutionID+"/waitpoints/"+wp.WaitpointID+"/signals", &body)
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+wp.Token)
	resp, err := s.srv.Client().Do(req)
	require.NoError(s.t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// browser is a headless Chromium tab that records every JavaScript dialog.
type browser struct {
	ctx     context.Context
	dialogs *dialogLog
}

type dialogLog struct {
	mu   sync.Mutex
	msgs []string
}

func (d *dialogLog) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.msgs...)
}

func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(actx)
	// The browser lives as long as the context of its first call: a bound
	// on the whole test.
	ctx, cancelTime := context.WithTimeout(tab, 4*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	b := &browser{ctx: ctx, dialogs: &dialogLog{}}
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.dialogs.mu.Lock()
			b.dialogs.msgs = append(b.dialogs.msgs, ev.Message)
			b.dialogs.mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return b
}

// do runs steps in the tab, failing the test on error.
func (b *browser) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

// stepTimeout bounds one step of a test in the browser.
const stepTimeout = 30 * time.Second

// follow runs a step that loads a page (a click on a link or a submit)
// and waits for the new page.
func (b *browser) follow(t *testing.T, step chromedp.Action[chromedp.Void]) *network.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, step)
	require.NoError(t, err)
	return resp
}

// run runs one action that returns a value.
func run[T any](t *testing.T, b *browser, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err)
	return v
}

// location returns the tab's URL from /console/ on.
func (b *browser) location(t *testing.T) string {
	t.Helper()
	loc := run(t, b, chromedp.Location())
	i := strings.Index(loc, "/console/")
	require.GreaterOrEqual(t, i, 0, loc)
	return loc[i:]
}

// text returns the rendered text (innerText) of the first element css
// matches, waiting for it. It reads through JavaScript rather than DOM node
// ids, which the page's countdowns would make stale.
func (b *browser) text(t *testing.T, css string) string {
	t.Helper()
	return b.js(t, `(() => { const e = document.querySelector(`+strconv.Quote(css)+`); return e ? e.innerText : null })()`)
}

// js evaluates expr until it gives a string (not null) and returns it.
func (b *browser) js(t *testing.T, expr string) string {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		v := run(t, b, chromedp.Evaluate[*string](expr))
		if v != nil {
			return *v
		}
		require.True(t, time.Now().Before(deadline), "no result from %s", expr)
		time.Sleep(50 * time.Millisecond)
	}
}

// login signs in through the form.
func (b *browser) login(t *testing.T, base string) {
	t.Helper()
	b.do(t,
		chromedp.Navigate(base+"/console/login"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), adminToken),
	)
	b.follow(t, chromedp.Submit(chromedp.ID("token")))
	b.do(t,
		chromedp.WaitVisible(chromedp.CSS("form.logout")),
	)
}
