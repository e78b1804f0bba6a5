package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/backend/sqlite"
	"github.com/flowfabric/flowfabric-go/backend/valkey"
	"github.com/flowfabric/flowfabric-go/cli"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/integration/envelopes"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// parityMemory is the scheme of a memory store that outlives each cli.Run,
// so that the CLI's steps share it as they share a SQLite file.
const parityMemory = "ffparitymem"

var parityStores sync.Map // host -> keptOpen

type keptOpen struct{ *memory.Backend }

func (keptOpen) Close() error { return nil }

func init() {
	engine.Register(parityMemory, func(_ context.Context, u *url.URL) (driver.Backend, error) {
		b, ok := parityStores.Load(u.Host)
		if !ok {
			return nil, contracts.Invalid("backend_url", "no such test store")
		}
		return b.(keptOpen), nil
	})
}

// parityBackends give, for each backend, two fresh and separate stores:
// the URL ff runs on, and the engine the HTTP API serves.
var parityBackends = []struct {
	name string
	open func(t *testing.T) (cliURL string, http *engine.Engine)
}{
	{"memory", func(t *testing.T) (string, *engine.Engine) {
		name := strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name()))
		parityStores.Store(name, keptOpen{memory.New()})
		t.Cleanup(func() { parityStores.Delete(name) })
		return parityMemory + "://" + name, engine.New(memory.New())
	}},
	{"sqlite", func(t *testing.T) (string, *engine.Engine) {
		dir := t.TempDir()
		b, err := sqlite.Open(context.Background(), filepath.Join(dir, "http.db"))
		if err != nil {
			t.Fatal(err)
		}
		return "sqlite://" + filepath.Join(dir, "cli.db"), engine.New(b)
	}},
	{"postgres", func(t *testing.T) (string, *engine.Engine) {
		schema := func() string {
			return withQuery(t, testenv.NewPostgresSchema(t, testenv.PackageDatabase(t)), "ff_migrate", "auto")
		}
		return schema(), openURL(t, schema())
	}},
	{"valkey", func(t *testing.T) (string, *engine.Engine) {
		store := func() string {
			return withQuery(t, testenv.ValkeyURL(t), valkey.OptionPrefix, testenv.KeyPrefix(t))
		}
		return store(), openURL(t, store())
	}},
}

// TestEnvelopesEqualTheCLIs runs one history through the CLI and through the
// HTTP API, each on its own store of one backend, and compares the
// envelopes: version 1 operations, then those of docs/spec.md §8.
func TestEnvelopesEqualTheCLIs(t *testing.T) {
	for _, bc := range parityBackends {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			cliURL, e := bc.open(t)
			c := envelopes.Normalize(historyViaCLI(t, cliURL))
			h := envelopes.Normalize(historyViaHTTP(t, newAPI(t, e, adminToken)))
			if len(c) != len(h) {
				t.Fatalf("the histories have %d and %d steps", len(c), len(h))
			}
			for i := range c {
				if c[i] != h[i] {
					t.Errorf("step %d differs:\n CLI  %s\n HTTP %s", i, c[i], h[i])
				}
			}
			// The history really covered results and errors.
			for i, want := range map[int]string{
				3: `"duplicate"`, 4: `"signature_mismatch"`, 11: `"execution_not_found"`,
				12: `"outcome":"created"`, 14: `"outcome":"accepted"`, 15: `"status":"pending"`, 16: `"already_satisfied"`,
				17: `"waitpoint_key":"approve"`, 18: `"condition":{"count":2}`, 19: `"tags":["q3","deals"]`,
				20: `"cancelled"`, 21: `"not_suspended"`, 22: `"reason":"cancelled"`, 23: `"extended"`, 24: `"released"`,
				25: `"lease_mismatch"`, 26: `"waitpoint_not_found"`, 27: `"condition.count: must be from 1`,
				28: `"tags: must hold at most 10 tags"`, 29: `"waitpoints.pending: must be a lowercase canonical UUID"`,
				30: `"kid_is_current"`, 31: `"outcome":"rotated"`, 32: `"outcome":{"outcome":"revoked","kid":"k1"}`,
				33: `"outcome":{"outcome":"noop","kid":"k1"}`, 34: `"token: kid \"k1\" was revoked"`, 35: `"rotation_conflict"`,
				36: `"state":"claimed","claimable":true,"reason":"cancelled"`, 37: `"state":"none"`, 38: `"execution_not_found"`,
				39: `{"suspended":1,"timed_out":0,"resumed":0,"claimed":0,"lease_expired":1}`,
			} {
				if !strings.Contains(h[i], want) {
					t.Errorf("step %d: %s lacks %s", i, h[i], want)
				}
			}
		})
	}
}

// unknownWaitpoint is a waitpoint id that no store holds.
const unknownWaitpoint = "00000000-0000-4000-8000-000000000000"

// elevenTags is one tag too many (docs/spec.md §8.6).
var elevenTags = []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9", "t10"}

// historyViaCLI runs the history through ff, each command its own
// invocation on the store at url, and returns the envelopes.
func historyViaCLI(t *testing.T, url string) []string {
	ctx := context.Background()
	ff := func(args ...string) string {
		var out, errOut bytes.Buffer
		cli.Run(ctx, append([]string{"--backend", url}, args...), strings.NewReader(""), &out, &errOut)
		if rest := withoutAuditLines(errOut.String()); rest != "" {
			t.Fatalf("ff %v: stderr %s", args, rest)
		}
		return strings.TrimSpace(out.String())
	}
	var h []string
	h = append(h, ff("seed", "--kid", "k1", "--secret-hex", secretHex))
	h = append(h, ff("suspend", "--execution", "run-7", "--waitpoint", "approve", "--waitpoint", "reject", "--condition", "all"))
	var sus contracts.SuspendOutcome
	mustDecode(t, h[1], &sus)
	wp := sus.Waitpoints[0]
	h = append(h,
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

	// Version 2: the approval mail, a quorum with tags, cancel, heartbeat, release.
	h = append(h, ff("waitpoint", "create", "--execution", "order-9", "--key", "approve", "--expires-in-ms", "86400000", "--tag", "mail"))
	var created contracts.CreateWaitpointOutcome
	mustDecode(t, h[12], &created)
	h = append(h,
		ff("waitpoint", "get", "--execution", "order-9", "--waitpoint-id", created.WaitpointID),
		ff("signal", "--execution", "order-9", "--waitpoint-id", created.WaitpointID, "--token", created.Token, "--name", "approved", "--payload", `{"by":"ana"}`, "--idempotency-key", "mail-1"),
		ff("waitpoint", "get", "--execution", "order-9", "--waitpoint-id", created.WaitpointID),
		ff("suspend", "--execution", "order-9", "--pending", created.WaitpointID, "--idempotency-key", "s9"),
		ff("signals", "--execution", "order-9"),
		ff("suspend", "--execution", "deal-1", "--waitpoint", "cfo", "--waitpoint", "ceo", "--waitpoint", "legal", "--count", "2", "--tag", "q3", "--tag", "deals", "--timeout-ms", "600000"),
		ff("suspended", "--tag", "q3"),
		ff("cancel", "--execution", "deal-1"),
		ff("cancel", "--execution", "deal-1"),
		ff("claim", "--worker", "w2", "--lease-ms", "60000"),
	)
	var claim contracts.ClaimOutcome
	mustDecode(t, h[22], &claim)
	h = append(h,
		ff("extend", "--execution", "deal-1", "--lease-id", claim.LeaseID, "--lease-ms", "90000"),
		ff("release", "--execution", "deal-1", "--lease-id", claim.LeaseID),
		ff("extend", "--execution", "deal-1", "--lease-id", claim.LeaseID),
		ff("waitpoint", "get", "--execution", "order-9", "--waitpoint-id", unknownWaitpoint),
		ff("suspend", "--execution", "x", "--waitpoint", "a", "--count", "2"),
		ff(append([]string{"waitpoint", "create", "--execution", "x", "--key", "k", "--expires-in-ms", "1000"}, tagFlags(elevenTags)...)...),
		ff("suspend", "--execution", "x", "--pending", "nope"),
	)

	// Revocation (docs/spec.md §8.7).
	var signed contracts.SignResult
	mustDecode(t, h[9], &signed)
	h = append(h,
		ff("revoke", "--kid", "k1"),
		ff("rotate", "--kid", "k2", "--secret-hex", secondSecretHex, "--grace-ms", "600000"),
		ff("revoke", "--kid", "k1"),
		ff("revoke", "--kid", "k1"),
		ff("verify", "--scope", "s", "--message", "hello", "--token", signed.Token),
		ff("rotate", "--kid", "k1", "--secret-hex", secretHex),
	)

	// Operators' views (docs/spec.md §8.9).
	h = append(h,
		ff("describe", "--execution", "deal-1"),
		ff("describe", "--execution", "order-9"),
		ff("describe", "--execution", "nobody"),
		ff("counts"),
	)
	return h
}

// secondSecretHex is the secret of the rotation before the revocation.
var secondSecretHex = strings.Repeat("c3", 32)

// withoutAuditLines drops the keystore audit lines (one per seed,
// rotation and revocation) from ff's stderr.
func withoutAuditLines(stderr string) string {
	var rest strings.Builder
	for _, line := range strings.SplitAfter(stderr, "\n") {
		if !strings.Contains(line, `"msg":"keystore audit"`) {
			rest.WriteString(line)
		}
	}
	return rest.String()
}

func tagFlags(tags []string) []string {
	var out []string
	for _, t := range tags {
		out = append(out, "--tag", t)
	}
	return out
}

// historyViaHTTP runs the same history through the HTTP API.
func historyViaHTTP(t *testing.T, a *api) []string {
	body := func(method, path, bearer, req string) string {
		_, _, got := a.do(method, path, bearer, req)
		return strings.TrimSpace(got)
	}
	var h []string
	h = append(h, body("POST", "/v1/admin/keystore/seed", adminToken, `{"kid":"k1","secret_hex":"`+secretHex+`"}`))
	h = append(h, body("POST", "/v1/admin/executions/run-7/suspend", adminToken, `{"waitpoints":[{"key":"approve"},{"key":"reject"}],"condition":"all"}`))
	var sus contracts.SuspendOutcome
	mustDecode(t, h[1], &sus)
	wp := sus.Waitpoints[0]
	signals := "/v1/executions/run-7/waitpoints/" + wp.WaitpointID + "/signals"
	h = append(h,
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

	h = append(h, body("POST", "/v1/admin/executions/order-9/waitpoints", adminToken, `{"key":"approve","expires_in_ms":86400000,"tags":["mail"]}`))
	var created contracts.CreateWaitpointOutcome
	mustDecode(t, h[12], &created)
	get := "/v1/admin/executions/order-9/waitpoints/" + created.WaitpointID
	h = append(h,
		body("GET", get, adminToken, ""),
		body("POST", "/v1/executions/order-9/waitpoints/"+created.WaitpointID+"/signals", created.Token, `{"name":"approved","payload":{"by":"ana"},"idempotency_key":"mail-1"}`),
		body("GET", get, adminToken, ""),
		body("POST", "/v1/admin/executions/order-9/suspend", adminToken, `{"waitpoints":[{"pending":"`+created.WaitpointID+`"}],"idempotency_key":"s9"}`),
		body("GET", "/v1/admin/executions/order-9/signals", adminToken, ""),
		body("POST", "/v1/admin/executions/deal-1/suspend", adminToken,
			`{"waitpoints":[{"key":"cfo"},{"key":"ceo"},{"key":"legal"}],"condition":{"count":2},"tags":["q3","deals"],"timeout_ms":600000}`),
		body("GET", "/v1/admin/suspended?tag=q3", adminToken, ""),
		body("POST", "/v1/admin/executions/deal-1/cancel", adminToken, ""),
		body("POST", "/v1/admin/executions/deal-1/cancel", adminToken, "{}"),
		body("POST", "/v1/admin/claim", adminToken, `{"worker_id":"w2","lease_ms":60000}`),
	)
	var claim contracts.ClaimOutcome
	mustDecode(t, h[22], &claim)
	tags, _ := json.Marshal(elevenTags)
	h = append(h,
		body("POST", "/v1/admin/executions/deal-1/extend", adminToken, `{"lease_id":"`+claim.LeaseID+`","lease_ms":90000}`),
		body("POST", "/v1/admin/executions/deal-1/release", adminToken, `{"lease_id":"`+claim.LeaseID+`"}`),
		body("POST", "/v1/admin/executions/deal-1/extend", adminToken, `{"lease_id":"`+claim.LeaseID+`"}`),
		body("GET", "/v1/admin/executions/order-9/waitpoints/"+unknownWaitpoint, adminToken, ""),
		body("POST", "/v1/admin/executions/x/suspend", adminToken, `{"waitpoints":[{"key":"a"}],"condition":{"count":2}}`),
		body("POST", "/v1/admin/executions/x/waitpoints", adminToken, `{"key":"k","expires_in_ms":1000,"tags":`+string(tags)+`}`),
		body("POST", "/v1/admin/executions/x/suspend", adminToken, `{"waitpoints":[{"pending":"nope"}]}`),
	)

	var signed contracts.SignResult
	mustDecode(t, h[9], &signed)
	h = append(h,
		body("POST", "/v1/admin/keystore/revoke", adminToken, `{"kid":"k1"}`),
		body("POST", "/v1/admin/keystore/rotate", adminToken, `{"new_kid":"k2","new_secret_hex":"`+secondSecretHex+`","grace_ms":600000}`),
		body("POST", "/v1/admin/keystore/revoke", adminToken, `{"kid":"k1"}`),
		body("POST", "/v1/admin/keystore/revoke", adminToken, `{"kid":"k1"}`),
		body("POST", "/v1/admin/verify", adminToken, `{"scope":"s","message":"hello","token":"`+signed.Token+`"}`),
		body("POST", "/v1/admin/keystore/rotate", adminToken, `{"new_kid":"k1","new_secret_hex":"`+secretHex+`"}`),
	)

	h = append(h,
		body("GET", "/v1/admin/executions/deal-1", adminToken, ""),
		body("GET", "/v1/admin/executions/order-9", adminToken, ""),
		body("GET", "/v1/admin/executions/nobody", adminToken, ""),
		body("GET", "/v1/admin/counts", adminToken, ""),
	)
	return h
}

func mustDecode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
}
