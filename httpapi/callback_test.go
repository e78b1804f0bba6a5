package httpapi_test

// Tests of callback URLs (POST /v1/callbacks/{execution_id}/{waitpoint_id}/
// {token}, POST /v1/admin/callback-url) and of the Idempotency-Key header
// of both signal routes.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
	"github.com/flowfabric/flowfabric-go/internal/syncbuf"
	"github.com/stretchr/testify/require"
)

const cbAdmin = "callback-test-admin-token-0123456789"

// cbServer is a handler with callback URLs on, over a memory engine with a
// seeded keystore and execution run-1 suspended on waitpoints a and b
// (condition all), its log captured.
type cbServer struct {
	t   *testing.T
	e   *engine.Engine
	h   *httpapi.Handler
	log *syncbuf.Buffer
	sus contracts.SuspendOutcome
}

func newCBServer(t *testing.T, opts httpapi.Options) *cbServer {
	t.Helper()
	e := engine.New(memory.New())
	t.Cleanup(func() { _ = e.Close() })
	ctx := context.Background()
	_, err := e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret(bytes.Repeat([]byte{9}, 32))})
	require.NoError(t, err)
	sus, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "run-1", Condition: contracts.ConditionAll,
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})
	require.NoError(t, err)
	logs := &syncbuf.Buffer{}
	opts.AdminToken = cbAdmin
	opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := httpapi.New(e, opts)
	t.Cleanup(func() { _ = h.Close() })
	return &cbServer{t: t, e: e, h: h, log: logs, sus: sus}
}

// send serves one request; header holds extra headers.
func (s *cbServer) send(method, target, body string, header http.Header) (int, string) {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, "http://ff.test"+target, rd)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func errorOf(t *testing.T, body string) *contracts.Error {
	t.Helper()
	var env contracts.ErrorEnvelope
	require.NoError(t, json.Unmarshal([]byte(body), &env), body)
	require.NotNil(t, env.Error, body)
	return env.Error
}

func callbackPath(exec, wp, token string) string {
	return "/v1/callbacks/" + exec + "/" + wp + "/" + token
}

func signalPath(exec, wp string) string {
	return "/v1/executions/" + exec + "/waitpoints/" + wp + "/signals"
}

func bearerHeader(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

const base = "https://hooks.example.com/ff/"

// TestCallbacksOffByDefault: without CallbackBaseURL both callback routes
// answer 404 route_not_found saying so, the detail without the token, and
// nothing is recorded.
func TestCallbacksOffByDefault(t *testing.T) {
	s := newCBServer(t, httpapi.Options{})
	wp := s.sus.Waitpoints[0]
	status, body := s.send("POST", callbackPath("run-1", wp.WaitpointID, wp.Token), `{"ok":true}`, nil)
	require.Equal(t, http.StatusNotFound, status)
	e := errorOf(t, body)
	require.Equal(t, httpapi.CodeRouteNotFound, e.Code)
	require.Contains(t, e.Detail, "callback URLs are off")
	require.NotContains(t, body, wp.Token[3:])

	status, body = s.send("POST", "/v1/admin/callback-url", `{}`, bearerHeader(cbAdmin))
	require.Equal(t, http.StatusNotFound, status, body)
	_, err := (&httpapi.Handler{}).CallbackURL("run-1", wp.WaitpointID, wp.Token, "")
	require.ErrorIs(t, err, &contracts.Error{Kind: contracts.KindNotFound, Code: httpapi.CodeRouteNotFound})

	obs, err := s.e.ObserveSignals(context.Background(), contracts.ObserveSignalsArgs{ExecutionID: "run-1"})
	require.NoError(t, err)
	require.Empty(t, obs.Signals)
}

// TestCallbackDelivers: the admin route builds the URL under the base
// (path prefix kept, name as query); a POST to it without Authorization
// delivers the body as payload; a repeat with the same Idempotency-Key is
// a duplicate naming the first signal; an empty body is a null payload
// under the default name "callback".
func TestCallbackDelivers(t *testing.T) {
	s := newCBServer(t, httpapi.Options{CallbackBaseURL: base})
	a, b := s.sus.Waitpoints[0], s.sus.Waitpoints[1]

	req, _ := json.Marshal(map[string]string{"execution_id": "run-1", "waitpoint_id": a.WaitpointID, "token": a.Token, "name": "approved"})
	status, body := s.send("POST", "/v1/admin/callback-url", string(req), bearerHeader(cbAdmin))
	require.Equal(t, http.StatusOK, status, body)
	var res httpapi.CallbackURLResult
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	require.Equal(t, "https://hooks.example.com/ff/v1/callbacks/run-1/"+a.WaitpointID+"/"+a.Token+"?name=approved", res.CallbackURL)
	direct, err := s.h.CallbackURL("run-1", a.WaitpointID, a.Token, "approved")
	require.NoError(t, err)
	require.Equal(t, res.CallbackURL, direct)

	u, err := url.Parse(res.CallbackURL)
	require.NoError(t, err)
	target := strings.TrimPrefix(u.Path, "/ff") + "?" + u.RawQuery // the proxy strips /ff
	key := http.Header{"Idempotency-Key": {`"mail-1"`}}
	status, body = s.send("POST", target, `{"by": "<ana>"}`, key)
	require.Equal(t, http.StatusOK, status, body)
	var first contracts.DeliverSignalOutcome
	require.NoError(t, json.Unmarshal([]byte(body), &first))
	require.Equal(t, contracts.OutcomeAccepted, first.Outcome)
	require.False(t, first.Resumed)

	status, body = s.send("POST", target, `{"by":"<ana>"}`, http.Header{"Idempotency-Key": {"mail-1"}}) // bare form: the same key
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"outcome":"duplicate","signal_id":"`+first.SignalID+`"}`, body)

	status, body = s.send("POST", callbackPath("run-1", b.WaitpointID, b.Token), "", nil)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"resumed":true`)

	obs, err := s.e.ObserveSignals(context.Background(), contracts.ObserveSignalsArgs{ExecutionID: "run-1"})
	require.NoError(t, err)
	require.Len(t, obs.Signals, 2)
	require.Equal(t, "approved", obs.Signals[0].Name)
	require.Equal(t, `{"by":"<ana>"}`, string(obs.Signals[0].Payload))
	require.Equal(t, "mail-1", obs.Signals[0].IdempotencyKey)
	require.Equal(t, httpapi.DefaultCallbackSignalName, obs.Signals[1].Name)
	require.Nil(t, obs.Signals[1].Payload)
}

// TestCallbackAnswersAsTheSignalRoute: for the same inputs, the callback
// route and the signal route answer the same status and envelope: a
// tampered token, a waitpoint of another execution, an id that is not a
// UUID, a malformed token, a bad name, a payload that is not JSON, a
// closed waitpoint. None of them records anything.
func TestCallbackAnswersAsTheSignalRoute(t *testing.T) {
	s := newCBServer(t, httpapi.Options{CallbackBaseURL: base})
	a := s.sus.Waitpoints[0]
	tampered := a.Token[:len(a.Token)-1] + map[bool]string{true: "1", false: "0"}[strings.HasSuffix(a.Token, "0")]
	for _, c := range []struct {
		name                 string
		exec, wp, token, sig string
		payload              string
	}{
		{"tampered token", "run-1", a.WaitpointID, tampered, "approved", "1"},
		{"another execution", "run-2", a.WaitpointID, a.Token, "approved", "1"},
		{"waitpoint id not a UUID", "run-1", "nope", a.Token, "approved", "1"},
		{"malformed token", "run-1", a.WaitpointID, "k1:abc", "approved", "1"},
		{"bad name", "run-1", a.WaitpointID, a.Token, "bad*name", "1"},
		{"payload not JSON", "run-1", a.WaitpointID, a.Token, "approved", "{"},
		{"payload not I-JSON", "run-1", a.WaitpointID, a.Token, "approved", `{"a":1,"a":2}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs, cb := s.send("POST", callbackPath(c.exec, c.wp, c.token)+"?name="+url.QueryEscape(c.sig), c.payload, nil)
			signal := `{"name":` + string(must(json.Marshal(c.sig))) + `,"payload":` + c.payload + `}`
			if !json.Valid([]byte(signal)) {
				signal = `{"name":` + string(must(json.Marshal(c.sig))) + `,"payload":{"a":1,"a":2}}`
			}
			ss, sb := s.send("POST", signalPath(c.exec, c.wp), signal, bearerHeader(c.token))
			require.Equal(t, ss, cs, "callback %s / signal %s", cb, sb)
			require.NotEqual(t, http.StatusOK, cs, cb)
			ce, se := errorOf(t, cb), errorOf(t, sb)
			require.Equal(t, se.Code, ce.Code)
			require.Equal(t, se.Reason, ce.Reason)
			if c.name != "payload not JSON" { // the signal route cannot carry a payload that is not JSON
				require.Equal(t, se.Detail, ce.Detail)
			}
		})
	}
	obs, err := s.e.ObserveSignals(context.Background(), contracts.ObserveSignalsArgs{ExecutionID: "run-1"})
	require.NoError(t, err)
	require.Empty(t, obs.Signals)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestIdempotencyKeyHeader: on the signal route the Idempotency-Key header
// is the key (sf-string or bare); the same key in the body too is fine; a
// different one, a header given twice, a broken sf-string or an empty
// value is 400 naming the field, and records nothing.
func TestIdempotencyKeyHeader(t *testing.T) {
	s := newCBServer(t, httpapi.Options{})
	a := s.sus.Waitpoints[0]
	path := signalPath("run-1", a.WaitpointID)
	hdr := func(vals ...string) http.Header {
		h := bearerHeader(a.Token)
		h["Idempotency-Key"] = vals
		return h
	}
	status, body := s.send("POST", path, `{"name":"x"}`, hdr(`"k \"1\""`))
	require.Equal(t, http.StatusOK, status, body)
	var first contracts.DeliverSignalOutcome
	require.NoError(t, json.Unmarshal([]byte(body), &first))
	status, body = s.send("POST", path, `{"name":"x","idempotency_key":"k \"1\""}`, hdr(`"k \"1\""`))
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"outcome":"duplicate","signal_id":"`+first.SignalID+`"}`, body)
	status, body = s.send("POST", path, `{"name":"x","idempotency_key":"k \"1\""}`, bearerHeader(a.Token))
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "duplicate", "the header's key is the body's key")

	for _, c := range []struct {
		name, body, field string
		header            []string
	}{
		{"body and header differ", `{"name":"x","idempotency_key":"k2"}`, "idempotency_key:", []string{"k3"}},
		{"given twice", `{"name":"x"}`, "idempotency-key:", []string{"k4", "k5"}},
		{"unterminated sf-string", `{"name":"x"}`, "idempotency-key:", []string{`"k6`}},
		{"bad escape", `{"name":"x"}`, "idempotency-key:", []string{`"k\7"`}},
		{"trailing data", `{"name":"x"}`, "idempotency-key:", []string{`"k8";a=1`}},
		{"empty", `{"name":"x"}`, "idempotency-key:", []string{`""`}},
		{"not UTF-8", `{"name":"x"}`, "idempotency-key:", []string{"k\xff"}},
		{"over 256 bytes", `{"name":"x"}`, "idempotency_key:", []string{strings.Repeat("k", 257)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := s.send("POST", path, c.body, hdr(c.header...))
			require.Equal(t, http.StatusBadRequest, status, body)
			e := errorOf(t, body)
			require.Equal(t, contracts.CodeInvalidInput, e.Code)
			require.True(t, strings.HasPrefix(e.Detail, c.field), e.Detail)
		})
	}
	obs, err := s.e.ObserveSignals(context.Background(), contracts.ObserveSignalsArgs{ExecutionID: "run-1"})
	require.NoError(t, err)
	require.Len(t, obs.Signals, 1)
}

// TestCallbackTokenNeverLogged: whatever a callback request answers (200,
// 400, 401, 404 when off, 405, 503 with the backend closed), no log line
// holds its token or MAC.
func TestCallbackTokenNeverLogged(t *testing.T) {
	for _, on := range []bool{true, false} {
		opts := httpapi.Options{}
		if on {
			opts.CallbackBaseURL = base
		}
		s := newCBServer(t, opts)
		a := s.sus.Waitpoints[0]
		mac := a.Token[strings.IndexByte(a.Token, ':')+1:]
		p := callbackPath("run-1", a.WaitpointID, a.Token)
		s.send("POST", p+"?name=approved", `{"x":1}`, nil)
		s.send("POST", p+"?name=bad*", `{"x":1}`, nil)
		s.send("GET", p, "", nil)
		s.send("POST", p+"/extra", "", nil)
		s.send("POST", "/v1/callbacks/"+a.Token, "", nil)
		s.send("POST", "/v1/admin/callback-url", `{"execution_id":"run-1","waitpoint_id":"`+a.WaitpointID+`","token":"`+a.Token+`"}`, bearerHeader(cbAdmin))
		require.NoError(t, s.e.Close())
		status, _ := s.send("POST", p, `{"x":2}`, nil)
		if on {
			require.Equal(t, http.StatusServiceUnavailable, status)
		}
		logs := s.log.String()
		require.NotEmpty(t, logs)
		require.NotContains(t, logs, mac)
		require.NotContains(t, logs, "/v1/callbacks/")
	}
}

// TestCallbackBaseURL: the base URL's rules, and New's panic on a bad one.
func TestCallbackBaseURL(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "https://hooks.example.com", "https://hooks.example.com/ff/"} {
		require.NoError(t, httpapi.CheckCallbackBaseURL(ok), ok)
	}
	for _, bad := range []string{"", "hooks.example.com", "ftp://h", "https://", "https://u:p@h", "https://h?x=1", "https://h/#f", "mailto:a@b"} {
		err := httpapi.CheckCallbackBaseURL(bad)
		require.ErrorIs(t, err, contracts.ErrInvalidInput, bad)
		require.Contains(t, err.Error(), "base_url: ")
	}
	e := engine.New(memory.New())
	t.Cleanup(func() { _ = e.Close() })
	require.PanicsWithValue(t, "httpapi: Options.CallbackBaseURL: validation/invalid_input: base_url: must be an absolute http or https URL with a host and no user information, query or fragment",
		func() { httpapi.New(e, httpapi.Options{CallbackBaseURL: "https://u:secret@h"}) })

	s := newCBServer(t, httpapi.Options{CallbackBaseURL: "http://127.0.0.1:8080"})
	a := s.sus.Waitpoints[0]
	got, err := s.h.CallbackURL("run-1", a.WaitpointID, a.Token, "")
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:8080/v1/callbacks/run-1/"+a.WaitpointID+"/"+a.Token, got)
	for _, c := range []struct{ exec, wp, token, name, field string }{
		{"..", a.WaitpointID, a.Token, "", "execution_id"},
		{"run-1", "nope", a.Token, "", "waitpoint_id"},
		{"run-1", a.WaitpointID, "k1:zz", "", "token"},
		{"run-1", a.WaitpointID, a.Token, "a b", "name"},
	} {
		_, err := s.h.CallbackURL(c.exec, c.wp, c.token, c.name)
		require.ErrorIs(t, err, contracts.ErrInvalidInput)
		require.Contains(t, err.Error(), c.field+": ")
		status, body := s.send("POST", "/v1/admin/callback-url", string(must(json.Marshal(map[string]string{
			"execution_id": c.exec, "waitpoint_id": c.wp, "token": c.token, "name": c.name}))), bearerHeader(cbAdmin))
		require.Equal(t, http.StatusBadRequest, status, body)
		require.NotContains(t, body, "zz")
	}
}
