package storereset

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

const (
	adminToken = "store-reset-admin-token-0123456789abcdef"
	secretHex  = "5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2"
)

// api is httpapi over one Engine, on a loopback server.
type api struct {
	t   *testing.T
	srv *httptest.Server
}

func newAPI(t *testing.T, e *engine.Engine) *api {
	t.Helper()
	var logs bytes.Buffer
	h := httpapi.New(e, httpapi.Options{AdminToken: adminToken, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &api{t: t, srv: srv}
}

// call sends a request and returns the status and the decoded body.
func (a *api) call(method, path, bearer, body string) (int, map[string]any) {
	a.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, a.srv.URL+path, strings.NewReader(body))
	require.NoError(a.t, err)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.srv.Client().Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	require.NotContains(a.t, string(b), secretHex)
	var m map[string]any
	require.NoError(a.t, json.Unmarshal(b, &m), "body %q", b)
	return resp.StatusCode, m
}

// requireStoreReset sends a request and asserts 503 with the error code
// store_reset, not retryable.
func (a *api) requireStoreReset(method, path, bearer, body string) {
	a.t.Helper()
	t := a.t
	status, got := a.call(method, path, bearer, body)
	require.Equal(t, http.StatusServiceUnavailable, status, "%v", got)
	e, ok := got["error"].(map[string]any)
	require.True(t, ok, "not an error envelope: %v", got)
	require.Equal(t, contracts.CodeStoreReset, e["code"])
	require.Equal(t, false, e["retryable"])
	require.Contains(t, e["detail"], "lost its data")
}

// A server without persistence, killed and restarted empty under an
// Engine serving HTTP: the very next call answers 503 store_reset, and so
// does /readyz; a second Engine opened on the emptied store sees a fresh
// one (hmac_secret_not_initialized); Engine.AdoptStore then a seed make
// the first Engine work again.
func TestStoreResetThroughHTTP(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			srv := startKV(t, fam)
			e, err := engine.Open(context.Background(), srv.url(8))
			require.NoError(t, err)
			t.Cleanup(func() { _ = e.Close() })
			require.False(t, e.Capabilities().Persistent, "read from the server's settings")
			a := newAPI(t, e)

			// given a seeded store with one suspension
			st, _ := a.call(http.MethodPost, "/v1/admin/keystore/seed", adminToken, `{"kid":"k1","secret_hex":"`+secretHex+`"}`)
			require.Equal(t, http.StatusOK, st)
			st, sus := a.call(http.MethodPost, "/v1/admin/executions/order-1/suspend", adminToken, `{"waitpoints":[{"key":"approve"}],"condition":"any"}`)
			require.Equal(t, http.StatusOK, st, "%v", sus)
			wp := sus["waitpoints"].([]any)[0].(map[string]any)
			signal := "/v1/executions/order-1/waitpoints/" + wp["waitpoint_id"].(string) + "/signals"
			token := wp["token"].(string)
			st, _ = a.call(http.MethodGet, "/readyz", "", "")
			require.Equal(t, http.StatusOK, st)

			// when the server loses its data
			srv.restartEmpty(t)

			// then the next call answers store_reset, and /readyz too
			a.requireStoreReset(http.MethodPost, signal, token, `{"name":"ok"}`)
			a.requireStoreReset(http.MethodGet, "/readyz", "", "")
			a.requireStoreReset(http.MethodPost, "/v1/admin/keystore/seed", adminToken, `{"kid":"k1","secret_hex":"`+secretHex+`"}`)

			// a second Engine opened now sees a fresh store
			fresh, err := engine.Open(context.Background(), srv.url(8), engine.WithKeystoreCache(0))
			require.NoError(t, err)
			t.Cleanup(func() { _ = fresh.Close() })
			_, err = fresh.Sign(context.Background(), contracts.SignArgs{Scope: "s", Message: []byte("m")})
			require.ErrorIs(t, err, contracts.ErrHMACSecretNotInitialized)
			a.requireStoreReset(http.MethodGet, "/readyz", "", "")

			// adopting and seeding again makes the first Engine work
			require.NoError(t, e.AdoptStore(context.Background()))
			st, _ = a.call(http.MethodGet, "/readyz", "", "")
			require.Equal(t, http.StatusOK, st)
			st, body := a.call(http.MethodPost, "/v1/admin/sign", adminToken, `{"scope":"s","message":"m"}`)
			require.Equal(t, http.StatusConflict, st, "%v", body)
			require.Equal(t, contracts.CodeHMACSecretNotInitialized, body["error"].(map[string]any)["code"], "adopted empty")
			st, _ = a.call(http.MethodPost, "/v1/admin/keystore/seed", adminToken, `{"kid":"k1","secret_hex":"`+secretHex+`"}`)
			require.Equal(t, http.StatusOK, st)
			st, body = a.call(http.MethodPost, "/v1/admin/sign", adminToken, `{"scope":"s","message":"m"}`)
			require.Equal(t, http.StatusOK, st, "%v", body)
			st, body = a.call(http.MethodPost, signal, token, `{"name":"ok"}`)
			require.Equal(t, http.StatusUnauthorized, st, "the waits of the lost store are gone, their tokens with them: %v", body)
		})
	}
}
