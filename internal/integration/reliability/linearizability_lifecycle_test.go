package reliability

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// pendingExpiresMs is long enough that no pending waitpoint expires during
// a history.
const pendingExpiresMs = 3_600_000

// needLifecycle skips t when e's backend does not implement driver.Lifecycle
// (version 2 of the waitpoint lifecycle, docs/spec.md §8), and fails it
// under CI=true, where every in-repo backend must implement it.
func needLifecycle(t testing.TB, e *engine.Engine, name string) {
	t.Helper()
	if _, ok := e.Backend().(driver.Lifecycle); ok {
		return
	}
	msg := fmt.Sprintf("%s: the backend does not implement driver.Lifecycle (version 2 of the waitpoint lifecycle, docs/spec.md §8)", name)
	if testenv.InCI() {
		t.Fatal(msg + "; CI=true, so this is a failure, not a skip")
	}
	t.Skip(msg)
}

// Given a seeded keystore and a handful of executions, when clients
// concurrently create pending waitpoints (with the lease they believe
// current, or none), deliver to them and to suspensions' waitpoints,
// suspend using pending waitpoints and new keys under any, all and count
// conditions (suspended or already_satisfied), cancel, claim, extend and
// release leases, complete, observe and list, then the history of every
// execution is linearizable against SignalsModel (docs/spec.md §5, §8.1,
// §8.2, §8.4, §8.5). The few executions make races per execution frequent:
// a delivery against the suspend that uses its pending waitpoint, a
// delivery against a cancel, the deliveries of a quorum, a claim against
// an extend or a release of the same execution.
func TestLinearizableLifecycle(t *testing.T) {
	clients, perClient, execs := 6, sized(50, 700), 4
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			e := openEngine(t, tg.url(t), engine.WithKeystoreCache(0))
			needLifecycle(t, e, tg.name)
			seedOnce(t, e, "k0")
			lc := &lcClients{sgClients: sgClients{e: e, h: newHistory()}}
			for i := range execs {
				k := &lcKnown{sgKnown: sgKnown{id: fmt.Sprintf("exec-%d", i)}}
				lc.known = append(lc.known, k)
				lc.execs = append(lc.execs, &k.sgKnown) // what claim and list update and read
			}
			var wg sync.WaitGroup
			for c := range clients {
				wg.Go(func() { lc.run(c, perClient) })
			}
			wg.Wait()
			lc.h.check(t, SignalsModel(), sized(2*time.Minute, 10*time.Minute))
		})
	}
}

// lcKnown adds to sgKnown the pending waitpoints clients learnt of, newest
// last: unused, used or forgotten, as a real client's knowledge may be.
type lcKnown struct {
	sgKnown
	pending []contracts.WaitpointOutcome
}

// pick returns up to n distinct pending waitpoints, most of them recent.
func (k *lcKnown) pick(r *rand.Rand, n int) []contracts.WaitpointOutcome {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []contracts.WaitpointOutcome
	seen := map[string]bool{}
	for range n {
		if len(k.pending) == 0 {
			break
		}
		w := k.pending[len(k.pending)-1-min(r.IntN(4), len(k.pending)-1)]
		if !seen[w.WaitpointID] {
			seen[w.WaitpointID] = true
			out = append(out, w)
		}
	}
	return out
}

// used forgets the pending waitpoints a suspend used: they are a
// suspension's now (its waitpoints, when it waits).
func (k *lcKnown) used(ids []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pending = slices.DeleteFunc(k.pending, func(w contracts.WaitpointOutcome) bool { return slices.Contains(ids, w.WaitpointID) })
}

// completed forgets every pending waitpoint: complete forgot them.
func (k *lcKnown) completed() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pending = nil
}

// lcClients drives one lifecycle history; the operations of version 1 are
// sgClients'.
type lcClients struct {
	sgClients
	known []*lcKnown // the same executions as sgClients.execs
}

func (s *lcClients) run(client, n int) {
	r := rand.New(rand.NewPCG(uint64(client), uint64(time.Now().UnixNano())))
	for range n {
		s.h.called()
		k := s.known[r.IntN(len(s.known))]
		switch x := r.IntN(100); {
		case x < 12:
			s.create(client, r, k)
		case x < 27:
			s.suspendUsing(client, r, k)
		case x < 42:
			s.deliverPending(client, r, k)
		case x < 55:
			s.deliver(client, r, &k.sgKnown)
		case x < 62:
			s.cancel(client, k)
		case x < 74:
			s.claim(client)
		case x < 80:
			s.extend(client, r, k)
		case x < 85:
			s.release(client, r, k)
		case x < 92:
			if s.complete(client, r, &k.sgKnown) {
				k.completed()
			}
		case x < 96:
			s.observe(client, &k.sgKnown)
		default:
			s.list(client)
		}
	}
}

// leaseFor returns the lease a client presents: the one last seen (80 %),
// none, or (for the lease operations) a random one.
func leaseFor(r *rand.Rand, k *lcKnown, random bool) string {
	known, _ := k.get(r)
	switch x := r.IntN(100); {
	case x < 80:
		return known
	case random:
		return driver.NewID()
	}
	return ""
}

func (s *lcClients) create(client int, r *rand.Rand, k *lcKnown) {
	in := SignalsInput{Op: SgCreate, Exec: k.id, Lease: leaseFor(r, k, false), Key: fmt.Sprintf("p%d", r.IntN(6))}
	args := contracts.CreateWaitpointArgs{ExecutionID: k.id, Key: in.Key, ExpiresInMs: pendingExpiresMs}
	if in.Lease != "" {
		args.LeaseID = &in.Lease
	}
	ctx, cancel := callCtx()
	defer cancel()
	call := s.h.now()
	res, err := s.e.CreateWaitpoint(ctx, args)
	ret := s.h.now()
	if s.h.unusable("create_waitpoint", err) {
		return
	}
	if err == nil {
		k.mu.Lock()
		k.pending = append(k.pending, contracts.WaitpointOutcome{WaitpointID: res.WaitpointID, WaitpointKey: res.WaitpointKey,
			CreatedAtMs: res.CreatedAtMs, Token: res.Token})
		if len(k.pending) > 8 {
			k.pending = k.pending[1:]
		}
		k.mu.Unlock()
	}
	s.h.add(client, call, ret, in, SignalsOutput{Err: errCode(err), Outcome: res.Outcome, WaitpointID: res.WaitpointID})
}

// suspendUsing suspends on 0-2 known pending waitpoints (first) and new
// keys, 1-3 waitpoints in all, under any, all or a count condition.
func (s *lcClients) suspendUsing(client int, r *rand.Rand, k *lcKnown) {
	pend := k.pick(r, r.IntN(3))
	in := SignalsInput{Op: SgSuspend, Exec: k.id, Lease: leaseFor(r, k, false), Keys: r.IntN(3 - len(pend))}
	if len(pend) == 0 && in.Keys == 0 {
		in.Keys = 1
	}
	args := contracts.SuspendArgs{ExecutionID: k.id}
	for _, p := range pend {
		in.Pending = append(in.Pending, p.WaitpointID)
		args.Waitpoints = append(args.Waitpoints, contracts.WaitpointSpec{Pending: p.WaitpointID})
	}
	for i := range in.Keys {
		args.Waitpoints = append(args.Waitpoints, contracts.WaitpointSpec{Key: fmt.Sprintf("w%d", i)})
	}
	switch m := len(args.Waitpoints); r.IntN(3) {
	case 0:
		in.Cond = contracts.ConditionAny
	case 1:
		in.Cond = contracts.ConditionAll
	default:
		in.Cond = contracts.CountCondition(1 + r.IntN(m))
	}
	args.Condition = in.Cond
	if in.Lease != "" {
		args.LeaseID = &in.Lease
	}
	ctx, cancel := callCtx()
	defer cancel()
	call := s.h.now()
	res, err := s.e.Suspend(ctx, args)
	ret := s.h.now()
	if s.h.unusable("suspend", err) {
		return
	}
	out := SignalsOutput{Err: errCode(err), Outcome: res.Outcome, SuspensionID: res.SuspensionID, Signals: signalIDs(res.Signals)}
	for _, w := range res.Waitpoints {
		out.Waitpoints = append(out.Waitpoints, w.WaitpointID)
	}
	if err == nil {
		k.used(in.Pending)
	}
	if res.Outcome == contracts.OutcomeSuspended {
		k.suspended(res.Waitpoints)
	}
	s.h.add(client, call, ret, in, out)
}

// deliverPending delivers to a known pending waitpoint (unused, used or
// forgotten), or to a suspension's waitpoint when none is known.
func (s *lcClients) deliverPending(client int, r *rand.Rand, k *lcKnown) {
	w := k.pick(r, 1)
	if len(w) == 0 {
		s.deliver(client, r, &k.sgKnown)
		return
	}
	s.deliverTo(client, r, k.id, w[0])
}

// deliverTo delivers one signal to wp, with idempotency key none, a or b.
func (s *lcClients) deliverTo(client int, r *rand.Rand, exec string, wp contracts.WaitpointOutcome) {
	in := SignalsInput{Op: SgDeliver, Exec: exec, Waitpoint: wp.WaitpointID, IdemKey: []string{"", "a", "b"}[r.IntN(3)]}
	ctx, cancel := callCtx()
	defer cancel()
	call := s.h.now()
	res, err := s.e.DeliverSignal(ctx, contracts.DeliverSignalArgs{
		ExecutionID: exec, WaitpointID: wp.WaitpointID, Token: wp.Token, Name: "sig", IdempotencyKey: in.IdemKey})
	ret := s.h.now()
	if s.h.unusable("deliver_signal", err) {
		return
	}
	s.h.add(client, call, ret, in, SignalsOutput{Err: errCode(err), Outcome: res.Outcome, SignalID: res.SignalID, Resumed: res.Resumed})
}

func (s *lcClients) cancel(client int, k *lcKnown) {
	ctx, cancel := callCtx()
	defer cancel()
	call := s.h.now()
	res, err := s.e.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: k.id})
	ret := s.h.now()
	if s.h.unusable("cancel_suspension", err) {
		return
	}
	s.h.add(client, call, ret, SignalsInput{Op: SgCancel, Exec: k.id},
		SignalsOutput{Err: errCode(err), Outcome: res.Outcome, SuspensionID: res.SuspensionID})
}

func (s *lcClients) extend(client int, r *rand.Rand, k *lcKnown) {
	in := SignalsInput{Op: SgExtend, Exec: k.id, Lease: leaseFor(r, k, true)}
	if in.Lease == "" {
		in.Lease = driver.NewID()
	}
	ctx, cancel := callCtx()
	defer cancel()
	call := s.h.now()
	res, err := s.e.ExtendLease(ctx, contracts.ExtendLeaseArgs{ExecutionID: k.id, LeaseID: in.Lease, LeaseMs: leaseMs})
	ret := s.h.now()
	if s.h.unusable("extend_lease", err) {
		return
	}
	s.h.add(client, call, ret, in, SignalsOutput{Err: errCode(err), Outcome: res.Outcome})
}

func (s *lcClients) release(client int, r *rand.Rand, k *lcKnown) {
	in := SignalsInput{Op: SgRelease, Exec: k.id, Lease: leaseFor(r, k, true)}
	if in.Lease == "" {
		in.Lease = driver.NewID()
	}
	ctx, cancel := callCtx()
	defer cancel()
	call := s.h.now()
	res, err := s.e.ReleaseExecution(ctx, contracts.ReleaseArgs{ExecutionID: k.id, LeaseID: in.Lease})
	ret := s.h.now()
	if s.h.unusable("release_execution", err) {
		return
	}
	if err == nil {
		k.forget(in.Lease)
	}
	s.h.add(client, call, ret, in, SignalsOutput{Err: errCode(err), Outcome: res.Outcome})
}

// needTB records what needLifecycle asked of its test.
type needTB struct {
	testing.TB
	fatal, skip string
}

func (n *needTB) Fatal(args ...any) { n.fatal = fmt.Sprint(args...) }
func (n *needTB) Skip(args ...any)  { n.skip = fmt.Sprint(args...) }

// A backend without driver.Lifecycle skips the lifecycle tests naming the
// interface, and fails them under CI=true.
func TestNeedLifecycle(t *testing.T) {
	e := openEngine(t, "memory://")
	older := engine.New(struct{ driver.Backend }{e.Backend()}) // only the methods of driver.Backend
	for _, c := range []struct {
		ci         string
		e          *engine.Engine
		fatal, skp bool
	}{{"true", older, true, false}, {"false", older, false, true}, {"true", e, false, false}} {
		t.Setenv("CI", c.ci)
		n := &needTB{TB: t}
		needLifecycle(n, c.e, "test")
		if (n.fatal != "") != c.fatal || (n.skip != "" && n.fatal == "") != c.skp {
			t.Errorf("CI=%s, lifecycle %v: fatal %q, skip %q", c.ci, c.e == e, n.fatal, n.skip)
		}
		for _, msg := range []string{n.fatal, n.skip} {
			if msg != "" && !strings.Contains(msg, "driver.Lifecycle") {
				t.Errorf("%q does not name driver.Lifecycle", msg)
			}
		}
	}
}
