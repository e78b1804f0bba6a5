package contracts

import "testing"

func TestFingerprintDistinguishesArguments(t *testing.T) {
	ten, eleven := int64(10), int64(11)
	lease := "0b8f6c1e-2f4a-4c3b-9d7e-5a6b7c8d9e0f"
	base := SuspendArgs{ExecutionID: "e", Waitpoints: []WaitpointSpec{{Key: "a"}, {Key: "b"}}, Condition: "any", IdempotencyKey: "i"}
	variants := []SuspendArgs{
		{ExecutionID: "e", Waitpoints: []WaitpointSpec{{Key: "a"}}, Condition: "any", IdempotencyKey: "i"},
		{ExecutionID: "e", Waitpoints: []WaitpointSpec{{Key: "ab"}}, Condition: "any", IdempotencyKey: "i"},
		{ExecutionID: "e", Waitpoints: []WaitpointSpec{{Key: "a"}, {Key: "b"}}, Condition: "all", IdempotencyKey: "i"},
		{ExecutionID: "e", Waitpoints: []WaitpointSpec{{Key: "a"}, {Key: "b"}}, Condition: "any", IdempotencyKey: "i", TimeoutMs: &ten},
		{ExecutionID: "e", Waitpoints: []WaitpointSpec{{Key: "a"}, {Key: "b"}}, Condition: "any", IdempotencyKey: "i", LeaseID: &lease},
	}
	seen := map[string]int{base.Fingerprint(): -1}
	for i, v := range variants {
		if j, dup := seen[v.Fingerprint()]; dup {
			t.Fatalf("variants %d and %d share a fingerprint", i, j)
		}
		seen[v.Fingerprint()] = i
	}
	withTen := base
	withTen.TimeoutMs = &ten
	other := base
	other.TimeoutMs = &eleven
	copyTen := int64(10)
	same := base
	same.TimeoutMs = &copyTen
	if withTen.Fingerprint() == other.Fingerprint() || withTen.Fingerprint() != same.Fingerprint() {
		t.Fatal("fingerprint must depend on timeout values, not pointers")
	}
}
