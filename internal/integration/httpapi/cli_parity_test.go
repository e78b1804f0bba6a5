package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/sqlite"
	"github.com/flowfabric/flowfabric-go/cli"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

var (
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	msRE   = regexp.MustCompile(`("[a-z_]+_at_ms"):[0-9]+`)
	macRE  = regexp.MustCompile(`:[0-9a-f]{64}"`)
)

// normalize replaces the volatile values of a sequence of envelopes (ids by
// order of first appearance, timestamps, MACs) with stable placeholders.
func normalize(envelopes []string) []string {
	ids := map[string]string{}
	out := make([]string, len(envelopes))
	for i, e := range envelopes {
		e = uuidRE.ReplaceAllStringFunc(e, func(id string) string {
			if _, ok := ids[id]; !ok {
				ids[id] = "<id:" + string(rune('A'+len(ids))) + ">"
			}
			return ids[id]
		})
		e = msRE.ReplaceAllString(e, `$1:"<ms>"`)
		out[i] = macRE.ReplaceAllString(e, `:<mac>"`)
	}
	return out
}

// TestEnvelopesEqualTheCLIs runs one history through the CLI and through the
// HTTP API, each on its own SQLite store, and compares the envelopes.
func TestEnvelopesEqualTheCLIs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	// The CLI's history, each command its own invocation on one store.
	cliURL := "sqlite://" + filepath.Join(dir, "cli.db")
	ff := func(args ...string) string {
		var out, errOut bytes.Buffer
		cli.Run(ctx, append([]string{"--backend", cliURL}, args...), strings.NewReader(""), &out, &errOut)
		if errOut.Len() > 0 {
			t.Fatalf("ff %v: stderr %s", args, errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	var viaCLI []string
	viaCLI = append(viaCLI, ff("seed", "--kid", "k1", "--secret-hex", secretHex))
	viaCLI = append(viaCLI, ff("suspend", "--execution", "run-7", "--waitpoint", "approve", "--waitpoint", "reject", "--condition", "all"))
	var sus contracts.SuspendOutcome
	mustDecode(t, viaCLI[1], &sus)
	wp := sus.Waitpoints[0]
	viaCLI = append(viaCLI,
		ff("signal", "--execution", "run-7", "--waitpoint-id", wp.WaitpointID, "--token", wp.Token, "--name", "approved", "--payload", `{"by":"<ana>"}`, "--idempotency-key", "i1"),
		ff("signal", "--execution", "run-7", "--waitpoint-id", wp.WaitpointID, "--token", wp.Token, "--name", "approved", "--idempotency-key", "i1"),
		ff("signal", "--execution", "run-8", "--waitpoint-id", wp.WaitpointID, "--token", wp.Token, "--name", "approved"),
		ff("signals", "--execution", "run-7"),
		ff("suspended", "--limit", "5"),
		ff("claim", "--worker", "w1", "--lease-ms", "60000"),
		ff("kids"),
		ff("sign", "--scope", "s", "--message", "hello"),
		ff("verify", "--scope", "s", "--message", "other", "--token", "k1:"+strings.Repeat("0", 64)),
		ff("signals", "--execution", "nobody"),
	)

	// The same history over HTTP.
	b, err := sqlite.Open(ctx, filepath.Join(dir, "http.db"))
	if err != nil {
		t.Fatal(err)
	}
	a := newAPI(t, engine.New(b), adminToken)
	body := func(method, path, bearer, req string) string {
		_, _, got := a.do(method, path, bearer, req)
		return strings.TrimSpace(got)
	}
	var viaHTTP []string
	viaHTTP = append(viaHTTP, body("POST", "/v1/admin/keystore/seed", adminToken, `{"kid":"k1","secret_hex":"`+secretHex+`"}`))
	viaHTTP = append(viaHTTP, body("POST", "/v1/admin/executions/run-7/suspend", adminToken, `{"waitpoints":[{"key":"approve"},{"key":"reject"}],"condition":"all"}`))
	mustDecode(t, viaHTTP[1], &sus)
	wp = sus.Waitpoints[0]
	signals := "/v1/executions/run-7/waitpoints/" + wp.WaitpointID + "/signals"
	viaHTTP = append(viaHTTP,
		body("POST", signals, wp.Token, `{"name":"approved","payload":{"by":"<ana>"},"idempotency_key":"i1"}`),
		body("POST", signals, wp.Token, `{"name":"approved","idempotency_key":"i1"}`),
		body("POST", "/v1/executions/run-8/waitpoints/"+wp.WaitpointID+"/signals", wp.Token, `{"name":"approved"}`),
		body("GET", "/v1/admin/executions/run-7/signals", adminToken, ""),
		body("GET", "/v1/admin/suspended?limit=5", adminToken, ""),
		body("POST", "/v1/admin/claim", adminToken, `{"worker_id":"w1","lease_ms":60000}`),
		body("GET", "/v1/admin/keystore/kids", adminToken, ""),
		body("POST", "/v1/admin/sign", adminToken, `{"scope":"s","message":"hello"}`),
		body("POST", "/v1/admin/verify", adminToken, `{"scope":"s","message":"other","token":"k1:`+strings.Repeat("0", 64)+`"}`),
		body("GET", "/v1/admin/executions/nobody/signals", adminToken, ""),
	)

	c, h := normalize(viaCLI), normalize(viaHTTP)
	for i := range c {
		if c[i] != h[i] {
			t.Errorf("step %d differs:\n CLI  %s\n HTTP %s", i, c[i], h[i])
		}
	}
	// The history really covered results and errors.
	if !strings.Contains(h[4], `"signature_mismatch"`) || !strings.Contains(h[3], `"duplicate"`) || !strings.Contains(h[11], `"execution_not_found"`) {
		t.Fatalf("history did not produce the expected envelopes: %q", h)
	}
}

func mustDecode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
}
