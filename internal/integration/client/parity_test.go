// Package client_test runs one history through the Engine and through
// package client against a real `ff serve` process (the cmd/ff binary,
// built once), each on its own store of one backend (SQLite, PostgreSQL,
// Valkey), and compares the envelopes after normalizing ids, times, MACs
// and cursors.
package client_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/flowfabric/flowfabric-go/backend/postgres" // postgres://
	"github.com/flowfabric/flowfabric-go/backend/sqlite"
	"github.com/flowfabric/flowfabric-go/backend/valkey"
	"github.com/flowfabric/flowfabric-go/client"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
	"github.com/flowfabric/flowfabric-go/internal/integration/envelopes"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const adminToken = "parity-admin-token-0123456789abcdef0123456789"

var (
	secretA = bytes.Repeat([]byte{0x5e}, 32)
	secretB = bytes.Repeat([]byte{0xc3}, 32)
)

// api is what the history calls: the Engine's methods, which the client
// has under the same names and types.
type api interface {
	Seed(context.Context, contracts.SeedArgs) (contracts.SeedOutcome, error)
	RotateAll(context.Context, contracts.RotateArgs) (contracts.RotateAllResult, error)
	RevokeKid(context.Context, contracts.RevokeKidArgs) (contracts.RevokeKidResult, error)
	ListKids(context.Context) (contracts.ListKidsResult, error)
	Sign(context.Context, contracts.SignArgs) (contracts.SignResult, error)
	Verify(context.Context, contracts.VerifyArgs) (contracts.VerifyResult, error)
	Suspend(context.Context, contracts.SuspendArgs) (contracts.SuspendOutcome, error)
	DeliverSignal(context.Context, contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error)
	ObserveSignals(context.Context, contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error)
	ListSuspended(context.Context, contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error)
	ClaimResumedExecution(context.Context, contracts.ClaimArgs) (contracts.ClaimOutcome, error)
	ClaimResumedExecutions(context.Context, contracts.ClaimBatchArgs) (contracts.ClaimBatchOutcome, error)
	CompleteExecution(context.Context, contracts.CompleteArgs) (contracts.CompleteOutcome, error)
	CreateWaitpoint(context.Context, contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error)
	GetWaitpoint(context.Context, contracts.GetWaitpointArgs) (contracts.WaitpointInfo, error)
	ExtendLease(context.Context, contracts.ExtendLeaseArgs) (contracts.ExtendLeaseOutcome, error)
	ReleaseExecution(context.Context, contracts.ReleaseArgs) (contracts.ReleaseOutcome, error)
	CancelSuspension(context.Context, contracts.CancelArgs) (contracts.CancelOutcome, error)
	DescribeExecution(context.Context, contracts.DescribeExecutionArgs) (contracts.ExecutionInfo, error)
	CountExecutions(context.Context, contracts.CountExecutionsArgs) (contracts.ExecutionCounts, error)
	Ping(context.Context) error
}

var (
	_ api = (*engine.Engine)(nil)
	_ api = (*client.Client)(nil)
)

// side is one way through the history: the api, and how it delivers to a
// callback URL and claims with a wait (the Engine: DeliverSignal, and a
// claim without wait).
type side struct {
	api
	callback  func(context.Context, contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error)
	claimWait func(context.Context, contracts.ClaimArgs) (contracts.ClaimOutcome, error)
}

// stores gives two fresh, separate stores of one backend: one for the
// Engine, one for ff serve.
type stores func(t *testing.T) (forEngine, forServe string)

func withQuery(t *testing.T, raw string, kv ...string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

var backends = []struct {
	name   string
	stores stores
}{
	{"sqlite", func(t *testing.T) (string, string) {
		dir := t.TempDir()
		return "sqlite://" + filepath.Join(dir, "engine.db"), "sqlite://" + filepath.Join(dir, "serve.db")
	}},
	{"postgres", func(t *testing.T) (string, string) {
		db := testenv.NewPostgresDatabase(t)
		return withQuery(t, testenv.NewPostgresSchema(t, db), "ff_migrate", "auto"),
			withQuery(t, testenv.NewPostgresSchema(t, db), "ff_migrate", "auto")
	}},
	{"valkey", func(t *testing.T) (string, string) {
		srv := testenv.ValkeyURL(t)
		return withQuery(t, srv, valkey.OptionPrefix, testenv.KeyPrefix(t), valkey.OptionPartitions, "4"),
			withQuery(t, srv, valkey.OptionPrefix, testenv.KeyPrefix(t), valkey.OptionPartitions, "4")
	}},
}

var _ = sqlite.Open // the sqlite scheme is registered by this import

// TestClientParity: the same history through the Engine and through the
// client against ff serve answers the same envelopes, errors included.
func TestClientParity(t *testing.T) {
	bin := testenv.FFBinary(t)
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			engineURL, serveURL := bc.stores(t)
			e, err := engine.Open(ctx, engineURL)
			require.NoError(t, err)
			t.Cleanup(func() { _ = e.Close() })
			srv := startServe(t, bin, serveURL)
			c, err := client.New(srv.url, client.WithAdminToken(adminToken))
			require.NoError(t, err)

			viaEngine := history(t, side{api: e, callback: e.DeliverSignal, claimWait: e.ClaimResumedExecution})
			viaClient := history(t, side{api: c, callback: c.DeliverSignalCallback,
				claimWait: func(ctx context.Context, a contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
					return c.ClaimResumedExecutionWait(ctx, a, 200*time.Millisecond)
				}})
			en, cn := normalize(viaEngine.envelopes), normalize(viaClient.envelopes)
			require.Len(t, cn, len(en))
			for i := range en {
				require.Equal(t, en[i], cn[i], "step %d (%s) differs", i, viaEngine.names[i])
			}
			// The history covered results and errors.
			joined := strings.Join(cn, "\n")
			for _, want := range []string{`"outcome":"duplicate"`, `"reason":"signature_mismatch"`, `"code":"execution_not_found"`,
				`"code":"lease_mismatch"`, `"outcome":"already_satisfied"`, `"code":"not_suspended"`, `"reason":"cancelled"`,
				`"code":"waitpoint_not_found"`, `"code":"kid_is_current"`, `"code":"token_expired"`, `"code":"rotation_conflict"`,
				`"code":"invalid_input"`, `"outcome":"extended"`, `"outcome":"released"`, `"outcome":"completed"`, `"valid":true`} {
				require.Contains(t, joined, want)
			}

			// HTTP's own errors: no admin token, a bad one.
			anon, err := client.New(srv.url)
			require.NoError(t, err)
			_, err = anon.ListKids(ctx)
			require.ErrorIs(t, err, &contracts.Error{Kind: contracts.KindValidation, Code: httpapi.CodeUnauthorized})
			require.NoError(t, anon.Ping(ctx))

			// Nothing secret reached ff serve's log.
			logs := srv.stop(t)
			for _, s := range append(viaClient.tokens, adminToken, hex.EncodeToString(secretA), hex.EncodeToString(secretB)) {
				require.NotContains(t, logs, s[strings.IndexByte(s, ':')+1:])
			}
			require.Contains(t, logs, `"route":"deliver_signal_callback"`)
		})
	}
}

// recorded is a history's envelopes, the names of its steps, and the
// tokens it was handed.
type recorded struct {
	envelopes, names, tokens []string
}

func (r *recorded) add(t *testing.T, name string, v any, err error) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err != nil {
		var ce *contracts.Error
		require.True(t, errors.As(err, &ce), "%s: %v is not a contract error", name, err)
		v = contracts.ErrorEnvelope{Error: ce}
	}
	require.NoError(t, enc.Encode(v))
	r.envelopes = append(r.envelopes, strings.TrimSpace(buf.String()))
	r.names = append(r.names, name)
}

// listKids is ListKids in call's form.
func listKids(s side) func(context.Context, struct{}) (contracts.ListKidsResult, error) {
	return func(ctx context.Context, _ struct{}) (contracts.ListKidsResult, error) { return s.ListKids(ctx) }
}

// call makes one call of the history, records its answer and returns its
// result.
func call[A, R any](t *testing.T, r *recorded, name string, f func(context.Context, A) (R, error), a A) R {
	t.Helper()
	out, err := f(context.Background(), a)
	r.add(t, name, out, err)
	return out
}

func history(t *testing.T, s side) *recorded {
	ctx := context.Background()
	r := &recorded{}
	ok := func(name string, err error) {
		t.Helper()
		r.add(t, name, map[string]string{"status": "ok"}, err)
	}
	ok("ping", s.Ping(ctx))
	call(t, r, "seed", s.Seed, contracts.SeedArgs{Kid: "k1", Secret: secretA})
	call(t, r, "seed again", s.Seed, contracts.SeedArgs{Kid: "k1", Secret: secretA})
	timeout := int64(600000)
	susArgs := contracts.SuspendArgs{ExecutionID: "run-7", Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}, {Key: "reject"}},
		Condition: contracts.ConditionAll, TimeoutMs: &timeout, IdempotencyKey: "s7", Tags: []string{"t"}}
	sus := call(t, r, "suspend", s.Suspend, susArgs)
	call(t, r, "suspend replay", s.Suspend, susArgs)
	approve, reject := sus.Waitpoints[0], sus.Waitpoints[1]
	r.tokens = append(r.tokens, approve.Token, reject.Token)
	deliver := func(wp contracts.WaitpointOutcome, exec, name, payload, key string) contracts.DeliverSignalArgs {
		return contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: wp.WaitpointID, Token: wp.Token, Name: name, Payload: []byte(payload), IdempotencyKey: key}
	}
	call(t, r, "deliver", s.DeliverSignal, deliver(approve, "run-7", "approved", `{"by": "<ana>"}`, "i1"))
	call(t, r, "deliver duplicate", s.DeliverSignal, deliver(approve, "run-7", "approved", "", "i1"))
	tampered := approve
	tampered.Token = approve.Token[:len(approve.Token)-1] + map[bool]string{true: "1", false: "0"}[strings.HasSuffix(approve.Token, "0")]
	call(t, r, "deliver tampered", s.DeliverSignal, deliver(tampered, "run-7", "approved", "", ""))
	call(t, r, "deliver other execution", s.DeliverSignal, deliver(approve, "run-8", "approved", "", ""))
	call(t, r, "callback", s.callback, deliver(reject, "run-7", "rejected", `{"n":[1,2]}`, "cb-1"))
	call(t, r, "callback duplicate", s.callback, deliver(reject, "run-7", "rejected", `{"n":[1,2]}`, "cb-1"))
	call(t, r, "callback closed", s.callback, deliver(reject, "run-7", "late", "", ""))
	page := call(t, r, "observe page 1", s.ObserveSignals, contracts.ObserveSignalsArgs{ExecutionID: "run-7", Limit: 1})
	require.NotNil(t, page.NextCursor)
	call(t, r, "observe page 2", s.ObserveSignals, contracts.ObserveSignalsArgs{ExecutionID: "run-7", Cursor: *page.NextCursor})
	call(t, r, "observe unknown", s.ObserveSignals, contracts.ObserveSignalsArgs{ExecutionID: "nobody"})
	call(t, r, "observe bad cursor", s.ObserveSignals, contracts.ObserveSignalsArgs{ExecutionID: "run-7", Cursor: "nope"})

	deal := call(t, r, "suspend quorum", s.Suspend, contracts.SuspendArgs{ExecutionID: "deal-1",
		Waitpoints: []contracts.WaitpointSpec{{Key: "cfo"}, {Key: "ceo"}, {Key: "legal"}}, Condition: contracts.CountCondition(2), Tags: []string{"q3"}})
	for _, wp := range deal.Waitpoints {
		r.tokens = append(r.tokens, wp.Token)
	}
	call(t, r, "list", s.ListSuspended, contracts.ListSuspendedArgs{Limit: 5})
	call(t, r, "list by tag", s.ListSuspended, contracts.ListSuspendedArgs{Tag: "q3"})
	claim := call(t, r, "claim", s.ClaimResumedExecution, contracts.ClaimArgs{WorkerID: "w1", LeaseMs: 60000})
	call(t, r, "claim batch, nothing", s.ClaimResumedExecutions, contracts.ClaimBatchArgs{WorkerID: "w1", Max: 3})
	call(t, r, "claim waiting, nothing", s.claimWait, contracts.ClaimArgs{WorkerID: "w1"})
	call(t, r, "extend", s.ExtendLease, contracts.ExtendLeaseArgs{ExecutionID: "run-7", LeaseID: claim.LeaseID, LeaseMs: 90000})
	call(t, r, "release", s.ReleaseExecution, contracts.ReleaseArgs{ExecutionID: "run-7", LeaseID: claim.LeaseID})
	call(t, r, "extend released", s.ExtendLease, contracts.ExtendLeaseArgs{ExecutionID: "run-7", LeaseID: claim.LeaseID})
	call(t, r, "extend unknown", s.ExtendLease, contracts.ExtendLeaseArgs{ExecutionID: "nobody", LeaseID: claim.LeaseID})
	batch := call(t, r, "claim batch", s.ClaimResumedExecutions, contracts.ClaimBatchArgs{WorkerID: "w2", Max: 2, LeaseMs: 60000})
	require.Len(t, batch.Claims, 1)
	call(t, r, "complete old lease", s.CompleteExecution, contracts.CompleteArgs{ExecutionID: "run-7", LeaseID: claim.LeaseID})
	call(t, r, "complete", s.CompleteExecution, contracts.CompleteArgs{ExecutionID: "run-7", LeaseID: batch.Claims[0].LeaseID})
	call(t, r, "complete again", s.CompleteExecution, contracts.CompleteArgs{ExecutionID: "run-7", LeaseID: batch.Claims[0].LeaseID})

	created := call(t, r, "create waitpoint", s.CreateWaitpoint, contracts.CreateWaitpointArgs{ExecutionID: "order-9", Key: "approve",
		ExpiresInMs: 86400000, Tags: []string{"mail"}})
	r.tokens = append(r.tokens, created.Token)
	call(t, r, "get waitpoint", s.GetWaitpoint, contracts.GetWaitpointArgs{ExecutionID: "order-9", WaitpointID: created.WaitpointID})
	call(t, r, "deliver pending", s.DeliverSignal, contracts.DeliverSignalArgs{ExecutionID: "order-9", WaitpointID: created.WaitpointID,
		Token: created.Token, Name: "approved", IdempotencyKey: "mail-1"})
	call(t, r, "suspend satisfied", s.Suspend, contracts.SuspendArgs{ExecutionID: "order-9",
		Waitpoints: []contracts.WaitpointSpec{{Pending: created.WaitpointID}}, IdempotencyKey: "s9"})
	call(t, r, "get waitpoint closed", s.GetWaitpoint, contracts.GetWaitpointArgs{ExecutionID: "order-9", WaitpointID: created.WaitpointID})
	call(t, r, "get waitpoint unknown", s.GetWaitpoint, contracts.GetWaitpointArgs{ExecutionID: "order-9", WaitpointID: "00000000-0000-4000-8000-000000000000"})
	call(t, r, "cancel", s.CancelSuspension, contracts.CancelArgs{ExecutionID: "deal-1"})
	call(t, r, "cancel again", s.CancelSuspension, contracts.CancelArgs{ExecutionID: "deal-1"})
	call(t, r, "claim cancelled", s.ClaimResumedExecution, contracts.ClaimArgs{WorkerID: "w3", LeaseMs: 60000})
	call(t, r, "describe claimed", s.DescribeExecution, contracts.DescribeExecutionArgs{ExecutionID: "deal-1"})
	call(t, r, "describe satisfied", s.DescribeExecution, contracts.DescribeExecutionArgs{ExecutionID: "order-9"})
	call(t, r, "describe unknown", s.DescribeExecution, contracts.DescribeExecutionArgs{ExecutionID: "nobody"})
	call(t, r, "describe dot", s.DescribeExecution, contracts.DescribeExecutionArgs{ExecutionID: ".."})
	call(t, r, "counts", s.CountExecutions, contracts.CountExecutionsArgs{})
	call(t, r, "suspend bad count", s.Suspend, contracts.SuspendArgs{ExecutionID: "x", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}},
		Condition: contracts.CountCondition(2)})
	call(t, r, "create eleven tags", s.CreateWaitpoint, contracts.CreateWaitpointArgs{ExecutionID: "x", Key: "k", ExpiresInMs: 1000,
		Tags: []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9", "t10"}})
	call(t, r, "suspend bad pending", s.Suspend, contracts.SuspendArgs{ExecutionID: "x", Waitpoints: []contracts.WaitpointSpec{{Pending: "nope"}}})
	call(t, r, "cancel dot", s.CancelSuspension, contracts.CancelArgs{ExecutionID: ".."})

	signed := call(t, r, "sign", s.Sign, contracts.SignArgs{Scope: "s", Message: []byte("hello <world>")})
	r.tokens = append(r.tokens, signed.Token)
	call(t, r, "verify", s.Verify, contracts.VerifyArgs{Scope: "s", Message: []byte("hello <world>"), Token: signed.Token})
	call(t, r, "verify other message", s.Verify, contracts.VerifyArgs{Scope: "s", Message: []byte("other"), Token: signed.Token})
	call(t, r, "list kids", listKids(s), struct{}{})
	call(t, r, "revoke current", s.RevokeKid, contracts.RevokeKidArgs{Kid: "k1"})
	call(t, r, "rotate", s.RotateAll, contracts.RotateArgs{NewKid: "k2", NewSecret: secretB, GraceMs: 600000})
	call(t, r, "rotate again", s.RotateAll, contracts.RotateArgs{NewKid: "k2", NewSecret: secretB, GraceMs: 600000})
	call(t, r, "revoke", s.RevokeKid, contracts.RevokeKidArgs{Kid: "k1"})
	call(t, r, "revoke again", s.RevokeKid, contracts.RevokeKidArgs{Kid: "k1"})
	call(t, r, "verify revoked", s.Verify, contracts.VerifyArgs{Scope: "s", Message: []byte("hello <world>"), Token: signed.Token})
	call(t, r, "rotate back", s.RotateAll, contracts.RotateArgs{NewKid: "k1", NewSecret: secretA})
	call(t, r, "list kids after", listKids(s), struct{}{})
	return r
}

// normalize replaces the volatile values of a history (ids by order of
// first appearance, timestamps, MACs, fingerprints, cursors).
func normalize(history []string) []string {
	n := envelopes.Normalizer{Cursors: true}
	out := make([]string, len(history))
	for i, e := range history {
		out[i] = n.Normalize(e)
	}
	return out
}

// served is a running ff serve.
type served struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
}

// startServe runs `ff --backend storeURL serve` on a free port, with the
// admin routes and callback URLs on, and waits for its "listening" line.
func startServe(t *testing.T, bin, storeURL string) *served {
	t.Helper()
	cmd := exec.Command(bin, "--backend", storeURL, "serve", "--listen", "127.0.0.1:0", "--callback-base-url", "https://hooks.example.com")
	cmd.Env = append(os.Environ(), "FF_ADMIN_TOKEN="+adminToken)
	pipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s := &served{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.stderr.WriteString(line + "\n")
			s.mu.Unlock()
			var l struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "listening" {
				addr <- l.Addr
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case a := <-addr:
		s.url = "http://" + a
	case err := <-s.done:
		t.Fatalf("ff serve exited before listening: %v\n%s", err, s.logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("ff serve did not listen within 60 s:\n%s", s.logs())
	}
	return s
}

func (s *served) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// stop sends SIGTERM, checks that ff serve exits 0 and returns its log.
func (s *served) stop(t *testing.T) string {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-s.done:
		require.NoError(t, err, "ff serve: %s", s.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("ff serve did not stop within 30 s")
	}
	return s.logs()
}
