package reliability

import (
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// SignalsOp names a suspension operation of docs/spec.md §5 and §8 as the
// model sees it: one execution's share of a call.
type SignalsOp string

// The suspension operations the model knows.
const (
	SgSuspend  SignalsOp = "suspend"
	SgDeliver  SignalsOp = "deliver"
	SgObserve  SignalsOp = "observe"
	SgClaim    SignalsOp = "claim"    // a claim that answered this execution
	SgComplete SignalsOp = "complete" //
	SgListed   SignalsOp = "listed"   // one execution's share of list_suspended
	// Version 2 of the waitpoint lifecycle (docs/spec.md §8.1, §8.4, §8.5).
	SgCreate  SignalsOp = "create_waitpoint"
	SgExtend  SignalsOp = "extend_lease"
	SgRelease SignalsOp = "release"
	SgCancel  SignalsOp = "cancel"
)

// SignalsInput is one execution's share of a call. The histories use no
// timeouts, hour-long leases and hour-long pending expiries, so nothing in
// them depends on the clock.
type SignalsInput struct {
	Op        SignalsOp
	Exec      string
	Keys      int      // suspend: how many new waitpoints (keys w0, w1, ...), after the pending ones
	Pending   []string // suspend: pending waitpoint ids used, first in the suspension's order
	Cond      string   // suspend: any | all | contracts.CountCondition(n)
	Lease     string   // suspend, create, complete, extend, release: the lease presented ("" none)
	Waitpoint string   // deliver
	IdemKey   string   // deliver
	Key       string   // create: the pending waitpoint's key
}

// SignalsOutput is what the call answered for that execution.
type SignalsOutput struct {
	Err          string   // "code" or "code/reason" of a contract error; "" on success
	Outcome      string   // suspend: suspended|already_satisfied; deliver: accepted|duplicate; create, cancel, extend, release: their outcome word
	SuspensionID string   // suspend, observe, claim, listed, cancel
	Waitpoints   []string // suspend (suspended): the waitpoint ids, in the order given
	WaitpointID  string   // create
	SignalID     string   // deliver
	Resumed      bool     // deliver accepted
	Signals      []string // observe, claim, suspend (already_satisfied): signal ids in delivery order
	Lease        string   // claim
	Reason       string   // claim
	Listed       bool     // listed: the execution was on the list
	Count        int      // listed: its waitpoint count
}

// Waitpoint statuses as the model tracks them.
const (
	wpPending = 'p' // made by create_waitpoint, used by no suspend yet
	wpOpen    = 'o' // of the latest suspension, which waits
	wpClosed  = 'c' // of a suspension that resumed, was cancelled or claimed, or was satisfied at once
)

// leaseReleased stands for the lease release_execution stores: a fresh id
// nobody knows (driver.ReleasedLease), already expired. No presented lease
// equals it.
const leaseReleased = "(released)"

// execState is one execution as the contract defines it. Values are
// immutable; key is their canonical form.
type execState struct {
	known      bool   // remembered: in a state other than none, or in state none with pending waitpoints or a suspension (§8.1)
	phase      string // "" (none), suspended, resumed, claimed
	lease      string // while claimed: the current lease, or leaseReleased
	reason     string // claim reason while resumed or claimed: signal | cancelled
	cond       string
	suspension string            // the latest suspension ("" before the first)
	size       int               // its waitpoint count
	signals    []string          // its signals, in delivery order
	hit        map[string]bool   // its waitpoints holding a signal
	wps        map[string]byte   // every remembered waitpoint -> wpPending | wpOpen | wpClosed
	pkey       map[string]string // pending waitpoint -> its key
	buffered   []string          // "waitpoint\x00signal" of unused pending waitpoints, in delivery order
	idem       map[string]string // waitpoint \x00 idempotency key -> signal id
	key        string
}

func (s *execState) seal() *execState {
	var b strings.Builder
	fmt.Fprintf(&b, "%v|%s|%s|%s|%s|%s|%d|%v|%q|", s.known, s.phase, s.lease, s.reason, s.cond, s.suspension, s.size, s.signals, s.buffered)
	writeSorted(&b, s.hit, func(v bool) string { return fmt.Sprint(v) })
	writeSorted(&b, s.wps, func(v byte) string { return string(v) })
	writeSorted(&b, s.pkey, func(v string) string { return v })
	writeSorted(&b, s.idem, func(v string) string { return v })
	s.key = b.String()
	return s
}

// writeSorted writes m as sorted k=v pairs and a separator.
func writeSorted[V any](b *strings.Builder, m map[string]V, str func(V) string) {
	ks := make([]string, 0, len(m))
	for k, v := range m {
		ks = append(ks, k+"="+str(v))
	}
	sort.Strings(ks)
	b.WriteString(strings.Join(ks, ","))
	b.WriteByte('|')
}

func (s *execState) clone() *execState {
	c := *s
	c.signals = append([]string(nil), s.signals...)
	c.buffered = append([]string(nil), s.buffered...)
	c.hit, c.wps, c.pkey, c.idem = cloneMap(s.hit), cloneMap(s.wps), cloneMap(s.pkey), cloneMap(s.idem)
	return &c
}

// cloneMap copies m; a nil map gives an empty one, so a clone can be written.
func cloneMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return maps.Clone(m)
}

// SignalsModel returns the porcupine model of one execution, partitioned by
// Exec: the suspension state of docs/spec.md §5 with version 2 of the
// waitpoint lifecycle (§8.1 pending waitpoints and already_satisfied, §8.2
// count conditions, §8.4 extend and release, §8.5 cancel), as the memory
// reference decides them. Claims that answered "none" carry no execution
// and are left out by the caller (they constrain every execution at once).
func SignalsModel() porcupine.Model {
	return porcupine.Model{
		Partition: partitionBy(func(in any) (string, bool) { return in.(SignalsInput).Exec, true }),
		Init:      func() any { return (&execState{}).seal() },
		Step: func(state, input, output any) (bool, any) {
			return sgStep(state.(*execState), input.(SignalsInput), output.(SignalsOutput))
		},
		Equal: func(a, b any) bool { return a.(*execState).key == b.(*execState).key },
		Hash:  func(s any) uint64 { return hashString(s.(*execState).key) },
		DescribeOperation: func(input, output any) string {
			return fmt.Sprintf("%+v -> %+v", input, output)
		},
		DescribeState: func(s any) string { return s.(*execState).key },
	}
}

func sgStep(s *execState, in SignalsInput, out SignalsOutput) (bool, any) {
	switch in.Op {
	case SgSuspend:
		return sgSuspend(s, in, out)
	case SgDeliver:
		return sgDeliver(s, in, out)
	case SgObserve:
		if !s.known || s.suspension == "" { // pending waitpoints alone are no suspension (§8.1)
			return out.Err == contracts.CodeExecutionNotFound, s
		}
		return out.Err == "" && out.SuspensionID == s.suspension && equalStrings(out.Signals, s.signals), s
	case SgClaim:
		return sgClaim(s, out)
	case SgComplete:
		if err := leaseHolder(s, in.Lease); err != "" {
			return out.Err == err, s
		}
		return out.Err == "", (&execState{}).seal()
	case SgListed:
		if s.phase != contracts.StateSuspended {
			return !out.Listed, s
		}
		return out.Listed && out.SuspensionID == s.suspension && out.Count == s.size, s
	case SgCreate:
		return sgCreate(s, in, out)
	case SgExtend:
		if err := leaseHolder(s, in.Lease); err != "" {
			return out.Err == err, s
		}
		return out.Err == "" && out.Outcome == contracts.OutcomeExtended, s
	case SgRelease:
		if err := leaseHolder(s, in.Lease); err != "" {
			return out.Err == err, s
		}
		if out.Err != "" || out.Outcome != contracts.OutcomeReleased {
			return false, s
		}
		n := s.clone()
		n.lease = leaseReleased
		return true, n.seal()
	case SgCancel:
		return sgCancel(s, out)
	}
	return false, s
}

// leaseHolder is the lease rule of complete, extend_lease and
// release_execution (docs/spec.md §5.6, §8.4): the error code it answers,
// or "" when lease holds the execution. A remembered execution in state
// none answers lease_mismatch, not execution_not_found.
func leaseHolder(s *execState, lease string) string {
	switch {
	case !s.known:
		return contracts.CodeExecutionNotFound
	case s.phase != contracts.StateClaimed || s.lease != lease:
		return contracts.CodeLeaseMismatch
	}
	return ""
}

// stateRule is check 3 of suspend (docs/spec.md §5.1), which
// create_waitpoint shares (§8.1): the error code, or "".
func stateRule(s *execState, lease string) string {
	switch {
	case s.phase == contracts.StateSuspended || s.phase == contracts.StateResumed:
		return contracts.CodeAlreadySuspended
	case s.phase == contracts.StateClaimed && lease != s.lease, s.phase == "" && lease != "":
		return contracts.CodeLeaseMismatch
	}
	return ""
}

// sgClaim: claimable are a resumed execution (by a signal or a cancel) and
// a released one (its lease expired at once); the claim keeps the reason
// and returns the latest suspension's signals (docs/spec.md §5.5, §8.4).
func sgClaim(s *execState, out SignalsOutput) (bool, any) {
	claimable := s.phase == contracts.StateResumed || (s.phase == contracts.StateClaimed && s.lease == leaseReleased)
	if !claimable || out.Err != "" || out.SuspensionID != s.suspension || out.Reason != s.reason ||
		!equalStrings(out.Signals, s.signals) || out.Lease == "" || out.Lease == leaseReleased {
		return false, s
	}
	n := s.clone()
	n.phase, n.lease = contracts.StateClaimed, out.Lease
	return true, n.seal()
}

// sgCreate follows create_waitpoint (docs/spec.md §8.1).
func sgCreate(s *execState, in SignalsInput, out SignalsOutput) (bool, any) {
	if err := stateRule(s, in.Lease); err != "" {
		return out.Err == err, s
	}
	live := 0
	for _, st := range s.wps {
		if st == wpPending {
			live++
		}
	}
	if live >= contracts.MaxPendingWaitpoints {
		return out.Err == contracts.CodeWaitpointLimitExceeded, s
	}
	if out.Err != "" || out.Outcome != contracts.OutcomeCreated || out.WaitpointID == "" {
		return false, s
	}
	if _, seen := s.wps[out.WaitpointID]; seen {
		return false, s
	}
	n := s.clone()
	n.known = true
	n.wps[out.WaitpointID], n.pkey[out.WaitpointID] = wpPending, in.Key
	return true, n.seal()
}

// sgCancel follows cancel_suspension (docs/spec.md §8.5).
func sgCancel(s *execState, out SignalsOutput) (bool, any) {
	switch {
	case !s.known:
		return out.Err == contracts.CodeExecutionNotFound, s
	case s.phase != contracts.StateSuspended:
		return out.Err == contracts.CodeNotSuspended, s
	}
	if out.Err != "" || out.Outcome != contracts.OutcomeCancelled || out.SuspensionID != s.suspension {
		return false, s
	}
	n := s.clone()
	n.phase, n.reason = contracts.StateResumed, contracts.ReasonCancelled
	n.closeOpen()
	return true, n.seal()
}

// closeOpen closes the waitpoints of the latest suspension.
func (s *execState) closeOpen() {
	for w, st := range s.wps {
		if st == wpOpen {
			s.wps[w] = wpClosed
		}
	}
}

// sgSuspend follows docs/spec.md §5.1 (without idempotency keys) and §8.1:
// state and lease, then each pending item, then unique keys; the signals
// buffered on the pending waitpoints used join the suspension in delivery
// order, and when they already satisfy the condition the outcome is
// already_satisfied and the execution keeps its state and lease.
func sgSuspend(s *execState, in SignalsInput, out SignalsOutput) (bool, any) {
	if err := stateRule(s, in.Lease); err != "" {
		return out.Err == err, s
	}
	for _, p := range in.Pending {
		if s.wps[p] != wpPending {
			return out.Err == contracts.CodePendingWaitpointUnavailable, s
		}
	}
	if !uniqueKeys(s, in) {
		return out.Err == contracts.CodeInvalidInput, s
	}
	if out.Err != "" || out.SuspensionID == "" {
		return false, s
	}
	n := s.clone()
	used := map[string]bool{}
	for _, p := range in.Pending {
		used[p] = true
	}
	var joined, kept []string
	n.hit = map[string]bool{}
	for _, b := range s.buffered {
		w, sig, _ := strings.Cut(b, "\x00")
		if used[w] {
			joined, n.hit[w] = append(joined, sig), true
		} else {
			kept = append(kept, b)
		}
	}
	size := in.Keys + len(in.Pending)
	n.known, n.buffered, n.signals, n.suspension, n.cond, n.size = true, kept, joined, out.SuspensionID, in.Cond, size
	n.closeOpen()
	if len(n.hit) >= contracts.ConditionCount(in.Cond, size) {
		if out.Outcome != contracts.OutcomeAlreadySatisfied || !equalStrings(out.Signals, joined) {
			return false, s
		}
		for p := range used {
			n.wps[p] = wpClosed
		}
		return true, n.seal() // state, lease and reason unchanged
	}
	if out.Outcome != contracts.OutcomeSuspended || len(out.Waitpoints) != size || !equalStrings(out.Waitpoints[:len(in.Pending)], in.Pending) {
		return false, s
	}
	for _, w := range out.Waitpoints[len(in.Pending):] {
		if _, seen := n.wps[w]; seen {
			return false, s // a new waitpoint has a fresh id
		}
		n.wps[w] = wpOpen
	}
	for p := range used {
		n.wps[p] = wpOpen
	}
	n.phase, n.lease, n.reason = contracts.StateSuspended, "", ""
	return true, n.seal()
}

// uniqueKeys reports whether the suspension's keys are distinct: the new
// keys w0, w1, ... and those of the pending waitpoints used.
func uniqueKeys(s *execState, in SignalsInput) bool {
	seen := map[string]bool{}
	for i := range in.Keys {
		seen[fmt.Sprintf("w%d", i)] = true
	}
	for _, p := range in.Pending {
		k := s.pkey[p]
		if seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}

// sgDeliver follows docs/spec.md §5 deliver_signal, steps 2 to 5, and §8.1
// for a pending waitpoint: accepted, kept for the suspend that uses it,
// never resuming anything.
func sgDeliver(s *execState, in SignalsInput, out SignalsOutput) (bool, any) {
	st, known := s.wps[in.Waitpoint]
	if !known {
		return out.Err == contracts.CodeInvalidToken+"/signature_mismatch", s
	}
	if in.IdemKey != "" {
		if id, dup := s.idem[in.Waitpoint+"\x00"+in.IdemKey]; dup {
			return out.Err == "" && out.Outcome == contracts.OutcomeDuplicate && out.SignalID == id, s
		}
	}
	if st == wpClosed {
		return out.Err == contracts.CodeWaitpointClosed, s
	}
	if out.Err != "" || out.Outcome != contracts.OutcomeAccepted || out.SignalID == "" {
		return false, s
	}
	n := s.clone()
	if in.IdemKey != "" {
		n.idem[in.Waitpoint+"\x00"+in.IdemKey] = out.SignalID
	}
	if st == wpPending {
		if out.Resumed {
			return false, s // a pending waitpoint never resumes anything by itself
		}
		n.buffered = append(n.buffered, in.Waitpoint+"\x00"+out.SignalID)
		return true, n.seal()
	}
	n.signals = append(n.signals, out.SignalID)
	n.hit[in.Waitpoint] = true
	resume := len(n.hit) >= contracts.ConditionCount(n.cond, n.size)
	if resume != out.Resumed {
		return false, s
	}
	if resume {
		n.phase, n.reason = contracts.StateResumed, contracts.ReasonSignal
		n.closeOpen()
	}
	return true, n.seal()
}
