package contracts

// MaxDescribedWaitpoints bounds ExecutionInfo.Waitpoints: the waitpoints of
// one suspension and the live pending ones (docs/spec.md §8.9).
const MaxDescribedWaitpoints = MaxWaitpoints + MaxPendingWaitpoints

// StateNone is describe_execution's state of a remembered execution that
// is neither suspended, resumed nor claimed (docs/spec.md §8.9).
const StateNone = "none"

// DescribeExecutionArgs are the arguments of describe_execution
// (docs/spec.md §8.9).
type DescribeExecutionArgs struct {
	ExecutionID string
}

// Validate checks the arguments.
func (a DescribeExecutionArgs) Validate() error {
	return ValidateIdentifier("execution_id", a.ExecutionID)
}

// ExecutionInfo is the describe_execution envelope: an operator's view of
// one execution. It never holds a token or a lease id.
type ExecutionInfo struct {
	ExecutionID string `json:"execution_id"`
	State       string `json:"state"` // StateSuspended, StateResumed, StateClaimed or StateNone
	// Claimable: a claim at the same instant could take it.
	Claimable bool `json:"claimable"`
	// Reason is the claim reason it holds (claimed) or would be claimed
	// with (resumed, or suspended past its timeout); nil otherwise.
	Reason           *string         `json:"reason"`
	SuspensionID     *string         `json:"suspension_id"`
	SuspendedAtMs    *int64          `json:"suspended_at_ms"`
	TimeoutAtMs      *int64          `json:"timeout_at_ms"`
	LeaseExpiresAtMs *int64          `json:"lease_expires_at_ms"`
	Tags             []string        `json:"tags"`
	Waitpoints       []WaitpointInfo `json:"waitpoints"`
}

// MarshalJSON encodes the envelope with [] for no tags and no waitpoints.
func (x ExecutionInfo) MarshalJSON() ([]byte, error) {
	type plain ExecutionInfo
	p := plain(x)
	p.Tags = nonNil(p.Tags)
	p.Waitpoints = nonNil(p.Waitpoints)
	return marshal(p)
}

// CountExecutionsArgs are the arguments of count_executions (docs/spec.md
// §8.9); it takes none today.
type CountExecutionsArgs struct{}

// Validate checks the arguments.
func (CountExecutionsArgs) Validate() error { return nil }

// ExecutionCounts is the count_executions envelope: every remembered
// execution in a state other than none counts in exactly one field.
type ExecutionCounts struct {
	Suspended    int64 `json:"suspended"`     // not past its timeout
	TimedOut     int64 `json:"timed_out"`     // suspended past its timeout: claimable with reason timeout
	Resumed      int64 `json:"resumed"`       // waiting for a worker, cancelled ones included
	Claimed      int64 `json:"claimed"`       // lease not expired
	LeaseExpired int64 `json:"lease_expired"` // claimed, claimable again
}

// Add returns the field-by-field sum of c and o: the counts of two
// partitions together.
func (c ExecutionCounts) Add(o ExecutionCounts) ExecutionCounts {
	return ExecutionCounts{
		Suspended: c.Suspended + o.Suspended, TimedOut: c.TimedOut + o.TimedOut, Resumed: c.Resumed + o.Resumed,
		Claimed: c.Claimed + o.Claimed, LeaseExpired: c.LeaseExpired + o.LeaseExpired,
	}
}
