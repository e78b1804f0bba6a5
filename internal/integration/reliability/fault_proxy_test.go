package reliability

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// proxyDeadline is the deadline of each call through a faulty proxy, and
// proxyMargin how much later than it the call may return: scheduling on a
// loaded machine (load average 15-18 while other suites run) delayed single
// returns by up to 2.6 s, most by less than 0.3 s; a call that waits on the
// network instead of its deadline takes 5 s or more (a client's read
// timeout). The figures log how many calls were late and the slowest.
const (
	proxyDeadline = 400 * time.Millisecond
	proxyMargin   = 3 * time.Second
)

// proxied returns a fresh store's URL on target tg whose host is a loopback
// proxy to the real server, and the proxy. The Valkey cluster is left out:
// its nodes announce their own addresses, which the client then dials
// directly, around any proxy.
func proxied(t *testing.T, tg target) (string, string, *Proxy) {
	t.Helper()
	var raw string
	switch tg.name {
	case "postgres":
		raw = tg.url(t)
	case "valkey":
		raw = valkeyURL(t, testenv.ValkeyURL(t), tg.partitions)
	default:
		t.Skipf("%s: not through a proxy", tg.name)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	direct := u.String()
	u.Host = p.Addr()
	return u.String(), direct, p
}

// faultCalls are one call of every operation, each returning its error.
type faultCall struct {
	name string
	run  func(ctx context.Context) error
}

// allCalls returns one call of each operation against e; suspensions get
// fresh execution ids from next, and acked records the acknowledged ones.
func allCalls(e *engine.Engine, wp contracts.WaitpointOutcome, exec string, next func() string, acked func(string)) []faultCall {
	msg := []byte("m")
	return []faultCall{
		{"rotate_all", func(ctx context.Context) error {
			kid := next()
			_, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: kid, NewSecret: secretOf(kid, 0), GraceMs: keystoreGraceMs})
			return err
		}},
		{"list_kids", func(ctx context.Context) error { _, err := e.ListKids(ctx); return err }},
		{"sign", func(ctx context.Context) error {
			_, err := e.Sign(ctx, contracts.SignArgs{Scope: "s", Message: msg})
			return err
		}},
		{"verify", func(ctx context.Context) error {
			_, err := e.Verify(ctx, contracts.VerifyArgs{Scope: "s", Message: msg, Token: driver.SignToken("k0", secretOf("k0", 0), driver.SignatureInput("k0", "s", msg))})
			return err
		}},
		{"suspend", func(ctx context.Context) error {
			id := next()
			_, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: id, Condition: "any", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
			if err == nil {
				acked(id)
			}
			return err
		}},
		{"deliver_signal", func(ctx context.Context) error {
			_, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: wp.WaitpointID, Token: wp.Token, Name: "n", IdempotencyKey: next()})
			return err
		}},
		{"observe_signals", func(ctx context.Context) error {
			_, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: exec})
			return err
		}},
		{"list_suspended", func(ctx context.Context) error {
			_, err := e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 10})
			return err
		}},
		{"claim", func(ctx context.Context) error {
			_, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: leaseMs})
			return err
		}},
		{"complete", func(ctx context.Context) error {
			_, err := e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: "nobody", LeaseID: driver.NewID()})
			return err
		}},
	}
}

// lifecycleCalls returns one call of each operation of version 2 of the
// waitpoint lifecycle against e (docs/spec.md §8): create_waitpoint and a
// suspend using a pending waitpoint that holds a signal (three calls: create,
// deliver, suspend: already_satisfied) on fresh execution ids from next,
// get_waitpoint of pending, and extend, release and cancel of an unknown
// execution (execution_not_found once healed).
func lifecycleCalls(e *engine.Engine, pending contracts.CreateWaitpointOutcome, next func() string) []faultCall {
	create := func(ctx context.Context) (contracts.CreateWaitpointOutcome, error) {
		return e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: next(), Key: "a", ExpiresInMs: pendingExpiresMs})
	}
	return []faultCall{
		{"create_waitpoint", func(ctx context.Context) error { _, err := create(ctx); return err }},
		{"suspend_using_pending", func(ctx context.Context) error {
			p, err := create(ctx)
			if err != nil {
				return err
			}
			if _, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: p.ExecutionID, WaitpointID: p.WaitpointID, Token: p.Token, Name: "n"}); err != nil {
				return err
			}
			_, err = e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: p.ExecutionID, Condition: "any", Waitpoints: []contracts.WaitpointSpec{{Pending: p.WaitpointID}}})
			return err
		}},
		{"get_waitpoint", func(ctx context.Context) error {
			_, err := e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: pending.ExecutionID, WaitpointID: pending.WaitpointID})
			return err
		}},
		{"extend_lease", func(ctx context.Context) error {
			_, err := e.ExtendLease(ctx, contracts.ExtendLeaseArgs{ExecutionID: "nobody", LeaseID: driver.NewID(), LeaseMs: leaseMs})
			return err
		}},
		{"release_execution", func(ctx context.Context) error {
			_, err := e.ReleaseExecution(ctx, contracts.ReleaseArgs{ExecutionID: "nobody", LeaseID: driver.NewID()})
			return err
		}},
		{"cancel_suspension", func(ctx context.Context) error {
			_, err := e.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: "nobody"})
			return err
		}},
	}
}

// A TCP proxy that stalls, cuts and refuses connections: every call,
// whatever the proxy does, returns within its deadline plus proxyMargin,
// with a retryable transport error when it fails; after the proxy heals,
// calls succeed again on their own; acknowledged suspensions are all there.
// The calls include those of version 2 of the waitpoint lifecycle
// (lifecycleCalls) when the backend implements driver.Lifecycle.
func TestFaultProxy(t *testing.T) {
	rounds := sized(1, 20)
	for _, tg := range targets {
		if !tg.network {
			continue
		}
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			raw, direct, p := proxied(t, tg)
			note, known := knownIssues[tg.name+"/Proxy"]
			if known {
				k := &knownIssue{TB: t, note: note}
				proxyFaults(k, raw, direct, p, 1) // each stalled call costs seconds
				if k.hits > 0 {
					t.Skipf("known driver issue reproduced (%d violations logged above): %s", k.hits, note)
				}
				return
			}
			proxyFaults(t, raw, direct, p, rounds)
		})
	}
}

// proxyFaults runs the rounds of stalls, cuts and refusals through p.
func proxyFaults(t testing.TB, raw, direct string, p *Proxy, rounds int) {
	e := openEngine(t, raw, engine.WithKeystoreCache(0))
	seedOnce(t, e, "k0")
	s := suspendOne(t, e, "proxy-exec", "all", "a", "b")
	var mu sync.Mutex
	n, ackedIDs := 0, []string{}
	next := func() string { mu.Lock(); defer mu.Unlock(); n++; return fmt.Sprintf("px-%d", n) }
	acked := func(id string) { mu.Lock(); defer mu.Unlock(); ackedIDs = append(ackedIDs, id) }
	calls := allCalls(e, s.Waitpoints[0], "proxy-exec", next, acked)
	if _, ok := e.Backend().(driver.Lifecycle); ok {
		calls = append(calls, lifecycleCalls(e, createPending(t, e, "proxy-pending", "a"), next)...)
	} else if testenv.InCI() {
		t.Errorf("the backend does not implement driver.Lifecycle; CI=true, so this is a failure: its calls are not tested through the proxy")
	}
	var st proxyStats
	for range rounds {
		for _, f := range []struct {
			name         string
			break_, heal func()
		}{
			{"stall", p.Stall, p.Resume},
			{"cut", func() { p.Refuse(true); p.Cut() }, func() { p.Refuse(false) }},
			{"stall-then-cut", func() { p.Stall(); time.AfterFunc(proxyDeadline/2, p.Cut) }, p.Resume},
		} {
			f.break_()
			st.faulty(t, f.name, calls)
			f.heal()
			st.recover(t, f.name, calls)
		}
	}
	logf(t, "%s", st.String())
	check := openEngine(t, direct, engine.WithKeystoreCache(0))
	for _, id := range ackedIDs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := check.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: id})
		cancel()
		if err != nil {
			t.Errorf("acknowledged suspension of %s: %v", id, err)
		}
	}
	logf(t, "%d suspensions acknowledged through the proxy, all present", len(ackedIDs))
}

// proxyStats counts calls under faults.
type proxyStats struct {
	mu                 sync.Mutex
	calls, failed      int
	slowest            time.Duration
	slowestWhat        string
	late               int // calls past the deadline by more than 100 ms
	recovered, retries int
	codes              map[string]int
}

func (s *proxyStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var codes []string
	for k, v := range s.codes {
		codes = append(codes, fmt.Sprintf("%s=%d", k, v))
	}
	return fmt.Sprintf("%d calls under faults, %d failed [%s], %d returned > 100 ms past the deadline %v, slowest %v (%s); %d recoveries took %d extra attempts",
		s.calls, s.failed, strings.Join(codes, " "), s.late, proxyDeadline, s.slowest.Round(time.Millisecond), s.slowestWhat, s.recovered, s.retries)
}

// faulty runs every call at once with the proxy broken: each must end
// within the deadline plus the margin, and fail, if it fails, with a
// retryable transport error.
func (s *proxyStats) faulty(t testing.TB, fault string, calls []faultCall) {
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), proxyDeadline)
			defer cancel()
			start := time.Now()
			err := c.run(ctx)
			took := time.Since(start)
			s.mu.Lock()
			defer s.mu.Unlock()
			s.calls++
			if took > s.slowest {
				s.slowest, s.slowestWhat = took, fault+" "+c.name
			}
			if took > proxyDeadline+100*time.Millisecond {
				s.late++
			}
			if took > proxyDeadline+proxyMargin {
				t.Errorf("%s: %s took %v, beyond its deadline %v + %v", fault, c.name, took, proxyDeadline, proxyMargin)
			}
			if err == nil {
				return
			}
			s.failed++
			if s.codes == nil {
				s.codes = map[string]int{}
			}
			s.codes[errCode(err)]++
			if !isKind(err, contracts.KindTransport) || !retryable(err) {
				t.Errorf("%s: %s failed with %v (%T), want a retryable transport error", fault, c.name, err, err)
			}
		})
	}
	wg.Wait()
}

// recover runs every call again once the proxy is healed: each must
// succeed (or answer its contract outcome) within a few attempts.
func (s *proxyStats) recover(t testing.TB, fault string, calls []faultCall) {
	for _, c := range calls {
		var err error
		for attempt := range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = c.run(ctx)
			cancel()
			if err == nil || !retryable(err) {
				s.mu.Lock()
				s.recovered++
				s.retries += attempt
				s.mu.Unlock()
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil && !isKind(err, contracts.KindNotFound) && !isKind(err, contracts.KindState) {
			t.Errorf("after %s healed: %s: %v", fault, c.name, err)
		}
	}
}
