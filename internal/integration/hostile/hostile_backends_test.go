// Package hostile holds the hostile-input tests (docs/reliability.md,
// "Hostile input"): SQL, Lua and redis-protocol injection attempts through
// every string field, on every backend; oversized input rejected before any
// I/O; no secret in any log line, error or envelope; constant-time
// comparison of MACs, secrets and the admin token.
package hostile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/backend/sqlite"
	"github.com/flowfabric/flowfabric-go/backend/valkey"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// One Postgres database for the package, one schema per test.
func TestMain(m *testing.M) { testenv.Main(m) }

// backendKind opens a fresh, empty, isolated backend of one kind; the
// backend is closed when t ends.
type backendKind struct {
	name string
	open func(t testing.TB) driver.Backend
}

var backendKinds = []backendKind{
	{"memory", func(testing.TB) driver.Backend { return memory.New() }},
	{"sqlite", func(t testing.TB) driver.Backend {
		b, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ff.db"))
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		return b
	}},
	{"postgres", func(t testing.TB) driver.Backend {
		u, err := url.Parse(testenv.NewPostgresSchema(t, testenv.PackageDatabase(t)))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set(postgres.ParamMigrate, postgres.MigrateAuto)
		u.RawQuery = q.Encode()
		return openURL(t, u.String())
	}},
	{"valkey", func(t testing.TB) driver.Backend {
		u, err := url.Parse(testenv.ValkeyURL(t))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set(valkey.OptionPartitions, "16")
		q.Set(valkey.OptionPrefix, testenv.KeyPrefix(t))
		u.RawQuery = q.Encode()
		return openURL(t, u.String())
	}},
}

func openURL(t testing.TB, raw string) driver.Backend {
	t.Helper()
	b, err := engine.OpenBackend(context.Background(), raw)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return b
}

// forEachBackend runs f on a fresh engine of every backend kind.
func forEachBackend(t *testing.T, f func(t *testing.T, e *engine.Engine)) {
	for _, k := range backendKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			b := k.open(t)
			e := engine.New(b)
			t.Cleanup(func() { _ = e.Close() })
			f(t, e)
		})
	}
}

// hostileSecret is the signing secret of these tests.
var hostileSecret = contracts.Secret(bytes.Repeat([]byte{0x5a, 0xa5}, 16))

// injections are the hostile strings every free-form field is tried with.
var injections = []string{
	"'", `"`, "''", `\`, `\'`, "'); DROP TABLE ff_keys; --", `"; DROP TABLE ff_signals; --`,
	"' OR '1'='1", "1; DELETE FROM ff_executions", "$1", "E'\\x00'", "%", "_", "*", "?",
	"]]", "[[", "]=]", "[==[", "]==]", "--[[ comment", "')) redis.call('FLUSHALL') --",
	"\x00", "a\x00b", "\x00\x00\x00", "\r\n", "*1\r\n$8\r\nFLUSHALL\r\n", "\n", "\t",
	"{p:0}", "{", "}", "ff:{p:0}:keys", "|", "1:", "2:ab", ":", "%s%n%x",
	"é", "€", "漢字", "🙂", "\u202e", "\u2028", "\ufeff", "e\u0301",
	"\xff", "\xc3\x28", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	strings.Repeat("'", 256), strings.Repeat("\x00", 256), strings.Repeat("]", 255) + "\xff",
}

// validJSONStrings are payloads that are one JSON string holding a hostile
// value, escaped (json.Marshal) or raw where the payload rule allows raw
// bytes: valid UTF-8 (docs/spec.md §2, payloads are I-JSON).
func hostilePayloads() []json.RawMessage {
	var out []json.RawMessage
	for _, s := range injections {
		b, _ := json.Marshal(s)
		out = append(out, b)
		if raw := `"` + s + `"`; json.Valid([]byte(raw)) && utf8.ValidString(raw) {
			out = append(out, json.RawMessage(raw))
		}
	}
	out = append(out, json.RawMessage(`{"'); DROP TABLE ff_keys; --":[null,"]]",{"\u0000":"\r\n"}]}`))
	return out
}

func seed(t *testing.T, e *engine.Engine) {
	t.Helper()
	if _, err := e.Seed(context.Background(), contracts.SeedArgs{Kid: "k1", Secret: hostileSecret}); err != nil {
		t.Fatalf("seed: %v", err)
	}
}

// TestHostileScopeAndMessage signs and verifies every hostile scope and
// message: the token is the MAC of the exact bytes, and it verifies.
func TestHostileScopeAndMessage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *engine.Engine) {
		ctx := context.Background()
		seed(t, e)
		n := 0
		for _, scope := range injections {
			for _, msg := range []string{"", "m", scope} {
				s, err := e.Sign(ctx, contracts.SignArgs{Scope: scope, Message: []byte(msg)})
				if err != nil {
					t.Fatalf("sign(scope %q, message %q): %v", scope, msg, err)
				}
				if s.Token != driver.SignToken("k1", hostileSecret, driver.SignatureInput("k1", scope, []byte(msg))) {
					t.Fatalf("sign(scope %q, message %q) did not sign the exact bytes", scope, msg)
				}
				v, err := e.Verify(ctx, contracts.VerifyArgs{Scope: scope, Message: []byte(msg), Token: s.Token})
				if err != nil || !v.Valid {
					t.Fatalf("verify(scope %q, message %q): %v", scope, msg, err)
				}
				n++
			}
		}
		t.Logf("%d hostile (scope, message) pairs signed and verified", n)
	})
}

// TestHostileIdempotencyKeysAndPayloads suspends with every hostile
// idempotency key, delivers every hostile payload with every hostile key,
// and reads each back byte for byte through the Go API.
func TestHostileIdempotencyKeysAndPayloads(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *engine.Engine) {
		seed(t, e)
		canary := suspend(t, e, "canary", "", "a", "b")
		payloads := hostilePayloads()
		var failures []string
		lossy, rejected := 0, 0
		for i, key := range injections {
			errs := []error{
				suspendReplay(t, e, fmt.Sprintf("hostile-%d", i), key),
				deliverAndRead(t, e, fmt.Sprintf("signal-%d", i), key, payloads[i%len(payloads)]),
			}
			for _, err := range errs {
				switch {
				case err == nil:
				case errors.Is(err, errLossy):
					lossy++
				case notText(key) && strings.Contains(err.Error(), "validation/invalid_input"):
					// Rejected by validation (contracts.ValidateText), on
					// every backend alike.
					rejected++
					requireNothingWritten(t, e, i)
				default:
					failures = append(failures, err.Error())
				}
			}
		}
		for i, p := range payloads {
			if err := deliverAndRead(t, e, fmt.Sprintf("payload-%d", i), "", p); errors.Is(err, errLossy) {
				lossy++
			} else if err != nil {
				failures = append(failures, err.Error())
			}
		}
		t.Logf("%d hostile keys and %d payloads tried; %d deliveries held invalid UTF-8, verbatim through the Go API, not through a JSON envelope", len(injections), len(payloads), lossy)
		if rejected > 0 {
			t.Logf("%d calls with a NUL or invalid UTF-8 key rejected by validation", rejected)
		}
		if len(failures) > 0 {
			t.Errorf("%d of %d calls with hostile values did not store them verbatim:\n%s", len(failures), 2*len(injections)+len(payloads), strings.Join(failures, "\n"))
		}
		// The store is intact: the canary suspension is still there.
		if _, err := e.ObserveSignals(context.Background(), contracts.ObserveSignalsArgs{ExecutionID: canary.ExecutionID}); err != nil {
			t.Fatalf("canary lost: %v", err)
		}
		if k, err := e.ListKids(context.Background()); err != nil || *k.Partitions[0].CurrentKid != "k1" {
			t.Fatalf("keystore lost: %+v %v", k, err)
		}
	})
}

func suspend(t *testing.T, e *engine.Engine, exec, idem string, keys ...string) contracts.SuspendOutcome {
	t.Helper()
	out, err := e.Suspend(context.Background(), suspendArgs(exec, idem, keys...))
	if err != nil {
		t.Fatalf("suspend %s: %v", exec, err)
	}
	return out
}

func suspendArgs(exec, idem string, keys ...string) contracts.SuspendArgs {
	a := contracts.SuspendArgs{ExecutionID: exec, IdempotencyKey: idem}
	for _, k := range keys {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: k})
	}
	return a
}

// suspendReplay suspends exec under idempotency key key twice (the same
// outcome) and once with other arguments (idempotency_mismatch).
func suspendReplay(t *testing.T, e *engine.Engine, exec, key string) error {
	ctx := context.Background()
	first, err := e.Suspend(ctx, suspendArgs(exec, key, "approve"))
	if err != nil {
		return fmt.Errorf("suspend key %q: %v", key, err)
	}
	again, err := e.Suspend(ctx, suspendArgs(exec, key, "approve"))
	a, _ := json.Marshal(first)
	b, _ := json.Marshal(again)
	if err != nil || !bytes.Equal(a, b) {
		return fmt.Errorf("suspend replay key %q: %v, %s != %s", key, err, a, b)
	}
	if _, err := e.Suspend(ctx, suspendArgs(exec, key, "other")); !errors.Is(err, contracts.ErrIdempotencyMismatch) {
		return fmt.Errorf("suspend replay key %q with other args: %v, want idempotency_mismatch", key, err)
	}
	return nil
}

// deliverAndRead delivers payload to exec (suspending it first when it is
// not), with idempotency key key, twice, and observes it.
func deliverAndRead(t *testing.T, e *engine.Engine, exec, key string, payload json.RawMessage) error {
	ctx := context.Background()
	sus, err := e.Suspend(ctx, suspendArgs(exec, "", "approve"))
	if errors.Is(err, contracts.ErrAlreadySuspended) {
		sus, err = replayOutcome(e, exec, key)
	}
	if err != nil {
		return fmt.Errorf("suspend %s: %v", exec, err)
	}
	wp := sus.Waitpoints[0]
	a := contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: wp.WaitpointID, Token: wp.Token, Name: "n", Payload: payload, IdempotencyKey: key}
	first, err := e.DeliverSignal(ctx, a)
	if err != nil {
		return fmt.Errorf("deliver key %q payload %q: %v", key, payload, err)
	}
	if key != "" {
		dup, err := e.DeliverSignal(ctx, a)
		if err != nil || dup.Outcome != contracts.OutcomeDuplicate || dup.SignalID != first.SignalID {
			return fmt.Errorf("redeliver key %q: %+v %v, want duplicate of %s", key, dup, err, first.SignalID)
		}
	}
	obs, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: exec})
	if err != nil || len(obs.Signals) != 1 {
		return fmt.Errorf("observe after key %q: %+v %v", key, obs, err)
	}
	s := obs.Signals[0]
	var want bytes.Buffer
	_ = json.Compact(&want, payload)
	if s.IdempotencyKey != key || !bytes.Equal(s.Payload, want.Bytes()) || s.SignalID != first.SignalID {
		return fmt.Errorf("read back key %q payload %q as key %q payload %q", key, want.Bytes(), s.IdempotencyKey, s.Payload)
	}
	return checkEnvelope(obs, key, want.Bytes())
}

// checkEnvelope decodes the observe_signals envelope as a JSON client (CLI,
// HTTP) would: a key and payload of valid UTF-8 come back exactly; invalid
// UTF-8 cannot travel in JSON (docs/reliability.md, "Findings"), so for it the
// envelope must still be valid JSON.
func checkEnvelope(obs contracts.ObserveSignalsResult, key string, payload []byte) error {
	env, err := json.Marshal(obs)
	if err != nil {
		return fmt.Errorf("envelope of key %q: %v", key, err)
	}
	var back struct {
		Signals []struct {
			Payload        json.RawMessage `json:"payload"`
			IdempotencyKey *string         `json:"idempotency_key"`
		} `json:"signals"`
	}
	if err := json.Unmarshal(env, &back); err != nil || len(back.Signals) != 1 {
		return fmt.Errorf("envelope of key %q does not decode: %v", key, err)
	}
	if !utf8.ValidString(key) || !utf8.Valid(payload) {
		return errLossy
	}
	got := back.Signals[0]
	gotKey := ""
	if got.IdempotencyKey != nil {
		gotKey = *got.IdempotencyKey
	}
	// The same JSON value: encoding/json writes U+2028 and U+2029 as
	// \u2028 and \u2029, which decodes to the same string.
	var a, b any
	_ = json.Unmarshal(got.Payload, &a)
	_ = json.Unmarshal(payload, &b)
	if gotKey != key || !reflect.DeepEqual(a, b) {
		return fmt.Errorf("envelope carries key %q payload %s as key %q payload %s", key, payload, gotKey, got.Payload)
	}
	return nil
}

// errLossy marks a value (invalid UTF-8) that a JSON envelope cannot carry
// byte for byte; the Go API still returns it verbatim.
var errLossy = errors.New("invalid UTF-8 cannot travel in a JSON envelope")

// replayOutcome returns the outcome that suspendReplay stored for exec.
func replayOutcome(e *engine.Engine, exec, key string) (contracts.SuspendOutcome, error) {
	return e.Suspend(context.Background(), suspendArgs(exec, key, "approve"))
}

// TestHostileIdentifiersRejected tries every injection (and each with a
// valid prefix) in every charset-limited field: each answers
// validation / invalid_input (or, for a waitpoint id, invalid_token, so a
// caller learns nothing), and nothing is written.
func TestHostileIdentifiersRejected(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *engine.Engine) {
		ctx := context.Background()
		seed(t, e)
		sus := suspend(t, e, "ok-exec", "", "approve")
		wp := sus.Waitpoints[0]
		lease := driver.NewID()
		n := 0
		for _, inj := range injections {
			if !outsideCharset(inj) {
				continue // e.g. "_" or "1:" are valid identifiers
			}
			for _, bad := range []string{inj, "ok" + inj, inj + "ok"} {
				calls := map[string]error{}
				_, calls["suspend.execution_id"] = e.Suspend(ctx, suspendArgs(bad, "", "a"))
				_, calls["suspend.waitpoints.key"] = e.Suspend(ctx, suspendArgs("x", "", bad))
				_, calls["seed.kid"] = e.Seed(ctx, contracts.SeedArgs{Kid: bad, Secret: hostileSecret})
				_, calls["rotate.new_kid"] = e.RotateAll(ctx, contracts.RotateArgs{NewKid: bad, NewSecret: hostileSecret})
				_, calls["deliver.execution_id"] = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: bad, WaitpointID: wp.WaitpointID, Token: wp.Token, Name: "n"})
				_, calls["deliver.name"] = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "ok-exec", WaitpointID: wp.WaitpointID, Token: wp.Token, Name: bad})
				_, calls["deliver.waitpoint_id"] = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "ok-exec", WaitpointID: bad, Token: wp.Token, Name: "n"})
				_, calls["deliver.token"] = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "ok-exec", WaitpointID: wp.WaitpointID, Token: bad, Name: "n"})
				_, calls["verify.token"] = e.Verify(ctx, contracts.VerifyArgs{Token: wp.Token[:3] + bad})
				_, calls["observe.execution_id"] = e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: bad})
				_, calls["claim.worker_id"] = e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: bad, LeaseMs: 1000})
				_, calls["complete.execution_id"] = e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: bad, LeaseID: lease})
				_, calls["complete.lease_id"] = e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: "ok-exec", LeaseID: bad})
				_, calls["list.cursor"] = e.ListSuspended(ctx, contracts.ListSuspendedArgs{Cursor: bad})
				for field, err := range calls {
					n++
					if !errors.Is(err, contracts.ErrInvalidInput) && !errors.Is(err, contracts.ErrInvalidToken) {
						t.Errorf("%s = %q: got %v, want a validation error", field, bad, err)
					}
				}
			}
		}
		// Nothing was written: ok-exec has no signal, x was never suspended.
		if obs, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "ok-exec"}); err != nil || len(obs.Signals) != 0 {
			t.Fatalf("ok-exec changed: %+v %v", obs, err)
		}
		if _, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "x"}); !errors.Is(err, contracts.ErrExecutionNotFound) {
			t.Fatalf("x exists after rejected suspends: %v", err)
		}
		t.Logf("%d hostile identifiers rejected", n)
	})
}

// requireNothingWritten checks that the refused calls of injection i left
// nothing behind: no suspension hostile-i, no signal on signal-i.
func requireNothingWritten(t *testing.T, e *engine.Engine, i int) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: fmt.Sprintf("hostile-%d", i)}); !errors.Is(err, contracts.ErrExecutionNotFound) {
		t.Errorf("hostile-%d: a refused suspend left state behind: %v", i, err)
	}
	obs, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: fmt.Sprintf("signal-%d", i)})
	if err != nil || len(obs.Signals) != 0 {
		t.Errorf("signal-%d: a refused delivery left state behind: %+v %v", i, obs, err)
	}
}

// notText reports a key that is not valid UTF-8 or holds a NUL.
func notText(key string) bool { return !utf8.ValidString(key) || strings.ContainsRune(key, 0) }

// outsideCharset reports whether s holds a byte outside [A-Za-z0-9._:-], the
// widest charset of any identifier field, so every such field must refuse it.
func outsideCharset(s string) bool {
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") != ""
}
