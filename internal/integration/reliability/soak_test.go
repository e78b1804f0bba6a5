package reliability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// Soak parameters: a rotation every soakRotateEvery with soakGraceMs of
// grace; soakMargin absorbs the gap between the process clock (which the
// test reads) and the backend clock (which decides), plus millisecond
// rounding.
const (
	soakRotateEvery = time.Second
	soakGraceMs     = 1500
	soakMargin      = 150 * time.Millisecond
)

// A bounded mixed load, per backend, through an Engine with its default
// keystore cache: a rotation every second with 1.5 s of grace, signing and
// verifying tokens of every age, suspensions, deliveries (with replays),
// claims and completes. Every accepted signal is in the claim of its
// execution; every token verifies until its kid's grace ends and fails
// (token_expired or, once collected, unknown_kid) after it; no error other
// than retryable contention (and the contract's expected answers).
func TestSoak(t *testing.T) {
	d := sized(5*time.Second, 60*time.Second)
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			e := openEngine(t, tg.url(t))
			seedOnce(t, e, "soak-0")
			s := newSoak(e, tg.partitions)
			s.run(d)
			s.drain(t)
			s.report(t)
		})
	}
}

// kidLife is when a kid stopped being current, in process time: its grace
// ends between from+grace and to+grace.
type kidLife struct{ from, to time.Time }

type soakToken struct {
	kid, scope, token string
	msg               []byte
}

type soakExec struct {
	cond     string
	accepted []string // signal ids acknowledged as accepted
	claimed  []string // the signals its claim returned
	done     bool     // claimed and completed
}

type soak struct {
	e     *engine.Engine
	parts int
	stop  chan struct{}

	mu      sync.Mutex
	demoted map[string]kidLife
	tokens  map[string][]soakToken // kid -> its first tokens
	kids    []string               // kids that signed, in order
	execs   map[string]*soakExec
	counts  map[string]int
	bad     []string
	early   []string // tokens rejected as expired before their grace ended

	rotations, nextExec atomic.Int64
}

func newSoak(e *engine.Engine, parts int) *soak {
	return &soak{e: e, parts: parts, stop: make(chan struct{}), demoted: map[string]kidLife{}, tokens: map[string][]soakToken{},
		execs: map[string]*soakExec{}, counts: map[string]int{}}
}

func (s *soak) count(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[what]++
}

// tooEarly records a token rejected as expired while its grace held.
func (s *soak) tooEarly(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.early = append(s.early, fmt.Sprintf(format, args...))
}

// demotedAt is when the rotation that demoted kid began (zero if none).
func (s *soak) demotedAt(kid string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.demoted[kid].from
}

func (s *soak) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bad = append(s.bad, fmt.Sprintf(format, args...))
}

// allowed sorts an error: retryable contention is counted; anything else
// is a failure. It reports whether err was nil.
func (s *soak) allowed(what string, err error) bool {
	switch {
	case err == nil:
		s.count(what + ":ok")
		return true
	case isKind(err, contracts.KindContention) && retryable(err):
		s.count(what + ":contention")
	default:
		s.fail("%s: %v", what, err)
	}
	return false
}

func (s *soak) run(d time.Duration) {
	var wg sync.WaitGroup
	wg.Go(s.rotator)
	for i := range 2 {
		wg.Go(func() { s.tokensLoop(i) })
		wg.Go(func() { s.suspender(i) })
		wg.Go(func() { s.worker(i) })
	}
	time.Sleep(d)
	close(s.stop)
	wg.Wait()
}

func (s *soak) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

func soakCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

func (s *soak) rotator() {
	cur := "soak-0"
	tick := time.NewTicker(soakRotateEvery)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		kid := fmt.Sprintf("soak-%d", n)
		ctx, cancel := soakCtx()
		from := time.Now()
		res, err := s.e.RotateAll(ctx, contracts.RotateArgs{NewKid: kid, NewSecret: secretOf(kid, 0), GraceMs: soakGraceMs})
		to := time.Now()
		cancel()
		for _, en := range res.Entries {
			if en.Error != nil && err == nil {
				err = en.Error
			}
		}
		if !s.allowed("rotate_all", err) {
			continue
		}
		s.rotations.Add(1)
		s.mu.Lock()
		s.demoted[cur] = kidLife{from, to}
		s.mu.Unlock()
		cur = kid
	}
}

// expectation says what verifying a token of kid between start and end
// must answer: "valid", "expired" or "" (either: too close to call).
func (s *soak) expectation(kid string, start, end time.Time) string {
	s.mu.Lock()
	life, demoted := s.demoted[kid]
	s.mu.Unlock()
	grace := time.Duration(soakGraceMs) * time.Millisecond
	switch {
	case !demoted || end.Before(life.from.Add(grace-soakMargin)):
		return "valid"
	case start.After(life.to.Add(grace + soakMargin)):
		return "expired"
	}
	return ""
}

// tokensLoop signs tokens and verifies tokens of every age.
func (s *soak) tokensLoop(i int) {
	r := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
	for n := 0; !s.stopped(); n++ {
		scope := scopeFor(r.IntN(s.parts), s.parts, r.IntN(10))
		msg := []byte(fmt.Sprintf("soak-%d-%d", i, n))
		ctx, cancel := soakCtx()
		res, err := s.e.Sign(ctx, contracts.SignArgs{Scope: scope, Message: msg})
		cancel()
		if s.allowed("sign", err) {
			s.mu.Lock()
			if len(s.tokens[res.Kid]) == 0 {
				s.kids = append(s.kids, res.Kid)
			}
			if len(s.tokens[res.Kid]) < 20 {
				s.tokens[res.Kid] = append(s.tokens[res.Kid], soakToken{kid: res.Kid, scope: scope, token: res.Token, msg: msg})
			}
			s.mu.Unlock()
		}
		s.verifyOne(r)
		time.Sleep(time.Millisecond)
	}
}

func (s *soak) verifyOne(r *rand.Rand) {
	s.mu.Lock()
	if len(s.kids) == 0 {
		s.mu.Unlock()
		return
	}
	of := s.tokens[s.kids[r.IntN(len(s.kids))]]
	tk := of[r.IntN(len(of))]
	s.mu.Unlock()
	ctx, cancel := soakCtx()
	defer cancel()
	start := time.Now()
	_, err := s.e.Verify(ctx, contracts.VerifyArgs{Scope: tk.scope, Message: tk.msg, Token: tk.token})
	end := time.Now()
	expired := errorsIs(err, contracts.ErrTokenExpired) || errorsIs(err, contracts.ErrUnknownKid)
	switch want := s.expectation(tk.kid, start, end); {
	case err == nil && want != "expired":
		s.count("verify:valid")
	case expired && want != "valid":
		s.count("verify:expired")
	case expired:
		s.tooEarly("verify a token of %s %v after its kid's demotion began: %v", tk.kid, end.Sub(s.demotedAt(tk.kid)), err)
	case err == nil:
		s.fail("verify a token of %s: valid %v after its kid's demotion ended, past its grace", tk.kid, start.Sub(s.demotedAt(tk.kid)))
	case isKind(err, contracts.KindContention) && retryable(err):
		s.count("verify:contention")
	default:
		s.fail("verify a token of %s: %v", tk.kid, err)
	}
}

// suspender suspends fresh executions and delivers to them at once: to
// both waitpoints of an "all" suspension, or twice to an "any" one (the
// second is waitpoint_closed), with a replay that must be a duplicate.
func (s *soak) suspender(i int) {
	for n := 0; !s.stopped(); n++ {
		exec := fmt.Sprintf("soak-x-%d", s.nextExec.Add(1))
		cond := []string{"any", "all"}[n%2]
		ctx, cancel := soakCtx()
		start := time.Now()
		sus, err := s.e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: exec, Condition: cond,
			Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})
		cancel()
		if !s.allowed("suspend", err) {
			continue
		}
		s.mu.Lock()
		s.execs[exec] = &soakExec{cond: cond}
		s.mu.Unlock()
		for j, wp := range sus.Waitpoints {
			s.deliver(exec, wp, j, cond, start)
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *soak) deliver(exec string, wp contracts.WaitpointOutcome, j int, cond string, suspended time.Time) {
	args := contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: wp.WaitpointID, Token: wp.Token,
		Name: "soak", IdempotencyKey: fmt.Sprintf("d%d", j)}
	ctx, cancel := soakCtx()
	defer cancel()
	start := time.Now()
	res, err := s.e.DeliverSignal(ctx, args)
	end := time.Now()
	kid, _, _ := strings.Cut(wp.Token, ":")
	expired := errorsIs(err, contracts.ErrTokenExpired) || errorsIs(err, contracts.ErrUnknownKid)
	switch {
	case err == nil && res.Outcome == contracts.OutcomeAccepted:
		s.count("deliver:accepted")
		s.mu.Lock()
		s.execs[exec].accepted = append(s.execs[exec].accepted, res.SignalID)
		s.mu.Unlock()
		if !res.Resumed { // still open: the replay must find the record
			s.replay(ctx, exec, args, res.SignalID, kid)
		}
	case cond == "any" && j == 1 && (errorsIs(err, contracts.ErrWaitpointClosed) || errorsIs(err, contracts.ErrSignatureMismatch)):
		// Closed by the first signal's resume, or already forgotten: a
		// worker claimed and completed the execution in between.
		s.count("deliver:closed-or-completed")
	case expired && s.expectation(kid, start, end) != "valid":
		s.count("deliver:token_expired")
	case expired:
		s.fail("deliver to %s: %v before its kid's grace ended (the driver decided, not the cache)", exec, err)
	case isKind(err, contracts.KindContention) && retryable(err):
		s.count("deliver:contention")
	default:
		s.fail("deliver to %s (%s, waitpoint %d, suspended %v ago, call %v): %+v, %v", exec, cond, j, time.Since(suspended), end.Sub(start), res, err)
	}
}

// replay delivers args again: a duplicate naming signalID, unless the
// token's grace ended meanwhile.
func (s *soak) replay(ctx context.Context, exec string, args contracts.DeliverSignalArgs, signalID, kid string) {
	start := time.Now()
	again, err := s.e.DeliverSignal(ctx, args)
	end := time.Now()
	switch {
	case err == nil && again.Outcome == contracts.OutcomeDuplicate && again.SignalID == signalID:
		s.count("deliver:duplicate")
	case (errorsIs(err, contracts.ErrTokenExpired) || errorsIs(err, contracts.ErrUnknownKid)) && s.expectation(kid, start, end) != "valid":
		s.count("deliver:token_expired")
	case errorsIs(err, contracts.ErrTokenExpired) || errorsIs(err, contracts.ErrUnknownKid):
		s.fail("replay to %s: %v before its kid's grace ended (the driver decided, not the cache)", exec, err)
	case isKind(err, contracts.KindContention) && retryable(err):
		s.count("deliver:contention")
	default:
		s.fail("replay of %s/%s: %+v, %v; want duplicate %s", exec, args.IdempotencyKey, again, err, signalID)
	}
}

// worker claims, observes and completes resumed executions.
func (s *soak) worker(i int) {
	for !s.stopped() {
		if !s.claimOne(fmt.Sprintf("soak-w%d", i)) {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// claimOne claims, observes and completes one execution; false when
// nothing was claimable.
func (s *soak) claimOne(worker string) bool {
	ctx, cancel := soakCtx()
	defer cancel()
	c, err := s.e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: worker, LeaseMs: 60_000})
	if !s.allowed("claim", err) || c.Outcome != contracts.OutcomeClaimed {
		return false
	}
	obs, err := s.e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: c.ExecutionID})
	if s.allowed("observe", err) && strings.Join(signalIDs(obs.Signals), ",") != strings.Join(signalIDs(c.Signals), ",") {
		s.fail("%s: observe %v, claim %v", c.ExecutionID, signalIDs(obs.Signals), signalIDs(c.Signals))
	}
	_, err = s.e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: c.ExecutionID, LeaseID: c.LeaseID})
	s.allowed("complete", err)
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.execs[c.ExecutionID]
	if x == nil {
		s.bad = append(s.bad, "claimed an execution nobody suspended: "+c.ExecutionID)
		return true
	}
	x.claimed, x.done = signalIDs(c.Signals), err == nil
	return true
}

// drain claims what is left, then checks that every execution whose
// signals resumed it was claimed with every accepted signal.
func (s *soak) drain(t *testing.T) {
	for s.claimOne("soak-drain") {
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resumed, claimed := 0, 0
	for id, x := range s.execs {
		if len(x.accepted) == 0 || (x.cond == "all" && len(x.accepted) < 2) {
			continue // not resumed: the load stopped before its deliveries
		}
		resumed++
		if x.done {
			claimed++
		}
		got := map[string]bool{}
		for _, sig := range x.claimed {
			got[sig] = true
		}
		for _, sig := range x.accepted {
			if !got[sig] {
				s.bad = append(s.bad, fmt.Sprintf("%s: accepted signal %s missing from its claim %v", id, sig, x.claimed))
			}
		}
	}
	s.counts["executions:with-accepted-signals"] = resumed
	s.counts["executions:claimed-and-completed"] = claimed
}

func (s *soak) report(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.counts))
	for k, n := range s.counts {
		keys = append(keys, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(keys)
	t.Logf("%s: %d rotations; %s", t.Name(), s.rotations.Load(), strings.Join(keys, " "))
	for i, b := range s.bad {
		if i == 20 {
			t.Errorf("... and %d more", len(s.bad)-20)
			break
		}
		t.Errorf("%s", b)
	}
	if len(s.early) > 0 {
		note, known := knownIssues[strings.TrimPrefix(t.Name(), "TestSoak/")+"/CacheLatency"]
		for i, e := range s.early {
			if i == 5 {
				break
			}
			if known {
				t.Logf("KNOWN ISSUE (%s): %s", note, e)
			} else {
				t.Errorf("token rejected before its grace ended: %s", e)
			}
		}
		t.Logf("%d tokens rejected as expired before their grace ended", len(s.early))
	}
	if s.counts["verify:expired"] == 0 || s.counts["verify:valid"] == 0 {
		t.Errorf("the soak verified no token on one side of its grace: %v", s.counts)
	}
}

func errorsIs(err error, target contracts.Sentinel) bool { return err != nil && errors.Is(err, target) }
