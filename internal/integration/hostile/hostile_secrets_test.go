package hostile

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
	"github.com/flowfabric/flowfabric-go/internal/syncbuf"
)

// The secrets of the scan: a 32-byte and a 48-byte signing secret and the
// admin token.
var (
	scanSecretA = strings.Repeat("a11ce5ec", 8)
	scanSecretB = strings.Repeat("b0b5ec2e", 12)
)

const scanAdmin = "scan-admin-token-7f3e9a"

// transcript collects every response body, log line and error text of a
// flow, and the token MACs it saw (which may appear in bodies that return
// tokens, never in logs or errors).
type transcript struct {
	mu     sync.Mutex
	bodies strings.Builder
	logs   syncbuf.Buffer
	errs   strings.Builder
	macs   []string
}

// scanClient drives the HTTP API of one backend and records everything.
type scanClient struct {
	t   *testing.T
	srv *httptest.Server
	tr  *transcript
}

func (c *scanClient) do(method, path, bearer, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, c.srv.URL+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.tr.mu.Lock()
	c.tr.bodies.Write(b)
	if resp.StatusCode != http.StatusOK {
		c.tr.errs.Write(b)
	}
	c.tr.mu.Unlock()
	return resp.StatusCode, string(b)
}

func (c *scanClient) token(tok string) string {
	if len(tok) > 64 {
		c.tr.mu.Lock()
		c.tr.macs = append(c.tr.macs, tok[len(tok)-64:])
		c.tr.mu.Unlock()
	}
	return tok
}

// TestNoSecretInLogsErrorsOrEnvelopes runs every HTTP route, successes and
// every error path that involves a secret (wrong secret on seed, rotation
// conflicts, tampered and expired tokens, bad admin tokens, malformed
// secret hex), on every backend, then scans every body, error and JSON log
// line for the secrets in every form and the logs and errors for the MACs.
func TestNoSecretInLogsErrorsOrEnvelopes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *engine.Engine) {
		tr := &transcript{}
		h := httpapi.New(e, httpapi.Options{AdminToken: scanAdmin, Logger: slog.New(slog.NewJSONHandler(&tr.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		c := &scanClient{t: t, srv: srv, tr: tr}
		runScanFlow(t, c, e)
		scan(t, tr)
	})
}

func runScanFlow(t *testing.T, c *scanClient, e *engine.Engine) {
	seed := func(kid, hex string) string { return fmt.Sprintf(`{"kid":%q,"secret_hex":%q}`, kid, hex) }
	rotate := func(kid, hex string, grace int) string {
		return fmt.Sprintf(`{"new_kid":%q,"new_secret_hex":%q,"grace_ms":%d}`, kid, hex, grace)
	}
	c.do("POST", "/v1/admin/keystore/seed", scanAdmin, seed("ka", scanSecretA))
	c.do("POST", "/v1/admin/keystore/seed", scanAdmin, seed("ka", strings.ToUpper(scanSecretA)))
	c.do("POST", "/v1/admin/keystore/seed", scanAdmin, seed("ka", scanSecretB))                      // wrong secret
	c.do("POST", "/v1/admin/keystore/seed", scanAdmin, seed("ka", scanSecretA[:63]))                 // odd hex
	c.do("POST", "/v1/admin/keystore/seed", scanAdmin, seed("ka", scanSecretA+"zz"))                 // not hex
	c.do("POST", "/v1/admin/keystore/seed", scanAdmin[:5], seed("ka", scanSecretA))                  // bad admin token
	c.do("POST", "/v1/admin/keystore/seed", scanAdmin, `{"kid":"ka","secret_hex":"`+scanSecretA+`"`) // truncated JSON
	c.do("POST", "/v1/admin/keystore/seed", scanAdmin, `{"kid":"ka","secret":"`+scanSecretA+`"}`)    // unknown field
	_, signed := c.do("POST", "/v1/admin/sign", scanAdmin, `{"scope":"s","message":"m"}`)
	var sr contracts.SignResult
	_ = json.Unmarshal([]byte(signed), &sr)
	c.token(sr.Token)
	c.do("POST", "/v1/admin/keystore/rotate", scanAdmin, rotate("kb", scanSecretB, 0))
	c.do("POST", "/v1/admin/keystore/rotate", scanAdmin, rotate("kb", scanSecretA, 0)) // conflict: current, other secret
	c.do("POST", "/v1/admin/keystore/rotate", scanAdmin, rotate("ka", scanSecretA, 0)) // conflict: verifying
	c.do("POST", "/v1/admin/keystore/rotate", scanAdmin, rotate("kb", scanSecretB, 0)) // noop
	c.do("GET", "/v1/admin/keystore/kids", scanAdmin, "")
	for _, tok := range []string{sr.Token, tamper(sr.Token), "ka:" + scanSecretA, "kz:" + scanSecretA, scanSecretA} {
		body, _ := json.Marshal(map[string]string{"scope": "s", "message": "m", "token": tok})
		c.do("POST", "/v1/admin/verify", scanAdmin, string(body))
	}
	_, sus := c.do("POST", "/v1/admin/executions/run-1/suspend", scanAdmin, `{"waitpoints":[{"key":"a"},{"key":"b"}],"condition":"all","idempotency_key":"i"}`)
	var so contracts.SuspendOutcome
	_ = json.Unmarshal([]byte(sus), &so)
	if len(so.Waitpoints) != 2 {
		t.Fatalf("suspend: %s", sus)
	}
	for _, wp := range so.Waitpoints {
		c.token(wp.Token)
		path := "/v1/executions/run-1/waitpoints/" + wp.WaitpointID + "/signals"
		c.do("POST", path, tamper(wp.Token), `{"name":"n"}`)
		c.do("POST", path, so.Waitpoints[0].Token, `{"name":"n"}`) // another waitpoint's token
		c.do("POST", path, scanSecretA, `{"name":"n"}`)
		c.do("POST", path, wp.Token, `{"name":"n","payload":{"k":1},"idempotency_key":"x"}`)
		c.do("POST", path, wp.Token, `{"name":"n","payload":{"k":1},"idempotency_key":"x"}`)
	}
	c.do("POST", "/v1/executions/run-1/waitpoints/"+so.Waitpoints[0].WaitpointID+"/signals", so.Waitpoints[0].Token, `{"name":"late"}`)
	c.do("GET", "/v1/admin/executions/run-1/signals", scanAdmin, "")
	c.do("GET", "/v1/admin/suspended?limit=1", scanAdmin, "")
	_, claimed := c.do("POST", "/v1/admin/claim", scanAdmin, `{"worker_id":"w","lease_ms":60000}`)
	var co contracts.ClaimOutcome
	_ = json.Unmarshal([]byte(claimed), &co)
	c.do("POST", "/v1/admin/executions/run-1/complete", scanAdmin, `{"lease_id":"`+driver.NewID()+`"}`)
	c.do("POST", "/v1/admin/executions/run-1/complete", scanAdmin, `{"lease_id":"`+co.LeaseID+`"}`)
	c.do("GET", "/metrics", "", "")
	// Errors returned by the Go API directly, on the same secrets.
	ctx := context.Background()
	a, _ := contracts.ParseSecretHex("secret_hex", scanSecretA)
	b, _ := contracts.ParseSecretHex("secret_hex", scanSecretB)
	_, err1 := e.RotateAll(ctx, contracts.RotateArgs{NewKid: "kb", NewSecret: a})
	_, err2 := contracts.ParseSecretHex("secret_hex", scanSecretB+"0")
	_, err3 := e.Seed(ctx, contracts.SeedArgs{Kid: "kb", Secret: b[:10]})
	r, err4 := e.RotateAll(ctx, contracts.RotateArgs{NewKid: "ka", NewSecret: b})
	c.tr.mu.Lock()
	defer c.tr.mu.Unlock()
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			fmt.Fprintf(&c.tr.errs, "%v %+v %#v\n", err, err, err)
		}
	}
	for _, en := range r.Entries {
		if en.Error != nil {
			fmt.Fprintf(&c.tr.errs, "%v %+v\n", en.Error, en.Error)
		}
	}
}

// tamper flips the last hex digit of a token.
func tamper(tok string) string {
	if tok == "" {
		return "k:" + strings.Repeat("0", 64)
	}
	last := tok[len(tok)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return tok[:len(tok)-1] + string(repl)
}

// secretForms are the ways a secret could show: hex in either case, either
// half, the raw bytes, and base64-free ASCII variants.
func secretForms(hexSecret string) []string {
	raw, _ := hex.DecodeString(hexSecret)
	return []string{hexSecret, strings.ToUpper(hexSecret), hexSecret[:32], hexSecret[len(hexSecret)-32:], string(raw[:16])}
}

func scan(t *testing.T, tr *transcript) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	bodies, logs, errs := tr.bodies.String(), tr.logs.String(), tr.errs.String()
	if logs == "" || bodies == "" || errs == "" {
		t.Fatalf("nothing recorded: %d bytes of bodies, %d of logs, %d of errors", len(bodies), len(logs), len(errs))
	}
	for i, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line %d is not JSON: %q", i, line)
		}
	}
	var forms []string
	forms = append(forms, secretForms(scanSecretA)...)
	forms = append(forms, secretForms(scanSecretB)...)
	forms = append(forms, scanAdmin)
	found := 0
	for _, f := range forms {
		for name, text := range map[string]string{"a response body": bodies, "a log line": logs, "an error": errs} {
			if strings.Contains(text, f) {
				t.Errorf("%s contains a secret (form %q…)", name, f[:4])
				found++
			}
		}
	}
	for _, mac := range tr.macs {
		for name, text := range map[string]string{"a log line": logs, "an error": errs} {
			if strings.Contains(text, mac) {
				t.Errorf("%s contains a token's MAC", name)
				found++
			}
		}
	}
	t.Logf("scanned %d bytes of bodies, %d log lines, %d bytes of errors for %d secret forms and %d MACs: %d found",
		len(bodies), strings.Count(logs, "\n"), len(errs), len(forms), len(tr.macs), found)
}
