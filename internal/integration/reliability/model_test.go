package reliability

import (
	"fmt"
	"slices"
	"testing"

	"github.com/anishathalye/porcupine"
)

// op builds a porcupine operation [call, ret].
func op(call, ret int64, in, out any) porcupine.Operation {
	return porcupine.Operation{Input: in, Call: call, Output: out, Return: ret}
}

// The models reject the violations the histories look for, so a passing
// history means something.
func TestModelsRejectViolations(t *testing.T) {
	ks := KeystoreModel("k0")
	sg := SignalsModel()
	cases := []struct {
		name  string
		model porcupine.Model
		ok    bool
		ops   []porcupine.Operation
	}{
		{"SignAfterRotationSeesNewKid", ks, true, []porcupine.Operation{
			op(0, 1, KeystoreInput{Op: KsRotate, Kid: "k1"}, KeystoreOutput{Outcome: "rotated", Kid: "k0"}),
			op(2, 3, KeystoreInput{Op: KsSign}, KeystoreOutput{Kid: "k1", SignedWith: 0}),
		}},
		{"StaleSignAfterRotation", ks, false, []porcupine.Operation{
			op(0, 1, KeystoreInput{Op: KsRotate, Kid: "k1"}, KeystoreOutput{Outcome: "rotated", Kid: "k0"}),
			op(2, 3, KeystoreInput{Op: KsSign}, KeystoreOutput{Kid: "k0", SignedWith: 0}),
		}},
		{"ConcurrentSignMaySeeEither", ks, true, []porcupine.Operation{
			op(0, 3, KeystoreInput{Op: KsRotate, Kid: "k1"}, KeystoreOutput{Outcome: "rotated", Kid: "k0"}),
			op(1, 2, KeystoreInput{Op: KsSign}, KeystoreOutput{Kid: "k0", SignedWith: 0}),
		}},
		{"TwoRotationsShareAPreviousKid", ks, false, []porcupine.Operation{
			op(0, 3, KeystoreInput{Op: KsRotate, Kid: "k1"}, KeystoreOutput{Outcome: "rotated", Kid: "k0"}),
			op(1, 2, KeystoreInput{Op: KsRotate, Kid: "k2"}, KeystoreOutput{Outcome: "rotated", Kid: "k0"}),
		}},
		{"VerifyLosesARotatedKid", ks, false, []porcupine.Operation{
			op(0, 1, KeystoreInput{Op: KsRotate, Kid: "k1"}, KeystoreOutput{Outcome: "rotated", Kid: "k0"}),
			op(2, 3, KeystoreInput{Op: KsVerify, Kid: "k0"}, KeystoreOutput{Err: "invalid_token/unknown_kid"}),
		}},
		{"DuplicateDeliveryAcceptedTwice", sg, false, []porcupine.Operation{
			op(0, 1, SignalsInput{Op: SgSuspend, Exec: "e", Keys: 1, Cond: "all"}, SignalsOutput{Outcome: "suspended", SuspensionID: "s", Waitpoints: []string{"w"}}),
			op(2, 5, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: "w", IdemKey: "a"}, SignalsOutput{Outcome: "accepted", SignalID: "x", Resumed: true}),
			op(3, 4, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: "w", IdemKey: "a"}, SignalsOutput{Outcome: "accepted", SignalID: "y", Resumed: true}),
		}},
		{"AcceptedSignalLostFromClaim", sg, false, []porcupine.Operation{
			op(0, 1, SignalsInput{Op: SgSuspend, Exec: "e", Keys: 1, Cond: "any"}, SignalsOutput{Outcome: "suspended", SuspensionID: "s", Waitpoints: []string{"w"}}),
			op(2, 3, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: "w"}, SignalsOutput{Outcome: "accepted", SignalID: "x", Resumed: true}),
			op(4, 5, SignalsInput{Op: SgClaim, Exec: "e"}, SignalsOutput{SuspensionID: "s", Reason: "signal", Lease: "l"}),
		}},
		{"ClaimedTwice", sg, false, []porcupine.Operation{
			op(0, 1, SignalsInput{Op: SgSuspend, Exec: "e", Keys: 1, Cond: "any"}, SignalsOutput{Outcome: "suspended", SuspensionID: "s", Waitpoints: []string{"w"}}),
			op(2, 3, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: "w"}, SignalsOutput{Outcome: "accepted", SignalID: "x", Resumed: true}),
			op(4, 7, SignalsInput{Op: SgClaim, Exec: "e"}, SignalsOutput{SuspensionID: "s", Reason: "signal", Lease: "l1", Signals: []string{"x"}}),
			op(5, 6, SignalsInput{Op: SgClaim, Exec: "e"}, SignalsOutput{SuspensionID: "s", Reason: "signal", Lease: "l2", Signals: []string{"x"}}),
		}},
		{"FullCycle", sg, true, []porcupine.Operation{
			op(0, 1, SignalsInput{Op: SgSuspend, Exec: "e", Keys: 2, Cond: "all"}, SignalsOutput{Outcome: "suspended", SuspensionID: "s", Waitpoints: []string{"w1", "w2"}}),
			op(2, 3, SignalsInput{Op: SgListed, Exec: "e"}, SignalsOutput{Listed: true, SuspensionID: "s", Count: 2}),
			op(4, 5, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: "w1"}, SignalsOutput{Outcome: "accepted", SignalID: "x", Resumed: false}),
			op(6, 7, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: "w2", IdemKey: "a"}, SignalsOutput{Outcome: "accepted", SignalID: "y", Resumed: true}),
			op(8, 9, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: "w2", IdemKey: "a"}, SignalsOutput{Outcome: "duplicate", SignalID: "y"}),
			op(8, 9, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: "w1"}, SignalsOutput{Err: "waitpoint_closed"}),
			op(10, 11, SignalsInput{Op: SgClaim, Exec: "e"}, SignalsOutput{SuspensionID: "s", Reason: "signal", Lease: "l", Signals: []string{"x", "y"}}),
			op(12, 13, SignalsInput{Op: SgComplete, Exec: "e", Lease: "l"}, SignalsOutput{}),
			op(14, 15, SignalsInput{Op: SgObserve, Exec: "e"}, SignalsOutput{Err: "execution_not_found"}),
			op(14, 15, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: "w1"}, SignalsOutput{Err: "invalid_token/signature_mismatch"}),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(c.model, c.ops); got != c.ok {
				t.Fatalf("linearizable = %v, want %v", got, c.ok)
			}
		})
	}
}

// Shorthands for the lifecycle cases: one execution "e".
func lcCreate(call, ret int64, wp, key string) porcupine.Operation {
	return op(call, ret, SignalsInput{Op: SgCreate, Exec: "e", Key: key}, SignalsOutput{Outcome: "created", WaitpointID: wp})
}

func lcDeliver(call, ret int64, wp, sig string, resumed bool) porcupine.Operation {
	return op(call, ret, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: wp}, SignalsOutput{Outcome: "accepted", SignalID: sig, Resumed: resumed})
}

func lcDeliverErr(call, ret int64, wp, err string) porcupine.Operation {
	return op(call, ret, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: wp}, SignalsOutput{Err: err})
}

// lcSuspended: a suspend on the pending waitpoints then keys new ones that
// answered suspended with waitpoints wps (the pending ones first).
func lcSuspended(call, ret int64, pending []string, keys int, cond string, wps ...string) porcupine.Operation {
	return op(call, ret, SignalsInput{Op: SgSuspend, Exec: "e", Pending: pending, Keys: keys, Cond: cond},
		SignalsOutput{Outcome: "suspended", SuspensionID: "s-" + fmt.Sprint(call), Waitpoints: wps})
}

func lcSatisfied(call, ret int64, pending []string, keys int, cond string, sigs ...string) porcupine.Operation {
	return op(call, ret, SignalsInput{Op: SgSuspend, Exec: "e", Pending: pending, Keys: keys, Cond: cond},
		SignalsOutput{Outcome: "already_satisfied", SuspensionID: "s-" + fmt.Sprint(call), Signals: sigs})
}

func lcSuspendErr(call, ret int64, pending []string, keys int, cond, err string) porcupine.Operation {
	return op(call, ret, SignalsInput{Op: SgSuspend, Exec: "e", Pending: pending, Keys: keys, Cond: cond}, SignalsOutput{Err: err})
}

func lcObserve(call, ret int64, suspension string, sigs ...string) porcupine.Operation {
	return op(call, ret, SignalsInput{Op: SgObserve, Exec: "e"}, SignalsOutput{SuspensionID: suspension, Signals: sigs})
}

func lcClaim(call, ret int64, suspension, reason, lease string, sigs ...string) porcupine.Operation {
	return op(call, ret, SignalsInput{Op: SgClaim, Exec: "e"}, SignalsOutput{SuspensionID: suspension, Reason: reason, Lease: lease, Signals: sigs})
}

func lcCancel(call, ret int64, suspension, err string) porcupine.Operation {
	out := SignalsOutput{Err: err}
	if err == "" {
		out = SignalsOutput{Outcome: "cancelled", SuspensionID: suspension}
	}
	return op(call, ret, SignalsInput{Op: SgCancel, Exec: "e"}, out)
}

// lcLease is extend_lease, release or complete with lease, answering err
// ("" for success).
func lcLease(call, ret int64, o SignalsOp, lease, err string) porcupine.Operation {
	out := SignalsOutput{Err: err}
	if err == "" {
		out.Outcome = map[SignalsOp]string{SgExtend: "extended", SgRelease: "released", SgComplete: ""}[o]
	}
	return op(call, ret, SignalsInput{Op: o, Exec: "e", Lease: lease}, out)
}

// The model of version 2 of the waitpoint lifecycle accepts what the memory
// reference does and rejects what a wrong implementation would answer: a
// lost or misplaced buffered signal, a pending waitpoint used twice, two
// resumes of one quorum, cancel and resume both winning, an extend or a
// second claim while another lease holds, a cancel claimed as a signal.
func TestSignalsModelLifecycle(t *testing.T) {
	p, all, anyc, two := []string{"p"}, "all", "any", "count:2"
	cases := []struct {
		name string
		ok   bool
		ops  []porcupine.Operation
	}{
		{"BufferedSignalJoinsTheSuspension", true, []porcupine.Operation{
			lcCreate(0, 1, "p", "k"),
			lcDeliver(2, 3, "p", "x", false),
			lcSuspended(4, 5, p, 1, all, "p", "n"),
			lcObserve(6, 7, "s-4", "x"),
			lcDeliver(8, 9, "n", "y", true),
			lcClaim(10, 11, "s-4", "signal", "l", "x", "y"),
			lcLease(12, 13, SgComplete, "l", ""),
		}},
		{"BufferedSignalLost", false, []porcupine.Operation{
			lcCreate(0, 1, "p", "k"),
			lcDeliver(2, 3, "p", "x", false),
			lcSuspended(4, 5, p, 1, all, "p", "n"),
			lcObserve(6, 7, "s-4"),
		}},
		{"BufferedSignalIgnoredByTheCondition", false, []porcupine.Operation{
			lcCreate(0, 1, "p", "k"),
			lcDeliver(2, 3, "p", "x", false),
			lcSuspended(4, 5, p, 0, anyc, "p"),
		}},
		{"PendingDeliveryResumes", false, []porcupine.Operation{
			lcCreate(0, 1, "p", "k"),
			lcDeliver(2, 3, "p", "x", true),
		}},
		{"AlreadySatisfiedKeepsStateNone", true, []porcupine.Operation{
			lcCreate(0, 1, "p", "k"),
			lcDeliver(2, 3, "p", "x", false),
			lcSatisfied(4, 5, p, 1, "count:1", "x"),
			lcObserve(6, 7, "s-4", "x"),
			lcLease(8, 9, SgComplete, "l", "lease_mismatch"),
			lcCancel(8, 9, "", "not_suspended"),
			lcDeliverErr(8, 9, "p", "waitpoint_closed"),
			lcSuspendErr(10, 11, p, 1, all, "pending_waitpoint_unavailable"),
		}},
		{"PendingUsedTwice", false, []porcupine.Operation{
			lcCreate(0, 1, "p", "k"),
			lcDeliver(2, 3, "p", "x", false),
			lcSatisfied(4, 5, p, 0, anyc, "x"),
			lcSuspended(6, 7, p, 1, all, "p", "n"),
		}},
		{"SuspendRacesTheDeliveryToItsPending", true, []porcupine.Operation{
			lcCreate(0, 1, "p", "k"),
			lcSuspended(2, 5, p, 1, all, "p", "n"),
			lcDeliver(3, 4, "p", "x", false),
			lcObserve(6, 7, "s-2", "x"),
		}},
		{"SuspendRacesTheDeliveryToItsPendingAndLosesIt", false, []porcupine.Operation{
			lcCreate(0, 1, "p", "k"),
			lcSuspended(2, 5, p, 1, all, "p", "n"),
			lcDeliver(3, 4, "p", "x", false),
			lcObserve(6, 7, "s-2"),
		}},
		{"UnusedPendingKeepsItsSignal", true, []porcupine.Operation{
			lcCreate(0, 1, "p1", "k1"),
			lcCreate(0, 1, "p2", "k2"),
			lcDeliver(2, 3, "p2", "x", false),
			lcSuspended(4, 5, []string{"p1"}, 0, all, "p1"),
			lcDeliver(6, 7, "p1", "y", true),
			lcClaim(8, 9, "s-4", "signal", "l", "y"),
			op(10, 11, SignalsInput{Op: SgSuspend, Exec: "e", Pending: []string{"p2"}, Cond: anyc, Lease: "l"},
				SignalsOutput{Outcome: "already_satisfied", SuspensionID: "s-10", Signals: []string{"x"}}),
			lcLease(12, 13, SgExtend, "l", ""), // already_satisfied keeps the lease
			lcObserve(14, 15, "s-10", "x"),
			lcLease(16, 17, SgComplete, "l", ""),
			lcDeliverErr(18, 19, "p2", "invalid_token/signature_mismatch"),
		}},
		{"SignalOfAnUnusedPendingInTheClaim", false, []porcupine.Operation{
			lcCreate(0, 1, "p1", "k1"),
			lcCreate(0, 1, "p2", "k2"),
			lcDeliver(2, 3, "p2", "x", false),
			lcSuspended(4, 5, []string{"p1"}, 0, all, "p1"),
			lcDeliver(6, 7, "p1", "y", true),
			lcClaim(8, 9, "s-4", "signal", "l", "x", "y"),
		}},
		{"PendingKeyCollides", true, []porcupine.Operation{
			lcCreate(0, 1, "p", "w0"),
			lcSuspendErr(2, 3, p, 1, all, "invalid_input"),
		}},
		{"CreateWhileSuspended", false, []porcupine.Operation{
			lcSuspended(0, 1, nil, 1, anyc, "w"),
			lcCreate(2, 3, "p", "k"),
		}},
		{"CountTwoOfThree", true, []porcupine.Operation{
			lcSuspended(0, 1, nil, 3, two, "a", "b", "c"),
			lcDeliver(2, 5, "a", "x", false),
			lcDeliver(2, 5, "b", "y", true),
			lcDeliverErr(2, 5, "c", "waitpoint_closed"),
			lcClaim(6, 7, "s-0", "signal", "l", "x", "y"),
		}},
		{"CountTwoOfThreeResumedTwice", false, []porcupine.Operation{
			lcSuspended(0, 1, nil, 3, two, "a", "b", "c"),
			lcDeliver(2, 5, "a", "x", false),
			lcDeliver(2, 5, "b", "y", true),
			lcDeliver(2, 5, "c", "z", true),
		}},
		{"CountTwoOfThreeResumedByOne", false, []porcupine.Operation{
			lcSuspended(0, 1, nil, 3, two, "a", "b", "c"),
			lcDeliver(2, 3, "a", "x", true),
		}},
		{"CancelBeatsTheDelivery", true, []porcupine.Operation{
			lcSuspended(0, 1, nil, 1, anyc, "w"),
			lcDeliverErr(2, 5, "w", "waitpoint_closed"),
			lcCancel(3, 4, "s-0", ""),
			lcClaim(6, 7, "s-0", "cancelled", "l"),
		}},
		{"CancelAndResumeBothWin", false, []porcupine.Operation{
			lcSuspended(0, 1, nil, 1, anyc, "w"),
			lcDeliver(2, 5, "w", "x", true),
			lcCancel(3, 4, "s-0", ""),
		}},
		{"CancelledClaimedAsASignal", false, []porcupine.Operation{
			lcSuspended(0, 1, nil, 2, all, "a", "b"),
			lcDeliver(2, 3, "a", "x", false),
			lcCancel(4, 5, "s-0", ""),
			lcClaim(6, 7, "s-0", "signal", "l", "x"),
		}},
		{"ReleaseKeepsTheReason", true, []porcupine.Operation{
			lcSuspended(0, 1, nil, 2, all, "a", "b"),
			lcDeliver(2, 3, "a", "x", false),
			lcCancel(4, 5, "s-0", ""),
			lcClaim(6, 7, "s-0", "cancelled", "l1", "x"),
			lcLease(8, 9, SgExtend, "l1", ""),
			lcLease(10, 11, SgRelease, "l1", ""),
			lcLease(12, 13, SgExtend, "l1", "lease_mismatch"),
			lcClaim(14, 15, "s-0", "cancelled", "l2", "x"),
			lcLease(16, 17, SgComplete, "l2", ""),
			lcCancel(18, 19, "", "execution_not_found"),
		}},
		{"ExtendAfterAReclaim", false, []porcupine.Operation{
			lcSuspended(0, 1, nil, 1, anyc, "w"),
			lcDeliver(2, 3, "w", "x", true),
			lcClaim(4, 5, "s-0", "signal", "l1", "x"),
			lcLease(6, 7, SgRelease, "l1", ""),
			lcClaim(8, 9, "s-0", "signal", "l2", "x"),
			lcLease(10, 11, SgExtend, "l1", ""),
		}},
		{"ClaimExtendReleaseRace", true, []porcupine.Operation{
			lcSuspended(0, 1, nil, 1, anyc, "w"),
			lcDeliver(2, 3, "w", "x", true),
			lcClaim(4, 5, "s-0", "signal", "l1", "x"),
			lcLease(6, 9, SgExtend, "l1", ""),
			lcLease(6, 9, SgRelease, "l1", ""),
			lcClaim(6, 9, "s-0", "signal", "l2", "x"),
		}},
		{"ClaimedWhileTheLeaseHolds", false, []porcupine.Operation{
			lcSuspended(0, 1, nil, 1, anyc, "w"),
			lcDeliver(2, 3, "w", "x", true),
			lcClaim(4, 5, "s-0", "signal", "l1", "x"),
			lcLease(6, 7, SgExtend, "l1", ""),
			lcClaim(8, 9, "s-0", "signal", "l2", "x"),
		}},
	}
	limit := []porcupine.Operation{}
	for i := range 16 {
		limit = append(limit, lcCreate(int64(2*i), int64(2*i+1), fmt.Sprintf("p%d", i), "k"))
	}
	full := op(40, 41, SignalsInput{Op: SgCreate, Exec: "e", Key: "k"}, SignalsOutput{Err: "waitpoint_limit_exceeded"})
	cases = append(cases,
		struct {
			name string
			ok   bool
			ops  []porcupine.Operation
		}{"SixteenPendingWaitpoints", true, append(slices.Clone(limit), full)},
		struct {
			name string
			ok   bool
			ops  []porcupine.Operation
		}{"SeventeenPendingWaitpoints", false, append(slices.Clone(limit), lcCreate(40, 41, "p16", "k"))})
	m := SignalsModel()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(m, c.ops); got != c.ok {
				t.Fatalf("linearizable = %v, want %v", got, c.ok)
			}
		})
	}
}
