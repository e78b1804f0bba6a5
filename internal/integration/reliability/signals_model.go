package reliability

import (
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// SignalsOp names a suspension operation of docs/spec.md §5 as the model
// sees it: one execution's share of a call.
type SignalsOp string

// The suspension operations the model knows.
const (
	SgSuspend  SignalsOp = "suspend"
	SgDeliver  SignalsOp = "deliver"
	SgObserve  SignalsOp = "observe"
	SgClaim    SignalsOp = "claim"    // a claim that answered this execution
	SgComplete SignalsOp = "complete" //
	SgListed   SignalsOp = "listed"   // one execution's share of list_suspended
)

// SignalsInput is one execution's share of a call. The histories use no
// timeouts and hour-long leases, so nothing in them depends on the clock.
type SignalsInput struct {
	Op        SignalsOp
	Exec      string
	Keys      int    // suspend: how many waitpoints
	Cond      string // suspend: any | all
	Lease     string // suspend, complete: the lease presented ("" none)
	Waitpoint string // deliver
	IdemKey   string // deliver
}

// SignalsOutput is what the call answered for that execution.
type SignalsOutput struct {
	Err          string   // "code" or "code/reason" of a contract error; "" on success
	SuspensionID string   // suspend, observe, claim, listed
	Waitpoints   []string // suspend: the waitpoint ids, in key order
	Outcome      string   // deliver: accepted|duplicate
	SignalID     string   // deliver
	Resumed      bool     // deliver accepted
	Signals      []string // observe, claim: signal ids in delivery order
	Lease        string   // claim
	Reason       string   // claim
	Listed       bool     // listed: the execution was on the list
	Count        int      // listed: its waitpoint count
}

// execState is one execution as the contract defines it. Values are
// immutable; key is their canonical form.
type execState struct {
	phase      string // "" (none), suspended, resumed, claimed
	lease      string
	cond       string
	suspension string
	current    []string          // waitpoint ids of the latest suspension
	open       map[string]bool   // every remembered waitpoint -> open
	hit        map[string]bool   // waitpoints of the latest suspension holding a signal
	signals    []string          // signals of the latest suspension, in order
	idem       map[string]string // waitpoint \x00 idempotency key -> signal id
	key        string
}

func (s *execState) seal() *execState {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%s|%v|%v|", s.phase, s.lease, s.cond, s.suspension, s.current, s.signals)
	for _, m := range []map[string]bool{s.open, s.hit} {
		ks := make([]string, 0, len(m))
		for k, v := range m {
			ks = append(ks, fmt.Sprintf("%s=%v", k, v))
		}
		sort.Strings(ks)
		b.WriteString(strings.Join(ks, ","))
		b.WriteByte('|')
	}
	ks := make([]string, 0, len(s.idem))
	for k, v := range s.idem {
		ks = append(ks, k+"="+v)
	}
	sort.Strings(ks)
	b.WriteString(strings.Join(ks, ","))
	s.key = b.String()
	return s
}

func (s *execState) clone() *execState {
	c := *s
	c.current = append([]string(nil), s.current...)
	c.signals = append([]string(nil), s.signals...)
	c.open, c.hit, c.idem = maps.Clone(s.open), maps.Clone(s.hit), maps.Clone(s.idem)
	return &c
}

// SignalsModel returns the porcupine model of one execution, partitioned by
// Exec. Claims that answered "none" carry no execution and are left out by
// the caller (they constrain every execution at once).
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
		if s.phase == "" {
			return out.Err == "execution_not_found", s
		}
		return out.Err == "" && out.SuspensionID == s.suspension && equalStrings(out.Signals, s.signals), s
	case SgClaim:
		if s.phase != "resumed" || out.Err != "" || out.SuspensionID != s.suspension ||
			out.Reason != "signal" || !equalStrings(out.Signals, s.signals) || out.Lease == "" {
			return false, s
		}
		n := s.clone()
		n.phase, n.lease = "claimed", out.Lease
		return true, n.seal()
	case SgComplete:
		switch {
		case s.phase == "":
			return out.Err == "execution_not_found", s
		case s.phase != "claimed" || s.lease != in.Lease:
			return out.Err == "lease_mismatch", s
		}
		return out.Err == "", (&execState{}).seal()
	case SgListed:
		if s.phase != "suspended" {
			return !out.Listed, s
		}
		return out.Listed && out.SuspensionID == s.suspension && out.Count == len(s.current), s
	}
	return false, s
}

// sgSuspend follows docs/spec.md §5.1 (without idempotency keys).
func sgSuspend(s *execState, in SignalsInput, out SignalsOutput) (bool, any) {
	switch {
	case s.phase == "suspended" || s.phase == "resumed":
		return out.Err == "already_suspended", s
	case s.phase == "claimed" && in.Lease != s.lease, s.phase == "" && in.Lease != "":
		return out.Err == "lease_mismatch", s
	}
	if out.Err != "" || out.SuspensionID == "" || len(out.Waitpoints) != in.Keys {
		return false, s
	}
	n := s.clone()
	if n.open == nil {
		n.open, n.idem = map[string]bool{}, map[string]string{}
	}
	for w := range n.open {
		n.open[w] = false
	}
	for _, w := range out.Waitpoints {
		n.open[w] = true
	}
	n.phase, n.lease, n.cond, n.suspension = "suspended", "", in.Cond, out.SuspensionID
	n.current, n.signals, n.hit = append([]string(nil), out.Waitpoints...), nil, map[string]bool{}
	return true, n.seal()
}

// sgDeliver follows docs/spec.md §5 deliver_signal, steps 2 to 5.
func sgDeliver(s *execState, in SignalsInput, out SignalsOutput) (bool, any) {
	open, known := s.open[in.Waitpoint]
	if !known {
		return out.Err == "invalid_token/signature_mismatch", s
	}
	if in.IdemKey != "" {
		if id, dup := s.idem[in.Waitpoint+"\x00"+in.IdemKey]; dup {
			return out.Err == "" && out.Outcome == "duplicate" && out.SignalID == id, s
		}
	}
	if !open {
		return out.Err == "waitpoint_closed", s
	}
	if out.Err != "" || out.Outcome != "accepted" || out.SignalID == "" {
		return false, s
	}
	n := s.clone()
	n.signals = append(n.signals, out.SignalID)
	n.hit[in.Waitpoint] = true
	if in.IdemKey != "" {
		n.idem[in.Waitpoint+"\x00"+in.IdemKey] = out.SignalID
	}
	resume := n.cond == "any" || len(n.hit) == len(n.current)
	if resume != out.Resumed {
		return false, s
	}
	if resume {
		n.phase = "resumed"
		for _, w := range n.current {
			n.open[w] = false
		}
	}
	return true, n.seal()
}
