package contracts

// MaxClaimBatch is the most executions one claim_resumed_executions call may
// claim (docs/spec.md §8.8).
const MaxClaimBatch = 100

// ClaimBatchArgs are the arguments of claim_resumed_executions: claim up to
// Max executions for WorkerID, each with a lease of LeaseMs.
type ClaimBatchArgs struct {
	WorkerID string
	LeaseMs  int64 // 1 to 2^53-1; the Engine defaults 0 to DefaultLeaseMs
	Max      int   // 1 to MaxClaimBatch
}

// Validate checks the arguments.
func (a ClaimBatchArgs) Validate() error {
	if err := (ClaimArgs{WorkerID: a.WorkerID, LeaseMs: a.LeaseMs}).Validate(); err != nil {
		return err
	}
	return ValidateRange("max", int64(a.Max), 1, MaxClaimBatch)
}

// Claim returns the arguments of one claim of the batch.
func (a ClaimBatchArgs) Claim() ClaimArgs { return ClaimArgs{WorkerID: a.WorkerID, LeaseMs: a.LeaseMs} }

// ClaimBatchOutcome is the claim_resumed_executions envelope: the claims
// made, oldest first, each with outcome "claimed"; empty when nothing was
// claimable.
type ClaimBatchOutcome struct {
	Claims []ClaimOutcome `json:"claims"`
}

// MarshalJSON encodes no claims as [], never null.
func (o ClaimBatchOutcome) MarshalJSON() ([]byte, error) {
	c := o.Claims
	if c == nil {
		c = []ClaimOutcome{}
	}
	return marshal(struct {
		Claims []ClaimOutcome `json:"claims"`
	}{c})
}
