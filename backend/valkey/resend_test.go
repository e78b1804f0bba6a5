package valkey

import (
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// go-redis re-sends a command when the connection fails before the reply
// arrives, so a write script may run twice with the same arguments. Each
// write script must then answer what it answered the first time and write
// nothing more. These tests send each script twice with identical ARGV.
func TestWriteScriptsAnswerAReSentCall(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		e, b := seededEngine(t, s, 256, nil)
		twice := func(name string, p int, args ...any) ([]any, []any) {
			t.Helper()
			first, err1 := b.run(bg, scriptByName(t, name), p, args...)
			second, err2 := b.run(bg, scriptByName(t, name), p, args...)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: %v / %v", name, err1, err2)
			}
			if !slices.Equal(first, second) {
				t.Fatalf("%s re-sent: %v, first %v", name, second, first)
			}
			return first, second
		}

		// suspend_write: the same suspension_id written twice is one suspension.
		args := contracts.SuspendArgs{ExecutionID: "resend-1", Condition: contracts.ConditionAny, Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}}
		p := driver.PartitionOf(args.ExecutionID, b.parts)
		lk, err := b.loadKid(bg, p, secretOfCurrent)
		if err != nil {
			t.Fatal(err)
		}
		sus, argv, err := suspendPlan{args: args, now: lk.nowMs, ver: "-"}.write(*lk.keys.Current)
		if err != nil {
			t.Fatal(err)
		}
		twice("suspend_write", p, argv...)

		// deliver: one signal for one signal_id.
		w := sus.Waitpoints[0]
		sid := driver.NewID()
		da := contracts.DeliverSignalArgs{ExecutionID: sus.ExecutionID, WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"}
		dargv := append(deliverArgv(lk.keys.Current.Kid, sid, da), tokenDigest(w.Token))
		first, _ := twice("deliver", p, dargv...)
		if str(first, 0) != contracts.OutcomeAccepted {
			t.Fatalf("deliver: %v", first)
		}
		obs, err := b.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: sus.ExecutionID})
		if err != nil || len(obs.Signals) != 1 {
			t.Fatalf("observe after a re-sent delivery: %d signals (%v), want 1", len(obs.Signals), err)
		}

		// claim: a re-sent claim answers the execution it claimed; another
		// resumed execution stays claimable.
		other := suspend(t, e, "resend-2", "a")
		deliver(t, e, other, 0, contracts.DeliverSignalArgs{})
		lease := driver.NewID()
		pc := driver.PartitionOf("resend-1", b.parts)
		claimed, _ := twice("claim", pc, lease, "60000")
		if str(claimed, 1) != "resend-1" {
			t.Fatalf("claim: %v", claimed)
		}
		c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
		if err != nil || c.ExecutionID != "resend-2" {
			t.Fatalf("the other execution: %+v, %v; want resend-2 still claimable", c, err)
		}

		// complete: a re-sent completion answers completed, not not_found.
		twice("complete", pc, "resend-1", lease, driver.NewID())

		// rotate: a re-sent partition call answers rotated again, not noop.
		op := driver.NewID()
		r1, _ := twice("rotate", 0, "kid-b", secret(2).Hex(), "1000", op)
		if str(r1, 0) != contracts.RotateRotated || str(r1, 1) != "kid-a" {
			t.Fatalf("rotate: %v", r1)
		}
	})
}

// A re-sent seed install answers installed again.
func TestSeedInstallAnswersAReSentCall(t *testing.T) {
	b, _ := openFresh(t, servers[0], 4)
	op := driver.NewID()
	for i := range 2 {
		v, err := b.run(bg, scriptSeedInstall, 0, "kid-a", secret(1).Hex(), op)
		if err != nil || str(v, 0) != "installed" {
			t.Fatalf("install %d: %v, %v", i, v, err)
		}
	}
}

func scriptByName(t *testing.T, name string) *redis.Script {
	t.Helper()
	s, ok := map[string]*redis.Script{
		"suspend_write": scriptSuspendWrite, "deliver": scriptDeliver, "claim": scriptClaim,
		"complete": scriptComplete, "rotate": scriptRotate,
	}[name]
	if !ok {
		t.Fatalf("no script %s", name)
	}
	return s
}
