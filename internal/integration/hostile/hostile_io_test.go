package hostile

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// countingBackend counts every call that reaches the driver: any call is
// I/O as far as the Engine can tell.
type countingBackend struct {
	driver.Backend

	calls atomic.Int64
}

func (c *countingBackend) Seed(ctx context.Context, a contracts.SeedArgs) (contracts.SeedOutcome, error) {
	c.calls.Add(1)
	return c.Backend.Seed(ctx, a)
}

func (c *countingBackend) RotateAll(ctx context.Context, a contracts.RotateArgs) (contracts.RotateAllResult, error) {
	c.calls.Add(1)
	return c.Backend.RotateAll(ctx, a)
}

func (c *countingBackend) ListKids(ctx context.Context, a contracts.ListKidsArgs) (contracts.ListKidsResult, error) {
	c.calls.Add(1)
	return c.Backend.ListKids(ctx, a)
}

func (c *countingBackend) Sign(ctx context.Context, a contracts.SignArgs) (contracts.SignResult, error) {
	c.calls.Add(1)
	return c.Backend.Sign(ctx, a)
}

func (c *countingBackend) Verify(ctx context.Context, a contracts.VerifyArgs) (contracts.VerifyResult, error) {
	c.calls.Add(1)
	return c.Backend.Verify(ctx, a)
}

func (c *countingBackend) Suspend(ctx context.Context, a contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	c.calls.Add(1)
	return c.Backend.Suspend(ctx, a)
}

func (c *countingBackend) DeliverSignal(ctx context.Context, a contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	c.calls.Add(1)
	return c.Backend.DeliverSignal(ctx, a)
}

func (c *countingBackend) ObserveSignals(ctx context.Context, a contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error) {
	c.calls.Add(1)
	return c.Backend.ObserveSignals(ctx, a)
}

func (c *countingBackend) ListSuspended(ctx context.Context, a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	c.calls.Add(1)
	return c.Backend.ListSuspended(ctx, a)
}

func (c *countingBackend) ClaimResumedExecution(ctx context.Context, a contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	c.calls.Add(1)
	return c.Backend.ClaimResumedExecution(ctx, a)
}

func (c *countingBackend) CompleteExecution(ctx context.Context, a contracts.CompleteArgs) (contracts.CompleteOutcome, error) {
	c.calls.Add(1)
	return c.Backend.CompleteExecution(ctx, a)
}

// oversizedCall is one call whose input is one byte (or one item) over a
// limit of docs/spec.md §2 / §5.
type oversizedCall struct {
	name string
	call func(ctx context.Context, e *engine.Engine) error
}

func oversizedCalls() []oversizedCall {
	over := func(n int) string { return strings.Repeat("a", n+1) }
	tok := driver.SignToken("k1", hostileSecret, driver.SignatureInput("k1", "", []byte("m")))
	wp := driver.NewID()
	bigPayload, _ := json.Marshal(strings.Repeat("p", contracts.MaxPayloadLen))
	var many []contracts.WaitpointSpec
	for i := range contracts.MaxWaitpoints + 1 {
		many = append(many, contracts.WaitpointSpec{Key: "k" + strings.Repeat("x", i)})
	}
	tooLong := int64(contracts.MaxGraceMs + 1)
	return []oversizedCall{
		{"seed.kid", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.Seed(ctx, contracts.SeedArgs{Kid: over(contracts.MaxKidLen), Secret: hostileSecret})
			return err
		}},
		{"seed.secret", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: make(contracts.Secret, contracts.MaxSecretBytes+1)})
			return err
		}},
		{"rotate.grace_ms", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: "k2", NewSecret: hostileSecret, GraceMs: tooLong})
			return err
		}},
		{"sign.scope", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.Sign(ctx, contracts.SignArgs{Scope: over(contracts.MaxScopeLen)})
			return err
		}},
		{"sign.message", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.Sign(ctx, contracts.SignArgs{Message: make([]byte, contracts.MaxMessageLen+1)})
			return err
		}},
		{"verify.message", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.Verify(ctx, contracts.VerifyArgs{Message: make([]byte, contracts.MaxMessageLen+1), Token: tok})
			return err
		}},
		{"verify.token", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.Verify(ctx, contracts.VerifyArgs{Token: over(contracts.MaxKidLen) + tok[2:]})
			return err
		}},
		{"suspend.execution_id", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.Suspend(ctx, suspendArgs(over(contracts.MaxIdentifierLen), "", "a"))
			return err
		}},
		{"suspend.waitpoints", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "e", Waitpoints: many})
			return err
		}},
		{"suspend.waitpoints.key", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.Suspend(ctx, suspendArgs("e", "", over(contracts.MaxIdentifierLen)))
			return err
		}},
		{"suspend.idempotency_key", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.Suspend(ctx, suspendArgs("e", over(contracts.MaxIdempotencyKeyLen), "a"))
			return err
		}},
		{"suspend.timeout_ms", func(ctx context.Context, e *engine.Engine) error {
			a := suspendArgs("e", "", "a")
			a.TimeoutMs = &tooLong
			_, err := e.Suspend(ctx, a)
			return err
		}},
		{"deliver.payload", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e", WaitpointID: wp, Token: tok, Name: "n", Payload: bigPayload})
			return err
		}},
		{"deliver.idempotency_key", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e", WaitpointID: wp, Token: tok, Name: "n", IdempotencyKey: over(contracts.MaxIdempotencyKeyLen)})
			return err
		}},
		{"deliver.name", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e", WaitpointID: wp, Token: tok, Name: over(contracts.MaxIdentifierLen)})
			return err
		}},
		{"observe.execution_id", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: over(contracts.MaxIdentifierLen)})
			return err
		}},
		{"list.limit", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: contracts.MaxListLimit + 1})
			return err
		}},
		{"list.cursor", func(ctx context.Context, e *engine.Engine) error {
			c := contracts.EncodeCursor(contracts.Cursor{SuspendedAtMs: 1, ExecutionID: over(contracts.MaxIdentifierLen)})
			_, err := e.ListSuspended(ctx, contracts.ListSuspendedArgs{Cursor: c})
			return err
		}},
		{"claim.worker_id", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: over(contracts.MaxIdentifierLen), LeaseMs: 1})
			return err
		}},
		{"claim.lease_ms", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: contracts.MaxLeaseMs + 1})
			return err
		}},
		{"complete.execution_id", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: over(contracts.MaxIdentifierLen), LeaseID: wp})
			return err
		}},
	}
}

// TestOversizedRejectedBeforeIO sends every oversized input through an
// Engine over a driver that counts its calls, with the keystore cache on
// and off: each answers validation / invalid_input and the driver is never
// called.
func TestOversizedRejectedBeforeIO(t *testing.T) {
	for _, cache := range []bool{false, true} {
		cb := &countingBackend{Backend: memory.New()}
		var opts []engine.Option
		if !cache {
			opts = append(opts, engine.WithKeystoreCache(0))
		}
		e := engine.New(cb, opts...)
		seed(t, e)
		start := cb.calls.Load()
		for _, c := range oversizedCalls() {
			if err := c.call(context.Background(), e); !errors.Is(err, contracts.ErrInvalidInput) && !errors.Is(err, contracts.ErrTokenMalformed) {
				t.Errorf("cache %v: %s: got %v, want invalid_input", cache, c.name, err)
			}
		}
		if n := cb.calls.Load() - start; n != 0 {
			t.Errorf("cache %v: %d oversized calls reached the driver", cache, n)
		}
	}
}

// TestOversizedRejectedByAClosedBackend sends every oversized input to a
// closed backend of every kind: validation answers invalid_input, where any
// I/O would have answered backend_closed (checked with a valid call).
func TestOversizedRejectedByAClosedBackend(t *testing.T) {
	for _, k := range backendKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			b := k.open(t)
			e := engine.New(b)
			seed(t, e)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := e.ListKids(ctx); err == nil || errors.Is(err, contracts.ErrInvalidInput) {
				t.Fatalf("a valid call on a closed backend answered %v, want an I/O error", err)
			}
			for _, c := range oversizedCalls() {
				if err := c.call(ctx, e); !errors.Is(err, contracts.ErrInvalidInput) && !errors.Is(err, contracts.ErrTokenMalformed) {
					t.Errorf("%s: got %v, want invalid_input before any I/O", c.name, err)
				}
			}
		})
	}
}
