package cli_test

// Version 2 of the waitpoint lifecycle (docs/spec.md §8) through the ff
// binary, one process per step as an operator runs it, on every backend ff
// links: SQLite, PostgreSQL, Valkey standalone and cluster (real, isolated
// servers from internal/testenv), and memory in-process (memory:// is one
// store per process, so a store shared by the steps is registered below).

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// ffBinary is cmd/ff, built once per package run.
func ffBinary(t *testing.T) string { return testenv.FFBinary(t) }

// runner runs one ff command line against one backend and returns what it
// printed; a story is written once against it.
type runner func(args ...string) result

// binaryOn runs the built ff binary, one process per call, on backend.
func binaryOn(t *testing.T, backend string) runner {
	bin := ffBinary(t)
	dir := t.TempDir()
	return func(args ...string) result {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--backend", backend}, args...)...)
		cmd.Dir = dir
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "FF_BACKEND_URL=") && !strings.HasPrefix(kv, "FF_KEK_FILE=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("running ff %v: %v", args, err)
		}
		return newResult(t, cmd.ProcessState.ExitCode(), out.String(), errOut.String())
	}
}

// inProcessOn runs ff in-process (cli.Run) on backend.
func inProcessOn(t *testing.T, backend string) runner {
	return func(args ...string) result {
		t.Helper()
		return run(t, "", append([]string{"--backend", backend}, args...)...)
	}
}

// sharedMemory is the scheme of a memory store that outlives each Run, so
// that the steps of a story share it as processes share a file.
const sharedMemory = "ffitmem"

var memoryStores sync.Map // host -> keptOpen

type keptOpen struct{ *memory.Backend }

func (keptOpen) Close() error { return nil }

func init() {
	engine.Register(sharedMemory, func(_ context.Context, u *url.URL) (driver.Backend, error) {
		b, ok := memoryStores.Load(u.Host)
		if !ok {
			return nil, contracts.Invalid("backend_url", "no such test store")
		}
		return b.(keptOpen), nil
	})
}

func newSharedMemory(t *testing.T) string {
	name := strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name()))
	memoryStores.Store(name, keptOpen{memory.New()})
	t.Cleanup(func() { memoryStores.Delete(name) })
	return sharedMemory + "://" + name
}

// lifecycleBackends are the backends of the version 2 stories: each
// returns a runner on a fresh, isolated store.
var lifecycleBackends = []struct {
	name string
	open func(t *testing.T) runner
}{
	{"Memory", func(t *testing.T) runner { return inProcessOn(t, newSharedMemory(t)) }},
	{"SQLite", func(t *testing.T) runner { return binaryOn(t, "sqlite://"+filepath.Join(t.TempDir(), "ff.db")) }},
	{"Postgres", func(t *testing.T) runner {
		return binaryOn(t, withQuery(t, testenv.NewPostgresDatabase(t), "ff_migrate", "auto"))
	}},
	{"Valkey", func(t *testing.T) runner {
		return binaryOn(t, withQuery(t, testenv.ValkeyURL(t), "prefix", testenv.KeyPrefix(t)))
	}},
	{"ValkeyCluster", func(t *testing.T) runner {
		return binaryOn(t, withQuery(t, testenv.ValkeyClusterURL(t), "prefix", testenv.KeyPrefix(t)))
	}},
}

// TestApprovalMailThroughFF is the story of docs/spec.md §8.1 as an
// operator types it: the execution opens a pending waitpoint and mails its
// token; the approver's signal arrives before the execution suspends; the
// suspend that uses the waitpoint answers already_satisfied with it.
func TestApprovalMailThroughFF(t *testing.T) {
	for _, bc := range lifecycleBackends {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			approvalMail(t, bc.open(t))
		})
	}
}

func approvalMail(t *testing.T, ff runner) {
	t.Helper()
	ff("seed", "--kid", "k1", "--secret-hex", secretA).ok(t)

	created := ff("waitpoint", "create", "--execution", "order-7", "--key", "approve", "--expires-in", "24h", "--tag", "mail").ok(t)
	require.Equal(t, "created", created["outcome"])
	wp, token := str(t, created, "waitpoint_id"), str(t, created, "token")
	require.Equal(t, created["created_at_ms"].(float64)+86400000, created["expires_at_ms"])
	require.Equal(t, []any{"mail"}, created["tags"])
	ff("signals", "--execution", "order-7").contractErr(t, contracts.KindNotFound, contracts.CodeExecutionNotFound)

	// The approver answers the mail: the signal is kept on the pending waitpoint.
	sig := ff("signal", "--execution", "order-7", "--waitpoint-id", wp, "--token", token,
		"--name", "approved", "--payload", `{"by":"ana"}`, "--idempotency-key", "mail-1").ok(t)
	require.Equal(t, "accepted", sig["outcome"])
	require.Equal(t, false, sig["resumed"])
	wantStdout(t, ff("signal", "--execution", "order-7", "--waitpoint-id", wp, "--token", token,
		"--name", "approved", "--payload", `{"by":"ana"}`, "--idempotency-key", "mail-1"),
		`{"outcome":"duplicate","signal_id":"`+str(t, sig, "signal_id")+`"}`)

	info := ff("waitpoint", "get", "--execution", "order-7", "--waitpoint-id", wp)
	got := info.ok(t)
	require.Equal(t, "pending", got["status"])
	require.Equal(t, float64(1), got["signals"])
	require.Equal(t, driver.TokenFingerprint(token), got["token_fingerprint"])
	require.NotContains(t, info.stdout, token, "get_waitpoint shows the token")

	// The execution suspends using the waitpoint: it does not wait.
	sus := ff("suspend", "--execution", "order-7", "--pending", wp, "--timeout-ms", "600000", "--idempotency-key", "order-7-s1")
	done := sus.ok(t)
	require.Equal(t, "already_satisfied", done["outcome"], sus.stdout)
	signals := done["signals"].([]any)
	require.Len(t, signals, 1)
	require.Equal(t, str(t, sig, "signal_id"), str(t, signals[0], "signal_id"))
	require.Equal(t, map[string]any{"by": "ana"}, signals[0].(map[string]any)["payload"])
	replay := ff("suspend", "--execution", "order-7", "--pending", wp, "--timeout-ms", "600000", "--idempotency-key", "order-7-s1")
	require.Equal(t, sus.stdout, replay.stdout, "a replay answers already_satisfied byte for byte")

	observed := ff("signals", "--execution", "order-7").ok(t)
	require.Equal(t, str(t, done, "suspension_id"), str(t, observed, "suspension_id"))
	require.Len(t, observed["signals"].([]any), 1)
	require.Equal(t, "closed", ff("waitpoint", "get", "--execution", "order-7", "--waitpoint-id", wp).ok(t)["status"])
	ff("signal", "--execution", "order-7", "--waitpoint-id", wp, "--token", token, "--name", "late").
		contractErr(t, contracts.KindState, contracts.CodeWaitpointClosed)
	wantStdout(t, ff("suspended"), `{"executions":[],"next_cursor":null}`)
	wantStdout(t, ff("claim", "--worker", "w1"), `{"outcome":"none"}`)
}

// TestLifecycleThroughFF: a quorum with a pending waitpoint and tags, the
// tag filter, cancel, the heartbeat and release, through ff on every backend.
func TestLifecycleThroughFF(t *testing.T) {
	for _, bc := range lifecycleBackends {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			lifecycle(t, bc.open(t))
		})
	}
}

func lifecycle(t *testing.T, ff runner) {
	t.Helper()
	ff("seed", "--kid", "k1", "--secret-hex", secretA).ok(t)

	// Two of three approvers, one of them mailed before the suspend.
	legal := ff("waitpoint", "create", "--execution", "deal-1", "--key", "legal", "--expires-in-ms", "3600000").ok(t)
	sus := ff("suspend", "--execution", "deal-1", "--waitpoint", "cfo", "--pending", str(t, legal, "waitpoint_id"),
		"--waitpoint", "ceo", "--count", "2", "--tag", "q3", "--tag", "deals").ok(t)
	require.Equal(t, map[string]any{"count": float64(2)}, sus["condition"])
	require.Equal(t, []any{"q3", "deals"}, sus["tags"])
	require.Equal(t, "legal", str(t, sus, "waitpoints", 1, "waitpoint_key"))
	require.Equal(t, str(t, legal, "waitpoint_id"), str(t, sus, "waitpoints", 1, "waitpoint_id"))
	ff("suspend", "--execution", "other", "--waitpoint", "w", "--tag", "q4").ok(t)

	rows := ff("suspended", "--tag", "q3").ok(t)["executions"].([]any)
	require.Len(t, rows, 1)
	require.Equal(t, "deal-1", str(t, rows[0], "execution_id"))
	require.Equal(t, []any{"q3", "deals"}, rows[0].(map[string]any)["tags"])
	require.Len(t, ff("suspended").ok(t)["executions"].([]any), 2)

	deliver := func(i int) map[string]any {
		return ff("signal", "--execution", "deal-1", "--waitpoint-id", str(t, sus, "waitpoints", i, "waitpoint_id"),
			"--token", str(t, sus, "waitpoints", i, "token"), "--name", "approved").ok(t)
	}
	require.Equal(t, false, deliver(1)["resumed"])
	require.Equal(t, true, deliver(0)["resumed"])
	claim := ff("claim", "--worker", "w1").ok(t)
	require.Equal(t, "deal-1", claim["execution_id"])
	require.Equal(t, "signal", claim["reason"])
	lease := str(t, claim, "lease_id")

	// The heartbeat, then the worker gives the execution back.
	ext := ff("extend", "--execution", "deal-1", "--lease-id", lease, "--lease-ms", "120000").ok(t)
	require.Equal(t, "extended", ext["outcome"])
	require.GreaterOrEqual(t, ext["lease_expires_at_ms"].(float64), claim["lease_expires_at_ms"].(float64)+90000)
	wantStdout(t, ff("release", "--execution", "deal-1", "--lease-id", lease), `{"outcome":"released","execution_id":"deal-1"}`)
	ff("extend", "--execution", "deal-1", "--lease-id", lease).contractErr(t, contracts.KindConflict, contracts.CodeLeaseMismatch)
	again := ff("claim", "--worker", "w2").ok(t)
	require.Equal(t, "deal-1", again["execution_id"])
	require.Equal(t, "signal", again["reason"], "release keeps the claim reason")
	require.NotEqual(t, lease, again["lease_id"])
	wantStdout(t, ff("complete", "--execution", "deal-1", "--lease-id", str(t, again, "lease_id")),
		`{"outcome":"completed","execution_id":"deal-1"}`)

	// Cancel: the waitpoints close and the execution is claimable, reason cancelled.
	other := ff("suspended").ok(t)["executions"].([]any)
	require.Len(t, other, 1)
	wantStdout(t, ff("cancel", "--execution", "other"),
		`{"outcome":"cancelled","execution_id":"other","suspension_id":"`+str(t, other[0], "suspension_id")+`"}`)
	ff("cancel", "--execution", "other").contractErr(t, contracts.KindConflict, contracts.CodeNotSuspended)
	ff("cancel", "--execution", "nobody").contractErr(t, contracts.KindNotFound, contracts.CodeExecutionNotFound)
	cancelled := ff("claim", "--worker", "w3").ok(t)
	require.Equal(t, "other", cancelled["execution_id"])
	require.Equal(t, "cancelled", cancelled["reason"])
	ff("waitpoint", "get", "--execution", "other", "--waitpoint-id", driver.NewID()).
		contractErr(t, contracts.KindNotFound, contracts.CodeWaitpointNotFound)

	// Refused arguments name their field and change nothing.
	ff("suspend", "--execution", "x", "--waitpoint", "a", "--count", "2").contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
	ff("waitpoint", "create", "--execution", "x", "--key", "k", "--expires-in", "1h", "--tag", "a", "--tag", "a").
		contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
	ff("signals", "--execution", "x").contractErr(t, contracts.KindNotFound, contracts.CodeExecutionNotFound)
}
