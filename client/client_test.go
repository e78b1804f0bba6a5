package client_test

// Tests of the client against a real handler over the memory backend:
// every route is reached, results and errors are the Engine's, nothing
// the client reports quotes a token or secret. The same history through
// `ff serve` on SQLite, PostgreSQL and Valkey, compared with the Engine's,
// is internal/integration/client.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/client"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
	"github.com/stretchr/testify/require"
)

const adminToken = "client-test-admin-token-0123456789abcdef"

var secret = contracts.Secret(bytes.Repeat([]byte{0x42}, 32))

// recorder counts the requests that reach the server, by route pattern.
type recorder struct {
	mu       sync.Mutex
	mux      *http.ServeMux
	patterns map[string]int
	next     http.RoundTripper
}

func newRecorder() *recorder {
	r := &recorder{mux: http.NewServeMux(), patterns: map[string]int{}, next: http.DefaultTransport}
	for _, rt := range httpapi.Routes() {
		r.mux.Handle(rt.Method+" "+rt.Pattern, http.NotFoundHandler())
	}
	return r
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	_, pattern := r.mux.Handler(req)
	r.mu.Lock()
	r.patterns[pattern]++
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.patterns {
		n += c
	}
	return n
}

// server is a handler with every route on, over a memory engine.
func server(t *testing.T) (*client.Client, *recorder, *engine.Engine) {
	t.Helper()
	e := engine.New(memory.New())
	h := httpapi.New(e, httpapi.Options{AdminToken: adminToken, Logger: slog.New(slog.DiscardHandler), CallbackBaseURL: "https://hooks.example.com"})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); _ = h.Close(); _ = e.Close() })
	rec := newRecorder()
	c, err := client.New(srv.URL, client.WithAdminToken(adminToken), client.WithHTTPClient(&http.Client{Transport: rec}))
	require.NoError(t, err)
	return c, rec, e
}

// TestClientReachesEveryRoute runs a story through the client that calls
// every route of httpapi.Routes at least once and checks the results.
func TestClientReachesEveryRoute(t *testing.T) {
	c, rec, _ := server(t)
	ctx := context.Background()

	require.NoError(t, c.Health(ctx))
	require.NoError(t, c.Ping(ctx))
	seeded, err := c.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: secret})
	require.NoError(t, err)
	require.Equal(t, contracts.SeedSeeded, seeded.Outcome)

	sus, err := c.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "run-1", Condition: contracts.CountCondition(2),
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}, {Key: "c"}}, Tags: []string{"t1"}, IdempotencyKey: "s1"})
	require.NoError(t, err)
	require.Equal(t, contracts.CountCondition(2), sus.Condition)
	a, b := sus.Waitpoints[0], sus.Waitpoints[1]
	del, err := c.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "run-1", WaitpointID: a.WaitpointID, Token: a.Token,
		Name: "approved", Payload: json.RawMessage(`{"by": "<ana>"}`), IdempotencyKey: "i1"})
	require.NoError(t, err)
	require.Equal(t, contracts.OutcomeAccepted, del.Outcome)
	dup, err := c.DeliverSignalCallback(ctx, contracts.DeliverSignalArgs{ExecutionID: "run-1", WaitpointID: a.WaitpointID, Token: a.Token,
		Name: "approved", IdempotencyKey: "i1"})
	require.NoError(t, err)
	require.Equal(t, contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeDuplicate, SignalID: del.SignalID}, dup)
	list, err := c.ListSuspended(ctx, contracts.ListSuspendedArgs{Tag: "t1"})
	require.NoError(t, err)
	require.Len(t, list.Executions, 1)
	u, err := c.CallbackURL(ctx, "run-1", b.WaitpointID, b.Token, "")
	require.NoError(t, err)
	require.Equal(t, "https://hooks.example.com/v1/callbacks/run-1/"+b.WaitpointID+"/"+b.Token, u)

	// A waiting claim answers once the second signal resumes the execution.
	claimed := make(chan contracts.ClaimOutcome, 1)
	go func() {
		out, err := c.ClaimResumedExecutionWait(ctx, contracts.ClaimArgs{WorkerID: "w1", LeaseMs: 60000}, 20*time.Second)
		require.NoError(t, err)
		claimed <- out
	}()
	time.Sleep(50 * time.Millisecond) // most likely waiting by now; if not, it claims at once
	del, err = c.DeliverSignalCallback(ctx, contracts.DeliverSignalArgs{ExecutionID: "run-1", WaitpointID: b.WaitpointID, Token: b.Token, Name: "ok"})
	require.NoError(t, err)
	require.True(t, del.Resumed)
	claim := <-claimed
	require.Equal(t, contracts.OutcomeClaimed, claim.Outcome)
	require.Len(t, claim.Signals, 2)
	require.Equal(t, `{"by":"<ana>"}`, string(claim.Signals[0].Payload), "the payload keeps <, as the Engine stores it")

	obs, err := c.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "run-1", Limit: 1})
	require.NoError(t, err)
	require.Len(t, obs.Signals, 1)
	require.NotNil(t, obs.NextCursor)
	ext, err := c.ExtendLease(ctx, contracts.ExtendLeaseArgs{ExecutionID: "run-1", LeaseID: claim.LeaseID})
	require.NoError(t, err)
	require.Equal(t, contracts.OutcomeExtended, ext.Outcome)
	_, err = c.ReleaseExecution(ctx, contracts.ReleaseArgs{ExecutionID: "run-1", LeaseID: claim.LeaseID})
	require.NoError(t, err)
	batch, err := c.ClaimResumedExecutions(ctx, contracts.ClaimBatchArgs{WorkerID: "w2", Max: 3})
	require.NoError(t, err)
	require.Len(t, batch.Claims, 1)
	_, err = c.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: "run-1", LeaseID: claim.LeaseID})
	require.ErrorIs(t, err, contracts.ErrLeaseMismatch, "the released lease holds nothing")
	done, err := c.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: "run-1", LeaseID: batch.Claims[0].LeaseID})
	require.NoError(t, err)
	require.Equal(t, contracts.OutcomeCompleted, done.Outcome)

	created, err := c.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: "run-2", Key: "mail", ExpiresInMs: 60000})
	require.NoError(t, err)
	info, err := c.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: "run-2", WaitpointID: created.WaitpointID})
	require.NoError(t, err)
	require.Equal(t, contracts.WaitpointPending, info.Status)
	_, err = c.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "run-2", Waitpoints: []contracts.WaitpointSpec{{Pending: created.WaitpointID}}})
	require.NoError(t, err)
	canc, err := c.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: "run-2"})
	require.NoError(t, err)
	require.Equal(t, contracts.OutcomeCancelled, canc.Outcome)
	desc, err := c.DescribeExecution(ctx, contracts.DescribeExecutionArgs{ExecutionID: "run-2"})
	require.NoError(t, err)
	require.Equal(t, contracts.StateResumed, desc.State)
	require.Equal(t, contracts.ReasonCancelled, *desc.Reason)
	counts, err := c.CountExecutions(ctx, contracts.CountExecutionsArgs{})
	require.NoError(t, err)
	require.Equal(t, int64(1), counts.Resumed, "run-2, cancelled")

	signed, err := c.Sign(ctx, contracts.SignArgs{Scope: "s", Message: []byte("hello")})
	require.NoError(t, err)
	v, err := c.Verify(ctx, contracts.VerifyArgs{Scope: "s", Message: []byte("hello"), Token: signed.Token})
	require.NoError(t, err)
	require.True(t, v.Valid)
	rot, err := c.RotateAll(ctx, contracts.RotateArgs{NewKid: "k2", NewSecret: bytes.Repeat([]byte{0x43}, 32), GraceMs: 0})
	require.NoError(t, err)
	require.Equal(t, contracts.RotateRotated, rot.Entries[0].Outcome.Outcome)
	kids, err := c.ListKids(ctx)
	require.NoError(t, err)
	require.Equal(t, "k2", *kids.Partitions[0].CurrentKid)
	rev, err := c.RevokeKid(ctx, contracts.RevokeKidArgs{Kid: "k1"})
	require.NoError(t, err)
	require.Len(t, rev.Entries, 1)

	m, err := c.Metrics(ctx)
	require.NoError(t, err)
	require.Contains(t, string(m), "ff_http_requests_total")
	doc, err := c.OpenAPI(ctx)
	require.NoError(t, err)
	require.Contains(t, string(doc), `"openapi":"3.1.0"`)

	for _, rt := range httpapi.Routes() {
		require.NotZero(t, rec.patterns[rt.Method+" "+rt.Pattern], "the client never called %s %s", rt.Method, rt.Pattern)
	}
}

// TestClientErrors: error envelopes decode into the Engine's errors,
// HTTP's own codes included; a call the Engine would refuse answers the
// same error without a request; text HTTP cannot carry is refused.
func TestClientErrors(t *testing.T) {
	c, rec, e := server(t)
	ctx := context.Background()
	_, err := c.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: secret})
	require.NoError(t, err)

	_, err = c.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "nobody"})
	want := &contracts.Error{Kind: contracts.KindNotFound, Code: contracts.CodeExecutionNotFound, Detail: `execution_id: "nobody" is not known`}
	require.Equal(t, want, err)
	_, engineErr := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "nobody"})
	require.Equal(t, engineErr, err)

	before := rec.total()
	for name, call := range map[string]func() error{
		"dot execution id": func() error {
			_, err := c.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: ".."})
			return err
		},
		"empty execution id": func() error {
			_, err := c.Suspend(ctx, contracts.SuspendArgs{Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
			return err
		},
		"limit": func() error {
			_, err := c.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 1001})
			return err
		},
		"waitpoint id": func() error {
			_, err := c.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e", WaitpointID: "", Token: "k1:" + strings.Repeat("0", 64), Name: "n"})
			return err
		},
	} {
		err := call()
		var ce *contracts.Error
		require.True(t, errors.As(err, &ce), name)
		require.Equal(t, contracts.KindValidation, ce.Kind, name)
	}
	_, err = c.Sign(ctx, contracts.SignArgs{Scope: "s", Message: []byte{0xff}})
	require.Equal(t, contracts.Invalid("message", "must be valid UTF-8"), err)
	_, err = c.ClaimResumedExecutionWait(ctx, contracts.ClaimArgs{WorkerID: "w"}, 31*time.Second)
	require.ErrorIs(t, err, contracts.ErrInvalidInput)
	require.Equal(t, before, rec.total(), "a refused call sent a request")

	anon, err := client.New(strings.TrimSuffix(c.BaseURL(), "/"))
	require.NoError(t, err)
	_, err = anon.ListKids(ctx)
	require.ErrorIs(t, err, &contracts.Error{Kind: contracts.KindValidation, Code: httpapi.CodeUnauthorized})
}

// TestClientNew: the base URL's rules.
func TestClientNew(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "https://ff.example.com/prefix/"} {
		_, err := client.New(ok)
		require.NoError(t, err, ok)
	}
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://h", "https://u:p@h", "https://h?x", "https://h#f"} {
		_, err := client.New(bad)
		require.ErrorIs(t, err, contracts.ErrInvalidInput, bad)
		require.NotContains(t, err.Error(), "u:p")
	}
}
