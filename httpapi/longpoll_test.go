package httpapi_test

// Tests of the long-poll claims: wait_ms on POST /v1/admin/claim and the
// batch route POST /v1/admin/claims.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/backend/sqlite"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
	"github.com/stretchr/testify/require"
)

// lpServer is a loopback server over h, whose engine e is seeded.
type lpServer struct {
	t   *testing.T
	e   *engine.Engine
	h   *httpapi.Handler
	url string
}

func newLPServer(t *testing.T, e *engine.Engine, poll time.Duration) *lpServer {
	t.Helper()
	ctx := context.Background()
	_, err := e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret(bytes.Repeat([]byte{5}, 32))})
	require.NoError(t, err)
	h := httpapi.New(e, httpapi.Options{AdminToken: cbAdmin, Logger: slog.New(slog.DiscardHandler)})
	httpapi.SetClaimPollInterval(h, poll)
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); _ = h.Close(); _ = e.Close() })
	return &lpServer{t: t, e: e, h: h, url: srv.URL}
}

// post sends an admin POST and returns status and body.
func (s *lpServer) post(ctx context.Context, path, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", s.url+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+cbAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// suspend suspends exec on one waitpoint and returns it.
func (s *lpServer) suspend(e *engine.Engine, exec string) contracts.WaitpointOutcome {
	s.t.Helper()
	sus, err := e.Suspend(context.Background(), contracts.SuspendArgs{ExecutionID: exec, Waitpoints: []contracts.WaitpointSpec{{Key: "go"}}})
	require.NoError(s.t, err)
	return sus.Waitpoints[0]
}

func (s *lpServer) deliver(e *engine.Engine, exec string, wp contracts.WaitpointOutcome) {
	s.t.Helper()
	out, err := e.DeliverSignal(context.Background(), contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: wp.WaitpointID, Token: wp.Token, Name: "go"})
	require.NoError(s.t, err)
	require.True(s.t, out.Resumed)
}

// waitForWaiters blocks until n claims wait on s's handler.
func (s *lpServer) waitForWaiters(n int) {
	s.t.Helper()
	require.Eventually(s.t, func() bool { w, _ := httpapi.ClaimWaiters(s.h); return w == n }, 10*time.Second, time.Millisecond)
}

type claimAnswer struct {
	status int
	body   string
	err    error
}

func (s *lpServer) claimAsync(path, body string) <-chan claimAnswer {
	ch := make(chan claimAnswer, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		status, b, err := s.post(ctx, path, body)
		ch <- claimAnswer{status, b, err}
	}()
	return ch
}

// TestLongPollWakesOnResume: a claim waiting with no poll fallback (the
// poll interval is an hour) answers the execution a delivery through the
// same Engine resumes, as soon as it does; the watcher lingers for the
// next long poll.
func TestLongPollWakesOnResume(t *testing.T) {
	s := newLPServer(t, engine.New(memory.New()), time.Hour)
	wp := s.suspend(s.e, "run-1")
	answer := s.claimAsync("/v1/admin/claim", `{"worker_id":"w1","wait_ms":30000}`)
	s.waitForWaiters(1)
	_, watching := httpapi.ClaimWaiters(s.h)
	require.True(t, watching)

	s.deliver(s.e, "run-1", wp)
	a := <-answer
	require.NoError(t, a.err)
	require.Equal(t, http.StatusOK, a.status, a.body)
	var c contracts.ClaimOutcome
	require.NoError(t, json.Unmarshal([]byte(a.body), &c))
	require.Equal(t, contracts.OutcomeClaimed, c.Outcome)
	require.Equal(t, "run-1", c.ExecutionID)
	w, watching := httpapi.ClaimWaiters(s.h)
	require.Zero(t, w)
	require.True(t, watching, "the watcher lingers")

	// The next long poll uses the lingering watcher.
	wp = s.suspend(s.e, "run-2")
	answer = s.claimAsync("/v1/admin/claim", `{"worker_id":"w1","wait_ms":30000}`)
	s.waitForWaiters(1)
	s.deliver(s.e, "run-2", wp)
	a = <-answer
	require.NoError(t, a.err)
	require.Contains(t, a.body, `"execution_id":"run-2"`)
}

// TestLongPollPollsAcrossEngines: a resume made through another Engine on
// the same SQLite file wakes nobody in this process; the poll fallback
// finds it.
func TestLongPollPollsAcrossEngines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ff.db")
	open := func() *engine.Engine {
		b, err := sqlite.Open(context.Background(), path)
		require.NoError(t, err)
		return engine.New(b)
	}
	s := newLPServer(t, open(), 20*time.Millisecond)
	other := open()
	t.Cleanup(func() { _ = other.Close() })
	wp := s.suspend(other, "run-1")
	answer := s.claimAsync("/v1/admin/claims", `{"worker_id":"w1","max":5,"wait_ms":30000}`)
	s.waitForWaiters(1)
	s.deliver(other, "run-1", wp)
	a := <-answer
	require.NoError(t, a.err)
	require.Equal(t, http.StatusOK, a.status, a.body)
	var c contracts.ClaimBatchOutcome
	require.NoError(t, json.Unmarshal([]byte(a.body), &c))
	require.Len(t, c.Claims, 1)
	require.Equal(t, "run-1", c.Claims[0].ExecutionID)
}

// TestLongPollDeadline: with nothing claimable, a claim answers none and a
// batch claim [] once wait_ms has passed; without wait_ms at once.
func TestLongPollDeadline(t *testing.T) {
	s := newLPServer(t, engine.New(memory.New()), 10*time.Millisecond)
	ctx := context.Background()
	for _, c := range []struct{ path, body, want string }{
		{"/v1/admin/claim", `{"worker_id":"w1","wait_ms":50}`, `{"outcome":"none"}`},
		{"/v1/admin/claim", `{"worker_id":"w1"}`, `{"outcome":"none"}`},
		{"/v1/admin/claims", `{"worker_id":"w1","max":3,"wait_ms":50}`, `{"claims":[]}`},
		{"/v1/admin/claims", `{"worker_id":"w1","max":3,"wait_ms":null}`, `{"claims":[]}`},
	} {
		status, body, err := s.post(ctx, c.path, c.body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, body)
		require.JSONEq(t, c.want, body)
	}
}

// TestLongPollArguments: wait_ms outside 0-30000, and the claim arguments,
// are refused naming the field, before any claim; max is required by the
// batch route.
func TestLongPollArguments(t *testing.T) {
	s := newLPServer(t, engine.New(memory.New()), time.Hour)
	s.deliver(s.e, "run-1", s.suspend(s.e, "run-1"))
	ctx := context.Background()
	for _, c := range []struct{ path, body, detail string }{
		{"/v1/admin/claim", `{"worker_id":"w1","wait_ms":30001}`, "wait_ms: must be an integer from 0 to 30000"},
		{"/v1/admin/claim", `{"worker_id":"w1","wait_ms":-1}`, "wait_ms: must be an integer from 0 to 30000"},
		{"/v1/admin/claim", `{"worker_id":"w1","wait_ms":"1"}`, "wait_ms: has the wrong JSON type"},
		{"/v1/admin/claim", `{"worker_id":"..","wait_ms":10}`, "worker_id: must not be"},
		{"/v1/admin/claim", `{"worker_id":"w1","lease_ms":-5,"wait_ms":10}`, "lease_ms: must be an integer from 1"},
		{"/v1/admin/claims", `{"worker_id":"w1","wait_ms":10}`, "max: must be an integer from 1 to 100"},
		{"/v1/admin/claims", `{"worker_id":"w1","max":101}`, "max: must be an integer from 1 to 100"},
		{"/v1/admin/claims", `{"worker_id":"w1","max":1,"wait_ms":30001}`, "wait_ms: must be an integer from 0 to 30000"},
		{"/v1/admin/claims", `{"worker_id":"w1","max":1,"extra":1}`, "body: has an unknown field"},
	} {
		status, body, err := s.post(ctx, c.path, c.body)
		require.NoError(t, err)
		require.Equal(t, http.StatusBadRequest, status, body)
		require.Contains(t, body, c.detail)
	}
	w, watching := httpapi.ClaimWaiters(s.h)
	require.Zero(t, w)
	require.False(t, watching)
	c, err := s.e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w9"})
	require.NoError(t, err)
	require.Equal(t, contracts.OutcomeClaimed, c.Outcome, "a refused claim claimed nothing")
}

// TestLongPollBatch: the batch route claims what is claimable at once, up
// to max, oldest first; a waiting batch answers as soon as one execution
// is resumed.
func TestLongPollBatch(t *testing.T) {
	s := newLPServer(t, engine.New(memory.New()), time.Hour)
	for _, exec := range []string{"a", "b", "c"} {
		s.deliver(s.e, exec, s.suspend(s.e, exec))
	}
	status, body, err := s.post(context.Background(), "/v1/admin/claims", `{"worker_id":"w1","max":2,"lease_ms":60000}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	var got contracts.ClaimBatchOutcome
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.Len(t, got.Claims, 2)
	require.Equal(t, []string{"a", "b"}, []string{got.Claims[0].ExecutionID, got.Claims[1].ExecutionID})

	status, body, err = s.post(context.Background(), "/v1/admin/claims", `{"worker_id":"w1","max":5}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"execution_id":"c"`)

	wp := s.suspend(s.e, "d")
	answer := s.claimAsync("/v1/admin/claims", `{"worker_id":"w2","max":5,"wait_ms":30000}`)
	s.waitForWaiters(1)
	s.deliver(s.e, "d", wp)
	a := <-answer
	require.NoError(t, a.err)
	require.Contains(t, a.body, `"execution_id":"d"`)
}

// TestLongPollManyWaiters: one watcher serves every waiting claim; each
// resumed execution goes to exactly one of them.
func TestLongPollManyWaiters(t *testing.T) {
	s := newLPServer(t, engine.New(memory.New()), time.Hour)
	const n = 8
	wps := make([]contracts.WaitpointOutcome, n)
	for i := range n {
		wps[i] = s.suspend(s.e, "run-"+string(rune('a'+i)))
	}
	answers := make([]<-chan claimAnswer, n)
	for i := range n {
		answers[i] = s.claimAsync("/v1/admin/claim", `{"worker_id":"w","wait_ms":30000}`)
	}
	s.waitForWaiters(n)
	for i := range n {
		s.deliver(s.e, "run-"+string(rune('a'+i)), wps[i])
	}
	seen := map[string]bool{}
	for _, ch := range answers {
		a := <-ch
		require.NoError(t, a.err)
		var c contracts.ClaimOutcome
		require.NoError(t, json.Unmarshal([]byte(a.body), &c), a.body)
		require.Equal(t, contracts.OutcomeClaimed, c.Outcome, a.body)
		require.False(t, seen[c.ExecutionID], "claimed twice: %s", c.ExecutionID)
		seen[c.ExecutionID] = true
	}
	require.Len(t, seen, n)
}

// TestLongPollCallerLeaves: a caller that gives up ends its wait: the
// handler unsubscribes and the watcher stops (once it lingered: here at
// once).
func TestLongPollCallerLeaves(t *testing.T) {
	s := newLPServer(t, engine.New(memory.New()), time.Hour)
	httpapi.SetClaimWatchLinger(s.h, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := s.post(ctx, "/v1/admin/claim", `{"worker_id":"w1","wait_ms":30000}`)
		done <- err
	}()
	s.waitForWaiters(1)
	cancel()
	require.Error(t, <-done)
	s.waitForWaiters(0)
	require.Eventually(t, func() bool { _, watching := httpapi.ClaimWaiters(s.h); return !watching }, 10*time.Second, time.Millisecond)

	// With a linger, the watcher stops once it has lingered without a waiter.
	httpapi.SetClaimWatchLinger(s.h, 50*time.Millisecond)
	status, body, err := s.post(context.Background(), "/v1/admin/claim", `{"worker_id":"w1","wait_ms":10}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	require.Eventually(t, func() bool { _, watching := httpapi.ClaimWaiters(s.h); return !watching }, 10*time.Second, time.Millisecond)
}

// TestLongPollEndsAtShutdown: Shutdown of a server made by NewServer ends
// the waiting claims at once (outcome none) instead of waiting them out;
// claims after it do not wait.
func TestLongPollEndsAtShutdown(t *testing.T) {
	e := engine.New(memory.New())
	t.Cleanup(func() { _ = e.Close() })
	h := httpapi.New(e, httpapi.Options{AdminToken: cbAdmin, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httpapi.NewServer(ln.Addr().String(), h)
	go func() { _ = srv.Serve(ln) }()
	s := &lpServer{t: t, e: e, h: h, url: "http://" + ln.Addr().String()}
	answer := s.claimAsync("/v1/admin/claim", `{"worker_id":"w1","wait_ms":30000}`)
	s.waitForWaiters(1)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx), "Shutdown waited out the long poll")
	a := <-answer
	require.NoError(t, a.err)
	require.JSONEq(t, `{"outcome":"none"}`, a.body)

	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/v1/admin/claim", strings.NewReader(`{"worker_id":"w1","wait_ms":30000}`))
	r.Header.Set("Authorization", "Bearer "+cbAdmin)
	h.ServeHTTP(w, r) // would wait 30 s, were h not closed
	require.JSONEq(t, `{"outcome":"none"}`, w.Body.String())
}

// TestLongPollOutlivesServerTimeouts: a long poll on a server whose read
// and write timeouts are shorter than its wait still answers the claim:
// it moves its connection's deadlines past its wait, and the connection's
// next request gets the server's own again.
func TestLongPollOutlivesServerTimeouts(t *testing.T) {
	e := engine.New(memory.New())
	_, err := e.Seed(context.Background(), contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret(bytes.Repeat([]byte{5}, 32))})
	require.NoError(t, err)
	h := httpapi.New(e, httpapi.Options{AdminToken: cbAdmin, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(func() { srv.Close(); _ = h.Close(); _ = e.Close() })
	s := &lpServer{t: t, e: e, h: h, url: srv.URL}
	httpapi.SetClaimPollInterval(h, time.Hour)
	wp := s.suspend(e, "run-1")

	answer := s.claimAsync("/v1/admin/claim", `{"worker_id":"w1","wait_ms":30000}`)
	s.waitForWaiters(1)
	time.Sleep(800 * time.Millisecond) // past both of the server's timeouts
	s.deliver(e, "run-1", wp)
	a := <-answer
	require.NoError(t, a.err)
	require.Equal(t, http.StatusOK, a.status)
	require.Contains(t, a.body, `"outcome":"claimed"`)

	status, body, err := s.post(context.Background(), "/v1/admin/claim", `{"worker_id":"w1"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"outcome":"none"}`, body)
}
