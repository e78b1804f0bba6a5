package client

// Tests of the retry policy with scripted transports: which failures are
// retried for idempotent calls and for the others, Retry-After, and that
// no error quotes a token.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/stretchr/testify/require"
)

const token = "k1:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// script answers the i-th request with steps[min(i, len-1)].
type script struct {
	steps []func(*http.Request) (*http.Response, error)
	calls atomic.Int32
}

func (s *script) RoundTrip(r *http.Request) (*http.Response, error) {
	i := int(s.calls.Add(1)) - 1
	return s.steps[min(i, len(s.steps)-1)](r)
}

func answer(status int, body string, header ...string) func(*http.Request) (*http.Response, error) {
	return func(r *http.Request) (*http.Response, error) {
		h := http.Header{}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	}
}

func failure(err error) func(*http.Request) (*http.Response, error) {
	return func(*http.Request) (*http.Response, error) { return nil, err }
}

var (
	unreachable = `{"error":{"kind":"transport","code":"backend_unreachable","reason":null,"detail":"store down","retryable":true}}`
	contention  = `{"error":{"kind":"contention","code":"serialization_retry_exhausted","reason":null,"detail":"busy","retryable":true}}`
	closed      = `{"error":{"kind":"unavailable","code":"backend_closed","reason":null,"detail":"closed","retryable":false}}`
	dialRefused = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
)

func scripted(t *testing.T, steps ...func(*http.Request) (*http.Response, error)) (*Client, *script) {
	t.Helper()
	s := &script{steps: steps}
	c, err := New("http://ff.test", WithAdminToken("admin-token-0123456789"), WithHTTPClient(&http.Client{Transport: s}),
		WithRetry(RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}))
	require.NoError(t, err)
	return c, s
}

func listKids(c *Client) error {
	_, err := c.ListKids(context.Background())
	return err
}

func claim(c *Client) error {
	_, err := c.ClaimResumedExecution(context.Background(), contracts.ClaimArgs{WorkerID: "w1"})
	return err
}

func deliver(key string) func(c *Client) error {
	return func(c *Client) error {
		_, err := c.DeliverSignal(context.Background(), contracts.DeliverSignalArgs{ExecutionID: "e", WaitpointID: "00000000-0000-4000-8000-000000000000",
			Token: token, Name: "n", IdempotencyKey: key})
		return err
	}
}

func TestRetries(t *testing.T) {
	ok := answer(200, `{"partitions":[]}`)
	okClaim := answer(200, `{"outcome":"none"}`)
	okDeliver := answer(200, `{"outcome":"duplicate","signal_id":"00000000-0000-4000-8000-000000000001"}`)
	for _, c := range []struct {
		name  string
		call  func(*Client) error
		steps []func(*http.Request) (*http.Response, error)
		calls int32
		code  string // "" when the call succeeds
	}{
		{"idempotent: retryable envelope, then ok", listKids, stepsOf(answer(503, unreachable, "Retry-After", "0"), answer(429, contention), ok), 3, ""},
		{"idempotent: a proxy's 502 page, then ok", listKids, stepsOf(answer(502, "<html>bad gateway</html>"), ok), 2, ""},
		{"idempotent: a connection lost after sending, then ok", listKids, stepsOf(failure(io.ErrUnexpectedEOF), ok), 2, ""},
		{"idempotent: gives up after MaxAttempts", listKids, stepsOf(answer(503, unreachable)), DefaultMaxAttempts, contracts.CodeBackendUnreachable},
		{"not retryable: backend_closed", listKids, stepsOf(answer(503, closed)), 1, contracts.CodeBackendClosed},
		{"not retryable: a 404 page", listKids, stepsOf(answer(404, "not here")), 1, contracts.CodeInternal},
		{"claim: unreachable store, maybe applied", claim, stepsOf(answer(503, unreachable), okClaim), 1, contracts.CodeBackendUnreachable},
		{"claim: connection lost after sending", claim, stepsOf(failure(io.ErrUnexpectedEOF), okClaim), 1, contracts.CodeBackendUnreachable},
		{"claim: a proxy's 503 page", claim, stepsOf(answer(503, "busy"), okClaim), 1, contracts.CodeBackendUnreachable},
		{"claim: contention, nothing applied", claim, stepsOf(answer(429, contention), okClaim), 2, ""},
		{"claim: never connected", claim, stepsOf(failure(dialRefused), okClaim), 2, ""},
		{"deliver without key: not blindly", deliver(""), stepsOf(failure(io.ErrUnexpectedEOF), okDeliver), 1, contracts.CodeBackendUnreachable},
		{"deliver with key: retried", deliver("i1"), stepsOf(failure(io.ErrUnexpectedEOF), okDeliver), 2, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, s := scripted(t, c.steps...)
			err := c.call(cl)
			require.Equal(t, c.calls, s.calls.Load(), "attempts")
			if c.code == "" {
				require.NoError(t, err)
				return
			}
			var ce *contracts.Error
			require.True(t, errors.As(err, &ce), "%v", err)
			require.Equal(t, c.code, ce.Code)
			require.NotContains(t, err.Error(), token)
			require.NotContains(t, err.Error(), "admin-token")
		})
	}
}

func stepsOf(s ...func(*http.Request) (*http.Response, error)) []func(*http.Request) (*http.Response, error) {
	return s
}

// TestRetryAfter: a Retry-After longer than what is left of the context
// is not waited for; the error comes back at once.
func TestRetryAfter(t *testing.T) {
	cl, s := scripted(t, answer(503, unreachable, "Retry-After", "30"), answer(200, `{"partitions":[]}`))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := cl.ListKids(ctx)
	require.ErrorIs(t, err, contracts.ErrBackendUnreachable)
	require.Equal(t, int32(1), s.calls.Load())
	require.Less(t, time.Since(start), 5*time.Second)

	require.Equal(t, 30*time.Second, retryAfter("30"))
	require.Equal(t, time.Duration(0), retryAfter("soon"))
	require.Greater(t, retryAfter(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)), 59*time.Minute)
}

// TestBackoff: the delay doubles from BaseDelay up to MaxDelay, jittered
// over its upper half.
func TestBackoff(t *testing.T) {
	p := RetryPolicy{}.withDefaults()
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 10: 5 * time.Second} {
		for range 50 {
			d := p.backoff(n)
			require.GreaterOrEqual(t, d, want/2)
			require.LessOrEqual(t, d, want)
		}
	}
}

// TestTransportErrors: the context's deadline and cancellation are the
// Engine's transport errors; a refused connection is backend_unreachable
// naming the route and host, never the path (the callback route's holds
// the token) nor the token.
func TestTransportErrors(t *testing.T) {
	c, err := New("http://127.0.0.1:1", WithRetry(RetryPolicy{MaxAttempts: 1}))
	require.NoError(t, err)
	_, err = c.DeliverSignalCallback(context.Background(), contracts.DeliverSignalArgs{ExecutionID: "e",
		WaitpointID: "00000000-0000-4000-8000-000000000000", Token: token, Name: "n"})
	var ce *contracts.Error
	require.True(t, errors.As(err, &ce))
	require.Equal(t, contracts.CodeBackendUnreachable, ce.Code)
	require.True(t, ce.Retryable)
	require.Contains(t, ce.Detail, "deliver_signal_callback to 127.0.0.1:1")
	require.NotContains(t, ce.Detail, token[3:])
	require.NotContains(t, ce.Detail, "/v1/callbacks")

	block := &script{steps: stepsOf(func(r *http.Request) (*http.Response, error) {
		<-r.Context().Done()
		return nil, r.Context().Err()
	})}
	c, err = New("http://ff.test", WithHTTPClient(&http.Client{Transport: block}))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = c.ListKids(ctx)
	require.ErrorIs(t, err, contracts.ErrDeadlineExceeded)
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = c.ListKids(ctx)
	require.ErrorIs(t, err, contracts.ErrCanceled)
}
