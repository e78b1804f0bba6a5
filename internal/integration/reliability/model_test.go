package reliability

import (
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
			op(0, 1, SignalsInput{Op: SgSuspend, Exec: "e", Keys: 1, Cond: "all"}, SignalsOutput{SuspensionID: "s", Waitpoints: []string{"w"}}),
			op(2, 5, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: "w", IdemKey: "a"}, SignalsOutput{Outcome: "accepted", SignalID: "x", Resumed: true}),
			op(3, 4, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: "w", IdemKey: "a"}, SignalsOutput{Outcome: "accepted", SignalID: "y", Resumed: true}),
		}},
		{"AcceptedSignalLostFromClaim", sg, false, []porcupine.Operation{
			op(0, 1, SignalsInput{Op: SgSuspend, Exec: "e", Keys: 1, Cond: "any"}, SignalsOutput{SuspensionID: "s", Waitpoints: []string{"w"}}),
			op(2, 3, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: "w"}, SignalsOutput{Outcome: "accepted", SignalID: "x", Resumed: true}),
			op(4, 5, SignalsInput{Op: SgClaim, Exec: "e"}, SignalsOutput{SuspensionID: "s", Reason: "signal", Lease: "l"}),
		}},
		{"ClaimedTwice", sg, false, []porcupine.Operation{
			op(0, 1, SignalsInput{Op: SgSuspend, Exec: "e", Keys: 1, Cond: "any"}, SignalsOutput{SuspensionID: "s", Waitpoints: []string{"w"}}),
			op(2, 3, SignalsInput{Op: SgDeliver, Exec: "e", Waitpoint: "w"}, SignalsOutput{Outcome: "accepted", SignalID: "x", Resumed: true}),
			op(4, 7, SignalsInput{Op: SgClaim, Exec: "e"}, SignalsOutput{SuspensionID: "s", Reason: "signal", Lease: "l1", Signals: []string{"x"}}),
			op(5, 6, SignalsInput{Op: SgClaim, Exec: "e"}, SignalsOutput{SuspensionID: "s", Reason: "signal", Lease: "l2", Signals: []string{"x"}}),
		}},
		{"FullCycle", sg, true, []porcupine.Operation{
			op(0, 1, SignalsInput{Op: SgSuspend, Exec: "e", Keys: 2, Cond: "all"}, SignalsOutput{SuspensionID: "s", Waitpoints: []string{"w1", "w2"}}),
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
