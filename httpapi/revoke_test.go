package httpapi_test

// Tests of the revoke_kid route and of the keystore audit (docs/spec.md
// §8.7): statuses as rotate_all's (a partition's kid_is_current is an entry
// of a 200 answer), one audit line per seed, rotation and revocation with
// no secret in it, and the ff_keystore_changes_total counter.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
	"github.com/stretchr/testify/require"
)

// capturedLog is a slog handler's output, safe for concurrent writers.
type capturedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capturedLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *capturedLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// audits returns the decoded keystore audit lines logged so far.
func (c *capturedLog) audits(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(c.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		if m["msg"] == httpapi.AuditMessage {
			out = append(out, m)
		}
	}
	return out
}

// secretLike matches hex as long as a secret, a MAC or half of either.
var secretLike = regexp.MustCompile(`[0-9a-fA-F]{32,}`)

var (
	revokeSecret1 = strings.Repeat("a1", 32)
	revokeSecret2 = strings.Repeat("b2", 32)
)

// revokeServer is a handler over a memory backend logging JSON to log.
type revokeServer struct {
	*textServer
	h   *httpapi.Handler
	log *capturedLog
}

func newRevokeServer(t *testing.T) *revokeServer {
	t.Helper()
	e := engine.New(memory.New())
	t.Cleanup(func() { _ = e.Close() })
	log := &capturedLog{}
	h := httpapi.New(e, httpapi.Options{AdminToken: textAdmin, Logger: slog.New(slog.NewJSONHandler(log, nil))})
	return &revokeServer{textServer: &textServer{t: t, e: e, h: h}, h: h, log: log}
}

func (s *revokeServer) token(scope string) string {
	s.t.Helper()
	var signed contracts.SignResult
	s.adminOK("POST", "/v1/admin/sign", `{"scope":"`+scope+`","message":"m"}`, &signed)
	return signed.Token
}

func (s *revokeServer) verify(token string) (int, *contracts.Error, string) {
	s.t.Helper()
	return s.admin("POST", "/v1/admin/verify", `{"scope":"s","message":"m","token":"`+token+`"}`)
}

func TestRevokeRoute(t *testing.T) {
	s := newRevokeServer(t)
	s.adminOK("POST", "/v1/admin/keystore/seed", `{"kid":"k1","secret_hex":"`+revokeSecret1+`"}`, nil)
	old := s.token("s")
	s.adminOK("POST", "/v1/admin/keystore/rotate", `{"new_kid":"k2","new_secret_hex":"`+revokeSecret2+`","grace_ms":3600000}`, nil)
	status, _, body := s.verify(old)
	require.Equal(t, http.StatusOK, status, body)

	t.Run("RevokesAVerifyingKid", func(t *testing.T) {
		got := s.adminOK("POST", "/v1/admin/keystore/revoke", `{"kid":"k1"}`, nil)
		require.Equal(t, `{"entries":[{"partition":0,"outcome":{"outcome":"revoked","kid":"k1"},"error":null}]}`+"\n", got)
		status, e, body := s.verify(old)
		wantStatus(t, "verify a revoked kid's token", status, e, body, http.StatusUnauthorized, contracts.CodeTokenExpired)
		require.Equal(t, `token: kid "k1" was revoked`, e.Detail)
	})
	t.Run("AgainIsNoop", func(t *testing.T) {
		got := s.adminOK("POST", "/v1/admin/keystore/revoke", `{"kid":"k1"}`, nil)
		require.Equal(t, `{"entries":[{"partition":0,"outcome":{"outcome":"noop","kid":"k1"},"error":null}]}`+"\n", got)
	})
	t.Run("TheCurrentKidIsAnEntryOfA200", func(t *testing.T) {
		var res contracts.RevokeKidResult
		s.adminOK("POST", "/v1/admin/keystore/revoke", `{"kid":"k2"}`, &res)
		require.True(t, res.Failed())
		require.Nil(t, res.Entries[0].Outcome)
		require.Equal(t, contracts.KindConflict, res.Entries[0].Error.Kind)
		require.Equal(t, contracts.CodeKidIsCurrent, res.Entries[0].Error.Code)
		require.Equal(t, "k2", s.token("s")[:2], "k2 still signs")
	})
	t.Run("Refusals", func(t *testing.T) {
		for _, c := range []struct {
			name, auth, body string
			status           int
			code             string
		}{
			{"malformed kid", "Bearer " + textAdmin, `{"kid":"not a kid"}`, http.StatusBadRequest, contracts.CodeInvalidInput},
			{"missing kid", "Bearer " + textAdmin, `{}`, http.StatusBadRequest, contracts.CodeInvalidInput},
			{"unknown member", "Bearer " + textAdmin, `{"kid":"k1","grace_ms":1}`, http.StatusBadRequest, contracts.CodeInvalidInput},
			{"not an object", "Bearer " + textAdmin, `"k1"`, http.StatusBadRequest, contracts.CodeInvalidInput},
			{"no admin token", "", `{"kid":"k1"}`, http.StatusUnauthorized, httpapi.CodeUnauthorized},
			{"wrong admin token", "Bearer nope", `{"kid":"k1"}`, http.StatusUnauthorized, httpapi.CodeUnauthorized},
		} {
			status, e, body := s.do("POST", "/v1/admin/keystore/revoke", c.auth, []byte(c.body))
			wantStatus(t, c.name, status, e, body, c.status, c.code)
		}
		status, e, body := s.admin("GET", "/v1/admin/keystore/revoke", "")
		wantStatus(t, "GET", status, e, body, http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed)
	})
	t.Run("MetricsCountEachCall", func(t *testing.T) {
		var metrics bytes.Buffer
		require.NoError(t, s.h.WriteMetrics(&metrics))
		for _, line := range []string{
			`ff_keystore_changes_total{op="revoke_kid",outcome="revoked"} 1`,
			`ff_keystore_changes_total{op="revoke_kid",outcome="noop"} 1`,
			`ff_keystore_changes_total{op="revoke_kid",outcome="kid_is_current"} 1`,
			`ff_keystore_changes_total{op="revoke_kid",outcome="invalid_input"} 2`, // malformed and missing kid reach the Engine
			`ff_keystore_changes_total{op="seed",outcome="seeded"} 1`,
			`ff_keystore_changes_total{op="rotate_all",outcome="rotated"} 1`,
			`ff_http_requests_total{outcome="ok",route="revoke_kid"} 3`,
		} {
			require.Contains(t, metrics.String(), line+"\n")
		}
	})
	t.Run("OneAuditLinePerCallWithoutSecrets", func(t *testing.T) {
		audits := s.log.audits(t)
		var ops []string
		for _, a := range audits {
			ops = append(ops, a["op"].(string)+"/"+a["outcome"].(string))
			require.Equal(t, "http", a["caller"])
			require.NotEmpty(t, a["remote_addr"])
			require.NotEmpty(t, a["request_id"])
		}
		require.Equal(t, []string{"seed/seeded", "rotate_all/rotated", "revoke_kid/revoked", "revoke_kid/noop",
			"revoke_kid/kid_is_current", "revoke_kid/invalid_input", "revoke_kid/invalid_input"}, ops)
		logs := s.log.String()
		require.NotRegexp(t, secretLike, logs)
		for _, secret := range []string{revokeSecret1, revokeSecret2, textAdmin, old[3:]} {
			require.NotContains(t, logs, secret)
		}
		revoked := audits[2]
		require.Equal(t, "k1", revoked["kid"])
		require.Equal(t, "revoke_kid", revoked["command"])
		require.Equal(t, float64(1), revoked["partitions"])
		require.Equal(t, float64(1), revoked["revoked"])
		require.Equal(t, "INFO", revoked["level"])
		require.Equal(t, "WARN", audits[4]["level"])
		require.NotContains(t, audits[5], "kid", "a malformed kid is not logged")
	})
	t.Run("TheAuditLineAndTheRequestLineShareTheRequestID", func(t *testing.T) {
		r := httptest.NewRequest("POST", "http://ff.test/v1/admin/keystore/revoke", strings.NewReader(`{"kid":"gone"}`))
		r.Header.Set("Authorization", "Bearer "+textAdmin)
		r.Header.Set("X-Request-Id", "req-42")
		s.h.ServeHTTP(httptest.NewRecorder(), r)
		audits := s.log.audits(t)
		require.Equal(t, "req-42", audits[len(audits)-1]["request_id"])
	})
}

func TestRevokeRouteUnsupported(t *testing.T) {
	e := engine.New(v1Backend{memory.New()}) // no driver.KidRevoker
	t.Cleanup(func() { _ = e.Close() })
	h := httpapi.New(e, httpapi.Options{AdminToken: textAdmin, Logger: slog.New(slog.DiscardHandler)})
	s := &textServer{t: t, e: e, h: h}
	status, ce, body := s.admin("POST", "/v1/admin/keystore/revoke", `{"kid":"k1"}`)
	wantStatus(t, "revoke without KidRevoker", status, ce, body, http.StatusNotImplemented, contracts.CodeUnsupported)
}

func TestKeystoreAudit(t *testing.T) {
	ctx := context.Background()
	newAudit := func() (*httpapi.KeystoreAudit, *capturedLog) {
		log := &capturedLog{}
		return httpapi.NewKeystoreAudit(slog.New(slog.NewJSONHandler(log, nil))), log
	}
	caller := httpapi.Caller{Via: "cli", Command: "rotate", User: "ops"}
	k1 := "k1"

	t.Run("RotationCountsEveryPartitionOutcome", func(t *testing.T) {
		a, log := newAudit()
		a.RotateAll(ctx, caller, "k2", 1000, contracts.RotateAllResult{Entries: []contracts.RotateEntry{
			{Partition: 0, Outcome: &contracts.RotateOutcome{Outcome: contracts.RotateRotated, PreviousKid: &k1, NewKid: "k2"}},
			{Partition: 1, Outcome: &contracts.RotateOutcome{Outcome: contracts.RotateNoop, Kid: "k2"}},
			{Partition: 2, Error: contracts.ErrBackendUnreachable.With("partition 2: dial tcp 10.0.0.1: refused")},
			{Partition: 3, Error: contracts.ErrBackendUnreachable.With("partition 3")},
		}}, nil)
		got := log.audits(t)
		require.Len(t, got, 1)
		line := got[0]
		for k, v := range map[string]any{
			"level": "WARN", "op": "rotate_all", "kid": "k2", "outcome": contracts.CodeBackendUnreachable,
			"partitions": float64(4), "rotated": float64(1), "noop": float64(1), "failed": float64(2),
			"error_codes": []any{contracts.CodeBackendUnreachable}, "previous_kids": []any{"k1"}, "grace_ms": float64(1000),
			"caller": "cli", "command": "rotate", "user": "ops",
		} {
			require.Equal(t, v, line[k], k)
		}
		require.NotContains(t, log.String(), "10.0.0.1", "error details are not logged")
	})
	t.Run("ACallThatFailedAsAWholeGivesItsCode", func(t *testing.T) {
		a, log := newAudit()
		a.RevokeKid(ctx, caller, "k1", contracts.RevokeKidResult{}, errors.New("boom"))
		line := log.audits(t)[0]
		require.Equal(t, contracts.CodeInternal, line["outcome"])
		require.Equal(t, float64(0), line["partitions"])
	})
	t.Run("SeedOutcomes", func(t *testing.T) {
		a, log := newAudit()
		no := false
		a.Seed(ctx, caller, "k1", contracts.SeedOutcome{Outcome: contracts.SeedSeeded, Kid: "k1", CurrentKid: "k1"}, nil)
		a.Seed(ctx, caller, "k1", contracts.SeedOutcome{Outcome: contracts.SeedAlreadySeeded, Kid: "k1", CurrentKid: "k1", SameSecret: &no}, nil)
		a.Seed(ctx, caller, "k1", contracts.SeedOutcome{}, contracts.ErrCanceled.With("canceled"))
		got := log.audits(t)
		require.Len(t, got, 3)
		require.Equal(t, "INFO", got[0]["level"])
		require.NotContains(t, got[0], "same_secret")
		require.Equal(t, "WARN", got[1]["level"])
		require.Equal(t, false, got[1]["same_secret"])
		require.Equal(t, contracts.CodeCanceled, got[2]["outcome"])
	})
	t.Run("AKidThatLooksLikeASecretIsStillAKid", func(t *testing.T) {
		// Kids are public: they appear in every token. An invalid one is
		// left out, whatever it holds.
		a, log := newAudit()
		a.Seed(ctx, caller, hex.EncodeToString(bytes.Repeat([]byte{1}, 40)), contracts.SeedOutcome{}, contracts.Invalid("kid", "too long"))
		require.NotContains(t, log.audits(t)[0], "kid")
	})
	t.Run("AnAuditWithoutHandlerCountsNothingAndDefaultsItsLogger", func(t *testing.T) {
		require.NotNil(t, httpapi.NewKeystoreAudit(nil))
	})
}
