package reliability

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// leaseMs is long enough that no lease expires during a history.
const leaseMs = 3_600_000

// Given a seeded keystore and a handful of executions, when clients
// suspend (with the lease they believe current, or none), deliver (with and
// without idempotency keys, to current and older waitpoints), observe,
// claim, complete and list concurrently, then the history of every
// execution is linearizable against SignalsModel. Claims answering "none"
// are left out (they speak of every execution at once).
func TestLinearizableSignals(t *testing.T) {
	clients, perClient, execs := 6, sized(60, 700), 6
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			e := openEngine(t, tg.url(t), engine.WithKeystoreCache(0))
			seedOnce(t, e, "k0")
			sg := &sgClients{e: e, h: newHistory(), execs: make([]*sgKnown, execs)}
			for i := range sg.execs {
				sg.execs[i] = &sgKnown{id: fmt.Sprintf("exec-%d", i)}
			}
			var wg sync.WaitGroup
			for c := range clients {
				wg.Go(func() { sg.run(c, perClient) })
			}
			wg.Wait()
			sg.h.check(t, SignalsModel(), sized(2*time.Minute, 10*time.Minute))
		})
	}
}

// sgKnown is what clients learnt of one execution from answers: possibly
// stale, as a real client's knowledge is.
type sgKnown struct {
	id    string
	mu    sync.Mutex
	lease string
	wps   [][]contracts.WaitpointOutcome // the waitpoints of the last suspensions, newest last
}

func (k *sgKnown) get(r *rand.Rand) (lease string, wp *contracts.WaitpointOutcome) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if n := len(k.wps); n > 0 {
		s := k.wps[n-1]
		if n > 1 && r.IntN(100) < 15 {
			s = k.wps[n-2]
		}
		w := s[r.IntN(len(s))]
		wp = &w
	}
	return k.lease, wp
}

// suspended learns the waitpoints of a new suspension, which dropped the lease.
func (k *sgKnown) suspended(wps []contracts.WaitpointOutcome) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lease = ""
	k.wps = append(k.wps, wps)
	if len(k.wps) > 2 {
		k.wps = k.wps[1:]
	}
}

// forget learns that lease no longer holds the execution (complete or
// release answered): it is no longer presented.
func (k *sgKnown) forget(lease string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lease == lease {
		k.lease = ""
	}
}

// sgClients drives one suspension history.
type sgClients struct {
	e     *engine.Engine
	h     *history
	execs []*sgKnown
}

func (s *sgClients) run(client, n int) {
	r := rand.New(rand.NewPCG(uint64(client), uint64(time.Now().UnixNano())))
	for range n {
		s.h.called()
		k := s.execs[r.IntN(len(s.execs))]
		switch x := r.IntN(100); {
		case x < 22:
			s.suspend(client, r, k)
		case x < 55:
			s.deliver(client, r, k)
		case x < 65:
			s.observe(client, k)
		case x < 80:
			s.claim(client)
		case x < 90:
			s.complete(client, r, k)
		default:
			s.list(client)
		}
	}
}

func (s *sgClients) suspend(client int, r *rand.Rand, k *sgKnown) {
	known, _ := k.get(r)
	in := SignalsInput{Op: SgSuspend, Exec: k.id, Keys: 1 + r.IntN(3), Cond: "any"}
	if r.IntN(2) == 0 {
		in.Cond = "all"
	}
	if r.IntN(100) < 80 {
		in.Lease = known
	}
	args := contracts.SuspendArgs{ExecutionID: k.id, Condition: in.Cond}
	for i := range in.Keys {
		args.Waitpoints = append(args.Waitpoints, contracts.WaitpointSpec{Key: fmt.Sprintf("w%d", i)})
	}
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
	out := SignalsOutput{Err: errCode(err), Outcome: res.Outcome, SuspensionID: res.SuspensionID}
	for _, w := range res.Waitpoints {
		out.Waitpoints = append(out.Waitpoints, w.WaitpointID)
	}
	if err == nil {
		k.suspended(res.Waitpoints)
	}
	s.h.add(client, call, ret, in, out)
}

func (s *sgClients) deliver(client int, r *rand.Rand, k *sgKnown) {
	_, wp := k.get(r)
	if wp == nil {
		s.observe(client, k)
		return
	}
	in := SignalsInput{Op: SgDeliver, Exec: k.id, Waitpoint: wp.WaitpointID, IdemKey: []string{"", "a", "b"}[r.IntN(3)]}
	ctx, cancel := callCtx()
	defer cancel()
	call := s.h.now()
	res, err := s.e.DeliverSignal(ctx, contracts.DeliverSignalArgs{
		ExecutionID: k.id, WaitpointID: wp.WaitpointID, Token: wp.Token, Name: "sig", IdempotencyKey: in.IdemKey})
	ret := s.h.now()
	if s.h.unusable("deliver_signal", err) {
		return
	}
	s.h.add(client, call, ret, in, SignalsOutput{Err: errCode(err), Outcome: res.Outcome, SignalID: res.SignalID, Resumed: res.Resumed})
}

func (s *sgClients) observe(client int, k *sgKnown) {
	ctx, cancel := callCtx()
	defer cancel()
	call := s.h.now()
	res, err := s.e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: k.id})
	ret := s.h.now()
	if s.h.unusable("observe_signals", err) {
		return
	}
	s.h.add(client, call, ret, SignalsInput{Op: SgObserve, Exec: k.id},
		SignalsOutput{Err: errCode(err), SuspensionID: res.SuspensionID, Signals: signalIDs(res.Signals)})
}

func (s *sgClients) claim(client int) {
	ctx, cancel := callCtx()
	defer cancel()
	call := s.h.now()
	res, err := s.e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: fmt.Sprintf("worker-%d", client), LeaseMs: leaseMs})
	ret := s.h.now()
	if s.h.unusable("claim", err) {
		return
	}
	if err != nil {
		s.h.fail("claim: " + err.Error())
		return
	}
	if res.Outcome != contracts.OutcomeClaimed {
		return
	}
	for _, k := range s.execs {
		if k.id == res.ExecutionID {
			k.mu.Lock()
			k.lease = res.LeaseID
			k.mu.Unlock()
		}
	}
	s.h.add(client, call, ret, SignalsInput{Op: SgClaim, Exec: res.ExecutionID}, SignalsOutput{
		SuspensionID: res.SuspensionID, Signals: signalIDs(res.Signals), Lease: res.LeaseID, Reason: res.Reason})
}

// complete completes k with the lease last seen (or a random one) and
// reports whether it was acknowledged.
func (s *sgClients) complete(client int, r *rand.Rand, k *sgKnown) bool {
	lease, _ := k.get(r)
	if lease == "" || r.IntN(100) < 10 {
		lease = driver.NewID()
	}
	ctx, cancel := callCtx()
	defer cancel()
	call := s.h.now()
	_, err := s.e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: k.id, LeaseID: lease})
	ret := s.h.now()
	if s.h.unusable("complete", err) {
		return false
	}
	if err == nil {
		k.forget(lease)
	}
	s.h.add(client, call, ret, SignalsInput{Op: SgComplete, Exec: k.id, Lease: lease}, SignalsOutput{Err: errCode(err)})
	return err == nil
}

// list reads one page of up to 1000 (every execution of the history) and
// records one operation per execution.
func (s *sgClients) list(client int) {
	ctx, cancel := callCtx()
	defer cancel()
	call := s.h.now()
	res, err := s.e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: contracts.MaxListLimit})
	ret := s.h.now()
	if s.h.unusable("list_suspended", err) {
		return
	}
	if err != nil || res.NextCursor != nil {
		s.h.fail(fmt.Sprintf("list_suspended: %v (next_cursor %v)", err, res.NextCursor))
		return
	}
	listed := map[string]contracts.SuspendedExecution{}
	for _, x := range res.Executions {
		listed[x.ExecutionID] = x
	}
	for _, k := range s.execs {
		x, ok := listed[k.id]
		s.h.add(client, call, ret, SignalsInput{Op: SgListed, Exec: k.id},
			SignalsOutput{Listed: ok, SuspensionID: x.SuspensionID, Count: x.Waitpoints})
	}
}

func signalIDs(s []contracts.Signal) []string {
	out := make([]string, 0, len(s))
	for _, x := range s {
		out = append(out, x.SignalID)
	}
	return out
}
