package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// tally counts the calls of a fault run.
type tally struct {
	mu       sync.Mutex
	calls    int
	acked    int
	failures map[string]int // retryable error code -> count
	bad      []string       // errors the contract does not allow here
}

// record classifies one call's error: nil is acknowledged; a retryable
// contract error is an allowed failure; anything else is bad. It reports
// whether the call was acknowledged.
func (c *tally) record(what string, err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	switch {
	case err == nil:
		c.acked++
		return true
	case retryable(err):
		if c.failures == nil {
			c.failures = map[string]int{}
		}
		c.failures[errCode(err)]++
	default:
		c.bad = append(c.bad, fmt.Sprintf("%s: %v (%T)", what, err, err))
	}
	return false
}

func (c *tally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	codes := make([]string, 0, len(c.failures))
	for k, n := range c.failures {
		codes = append(codes, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(codes)
	return fmt.Sprintf("%d calls, %d acknowledged, failed: [%s]", c.calls, c.acked, strings.Join(codes, " "))
}

func (c *tally) report(t testing.TB) {
	t.Helper()
	for i, b := range c.bad {
		if i == 10 {
			t.Errorf("... and %d more", len(c.bad)-10)
			break
		}
		t.Errorf("error outside the contract under a connection kill: %s", b)
	}
}

// underKills runs op(w, i) for workers × n calls while the victim's
// connections are killed every few milliseconds, and returns how many
// connections were killed.
func underKills(v victim, workers, n int, op func(w, i int)) int {
	stop := make(chan struct{})
	kills := killLoop(v.k, v.maxGap, stop)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range n {
				op(w, i)
			}
		})
	}
	wg.Wait()
	close(stop)
	return kills()
}

// retry calls f until it answers something other than a retryable error,
// at most 50 times, and returns the last error.
func retry(f func(ctx context.Context) error) error {
	var err error
	for range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = f(ctx)
		cancel()
		if err == nil || !retryable(err) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// knownIssues are driver defects found by these tests and reported in a
// note, by target/case. Their violations are logged, not failed, and the
// case is skipped naming the note; remove the entry once the driver is fixed.
var knownIssues = map[string]string{}

// knownIssue is a testing.TB whose Errorf logs and counts instead of failing.
type knownIssue struct {
	testing.TB
	note string
	mu   sync.Mutex
	hits int
}

func (k *knownIssue) Errorf(format string, args ...any) {
	k.mu.Lock()
	k.hits++
	k.mu.Unlock()
	k.TB.Helper()
	logf(k.TB, "KNOWN ISSUE: "+format, args...)
}

// The connection killed in the middle of each mutating operation: for every
// network backend and each of rotate_all, suspend, deliver_signal, claim and
// complete, workers call the operation while another session kills the
// backend's connections (pg_terminate_backend of one busy session every 0-5
// ms; CLIENT KILL ID of every connection every 0-2 ms). Every error must be a retryable contract error; afterwards, on a
// fresh connection, every acknowledged write is there, every
// unacknowledged one is either wholly there or absent, and a retry with
// the same arguments converges.
func TestFaultConnectionKilled(t *testing.T) {
	workers, n := 4, sized(25, 250)
	for _, tg := range targets {
		if !tg.network {
			continue
		}
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range []struct {
				name string
				run  func(t testing.TB, tg target, v victim, workers, n int)
			}{
				{"RotateAll", killDuringRotate},
				{"Suspend", killDuringSuspend},
				{"DeliverSignal", killDuringDeliver},
				{"Claim", killDuringClaim},
				{"Complete", killDuringComplete},
			} {
				t.Run(c.name, func(t *testing.T) {
					note, known := knownIssues[tg.name+"/"+c.name]
					if !known {
						c.run(t, tg, newVictim(t, tg), workers, n)
						return
					}
					k := &knownIssue{TB: t, note: note}
					c.run(k, tg, newVictim(t, tg), workers, n)
					if k.hits > 0 {
						t.Skipf("known driver issue reproduced (%d violations logged above): %s", k.hits, note)
					}
					logf(t, "known issue %q did not reproduce in this run", note)
				})
			}
		})
	}
}

func killDuringRotate(t testing.TB, tg target, v victim, workers, n int) {
	e := openEngine(t, v.url, engine.WithKeystoreCache(0))
	seedOnce(t, e, "k0")
	var c tally
	var mu sync.Mutex
	acked, unacked := map[string]bool{}, map[string]bool{}
	kills := underKills(v, workers, n, func(w, i int) {
		kid := fmt.Sprintf("r-%d-%d", w, i)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: kid, NewSecret: secretOf(kid, 0), GraceMs: keystoreGraceMs})
		for _, en := range res.Entries {
			if en.Error != nil && err == nil {
				err = en.Error
			}
		}
		ok := c.record("rotate_all "+kid, err)
		mu.Lock()
		defer mu.Unlock()
		if ok {
			acked[kid] = true
		} else {
			unacked[kid] = true
		}
	})
	logf(t, "%s; %d connections killed", c.String(), kills)
	c.report(t)
	check := openEngine(t, v.url, engine.WithKeystoreCache(0))
	// Before any retry: every acknowledged kid is in every partition;
	// unacknowledged ones are in a partition wholly (their secret verifies)
	// or not at all.
	applied := checkKeystore(t, check, tg.partitions, acked, unacked)
	logf(t, "%d unacknowledged rotations were applied in at least one partition, %d in none", applied, len(unacked)-applied)
	for kid := range unacked {
		err := retry(func(ctx context.Context) error {
			res, err := check.RotateAll(ctx, contracts.RotateArgs{NewKid: kid, NewSecret: secretOf(kid, 0), GraceMs: keystoreGraceMs})
			if err == nil && res.Failed() {
				for _, en := range res.Entries {
					if en.Error != nil && !errorsIsConflictOnVerifying(en.Error) {
						return en.Error
					}
				}
			}
			return err
		})
		if err != nil {
			t.Errorf("retrying rotation %s: %v", kid, err)
		}
	}
	for kid := range unacked {
		acked[kid] = true
	}
	checkKeystore(t, check, tg.partitions, acked, nil)
}

// errorsIsConflictOnVerifying: a retried rotation whose kid was applied and
// then rotated away by a later one answers rotation_conflict (the kid is
// verifying); that is the kid's rotation having been applied.
func errorsIsConflictOnVerifying(e *contracts.Error) bool {
	return e.Code == contracts.CodeRotationConflict && strings.Contains(e.Detail, "verifying")
}

// checkKeystore checks every partition: one current kid; every kid of want
// current or verifying; every kid of maybe present wholly (verifies with its
// secret) or absent; every present kid verifies. It returns how many kids of
// maybe are present in at least one partition.
func checkKeystore(t testing.TB, e *engine.Engine, partitions int, want, maybe map[string]bool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ks, err := e.ListKids(ctx)
	if err != nil {
		t.Fatalf("list_kids: %v", err)
	}
	present := map[string]bool{}
	for _, p := range ks.Partitions {
		if p.CurrentKid == nil {
			t.Errorf("partition %d has no current kid", p.Partition)
			continue
		}
		kids := map[string]bool{*p.CurrentKid: true}
		for _, v := range p.Verifying {
			kids[v.Kid] = true
		}
		for kid := range want {
			if !kids[kid] {
				t.Errorf("partition %d lost acknowledged kid %s", p.Partition, kid)
			}
		}
		scope := scopeFor(p.Partition, partitions, 0)
		for kid := range kids {
			if maybe[kid] {
				present[kid] = true
			}
			msg := []byte("check")
			if _, err := e.Verify(ctx, contracts.VerifyArgs{Scope: scope, Message: msg, Token: driver.SignToken(kid, secretOf(kid, 0), driver.SignatureInput(kid, scope, msg))}); err != nil {
				t.Errorf("partition %d: kid %s is listed but its secret does not verify: %v", p.Partition, kid, err)
			}
		}
	}
	return len(present)
}

func killDuringSuspend(t testing.TB, _ target, v victim, workers, n int) {
	e := openEngine(t, v.url)
	seedOnce(t, e, "k0")
	var c tally
	var mu sync.Mutex
	acked, unacked := map[string]string{}, map[string]bool{} // exec -> suspension id
	args := func(exec string) contracts.SuspendArgs {
		return contracts.SuspendArgs{ExecutionID: exec, Condition: "all", IdempotencyKey: "ik",
			Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}, {Key: "c"}}}
	}
	kills := underKills(v, workers, n, func(w, i int) {
		exec := fmt.Sprintf("s-%d-%d", w, i)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := e.Suspend(ctx, args(exec))
		ok := c.record("suspend "+exec, err)
		mu.Lock()
		defer mu.Unlock()
		if ok {
			acked[exec] = res.SuspensionID
		} else {
			unacked[exec] = true
		}
	})
	logf(t, "%s; %d connections killed", c.String(), kills)
	c.report(t)
	check := openEngine(t, v.url)
	listed := listAll(t, check)
	for exec, sid := range acked {
		if x, ok := listed[exec]; !ok || x.SuspensionID != sid || x.Waitpoints != 3 {
			t.Errorf("acknowledged suspension %s of %s: listed as %+v (present %v)", sid, exec, x, ok)
		}
	}
	applied := 0
	for exec := range unacked {
		if x, ok := listed[exec]; ok {
			applied++
			if x.Waitpoints != 3 {
				t.Errorf("unacknowledged suspension of %s half-applied: %d of 3 waitpoints", exec, x.Waitpoints)
			}
		}
		var res contracts.SuspendOutcome
		err := retry(func(ctx context.Context) (err error) {
			res, err = check.Suspend(ctx, args(exec))
			return err
		})
		if err != nil {
			t.Errorf("retrying the suspension of %s with its idempotency key: %v", exec, err)
			continue
		}
		if x, ok := listed[exec]; ok && x.SuspensionID != res.SuspensionID {
			t.Errorf("retry of %s answered suspension %s, but %s was stored: the replay is not the first outcome", exec, res.SuspensionID, x.SuspensionID)
		}
	}
	logf(t, "%d unacknowledged suspensions were applied (wholly), %d not", applied, len(unacked)-applied)
	if got := len(listAll(t, check)); got != workers*n {
		t.Errorf("%d executions suspended after the retries, want %d", got, workers*n)
	}
}

// listAll pages through list_suspended.
func listAll(t testing.TB, e *engine.Engine) map[string]contracts.SuspendedExecution {
	t.Helper()
	out := map[string]contracts.SuspendedExecution{}
	cursor := ""
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: contracts.MaxListLimit, Cursor: cursor})
		cancel()
		if err != nil {
			t.Fatalf("list_suspended: %v", err)
		}
		for _, x := range res.Executions {
			if _, dup := out[x.ExecutionID]; dup {
				t.Errorf("list_suspended visited %s twice", x.ExecutionID)
			}
			out[x.ExecutionID] = x
		}
		if res.NextCursor == nil {
			return out
		}
		cursor = *res.NextCursor
	}
}

// suspendOne suspends exec on the given keys and fails t on an error.
func suspendOne(t testing.TB, e *engine.Engine, exec, cond string, keys ...string) contracts.SuspendOutcome {
	t.Helper()
	a := contracts.SuspendArgs{ExecutionID: exec, Condition: cond}
	for _, k := range keys {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: k})
	}
	var res contracts.SuspendOutcome
	if err := retry(func(ctx context.Context) (err error) { res, err = e.Suspend(ctx, a); return err }); err != nil {
		t.Fatalf("suspend %s: %v", exec, err)
	}
	return res
}

func killDuringDeliver(t testing.TB, _ target, v victim, workers, n int) {
	e := openEngine(t, v.url)
	seedOnce(t, e, "k0")
	// One suspension per worker, condition all over two waitpoints; every
	// delivery goes to the first, so none resumes and all are accepted.
	wps := make([]contracts.WaitpointOutcome, workers)
	for w := range workers {
		wps[w] = suspendOne(t, e, fmt.Sprintf("d-%d", w), "all", "a", "b").Waitpoints[0]
	}
	type sent struct {
		w        int
		payload  string
		idem     string
		signalID string
	}
	var c tally
	var mu sync.Mutex
	var acked, unacked []sent
	deliver := func(ctx context.Context, e *engine.Engine, s sent) (contracts.DeliverSignalOutcome, error) {
		return e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: fmt.Sprintf("d-%d", s.w), WaitpointID: wps[s.w].WaitpointID,
			Token: wps[s.w].Token, Name: "sig", Payload: json.RawMessage(`"` + s.payload + `"`), IdempotencyKey: s.idem})
	}
	kills := underKills(v, workers, n, func(w, i int) {
		s := sent{w: w, payload: fmt.Sprintf("p-%d-%d", w, i)}
		if i%2 == 0 {
			s.idem = s.payload
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := deliver(ctx, e, s)
		ok := c.record("deliver_signal "+s.payload, err)
		mu.Lock()
		defer mu.Unlock()
		if ok {
			s.signalID = res.SignalID
			acked = append(acked, s)
		} else {
			unacked = append(unacked, s)
		}
	})
	logf(t, "%s; %d connections killed", c.String(), kills)
	c.report(t)
	check := openEngine(t, v.url)
	observed := func() map[string][]string { // payload -> signal ids
		out := map[string][]string{}
		for w := range workers {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			res, err := check.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: fmt.Sprintf("d-%d", w)})
			cancel()
			if err != nil {
				t.Fatalf("observe: %v", err)
			}
			for _, s := range res.Signals {
				var p string
				_ = json.Unmarshal(s.Payload, &p)
				out[p] = append(out[p], s.SignalID)
			}
		}
		return out
	}
	seen := observed()
	for _, s := range acked {
		if ids := seen[s.payload]; len(ids) != 1 || ids[0] != s.signalID {
			t.Errorf("acknowledged signal %s (%s): observed as %v", s.signalID, s.payload, ids)
		}
	}
	applied := 0
	for _, s := range unacked {
		switch ids := seen[s.payload]; {
		case len(ids) > 1:
			t.Errorf("unacknowledged delivery %s (idempotency key %q) recorded %d times", s.payload, s.idem, len(ids))
		case len(ids) == 1:
			applied++
		}
		if s.idem == "" {
			continue // a client cannot retry these safely
		}
		if err := retry(func(ctx context.Context) error { _, err := deliver(ctx, check, s); return err }); err != nil {
			t.Errorf("retrying delivery %s: %v", s.payload, err)
		}
	}
	logf(t, "%d unacknowledged deliveries were recorded (once), %d not", applied, len(unacked)-applied)
	for _, s := range unacked {
		if ids := observed()[s.payload]; s.idem != "" && len(ids) != 1 {
			t.Errorf("after its retry, delivery %s is recorded %d times, want 1", s.payload, len(ids))
		}
	}
}

func killDuringClaim(t testing.TB, _ target, v victim, workers, n int) {
	e := openEngine(t, v.url)
	seedOnce(t, e, "k0")
	total := workers * n / 2
	for i := range total {
		s := suspendOne(t, e, fmt.Sprintf("c-%d", i), "any", "a")
		if err := retry(func(ctx context.Context) error {
			_, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: fmt.Sprintf("c-%d", i),
				WaitpointID: s.Waitpoints[0].WaitpointID, Token: s.Waitpoints[0].Token, Name: "go", IdempotencyKey: "once"})
			return err
		}); err != nil {
			t.Fatalf("deliver: %v", err)
		}
	}
	var c tally
	var mu sync.Mutex
	leases := map[string]string{}
	unackedCalls := 0
	kills := underKills(v, workers, n, func(w, i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: fmt.Sprintf("w%d", w), LeaseMs: leaseMs})
		ok := c.record("claim", err)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !ok:
			unackedCalls++
		case res.Outcome == contracts.OutcomeClaimed:
			if _, dup := leases[res.ExecutionID]; dup {
				t.Errorf("%s claimed twice by acknowledged claims", res.ExecutionID)
			}
			leases[res.ExecutionID] = res.LeaseID
		}
	})
	logf(t, "%s; %d connections killed", c.String(), kills)
	c.report(t)
	check := openEngine(t, v.url)
	for exec, lease := range leases {
		if err := retry(func(ctx context.Context) error {
			_, err := check.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: exec, LeaseID: lease})
			return err
		}); err != nil {
			t.Errorf("complete %s with its acknowledged lease: %v", exec, err)
		}
	}
	remaining := 0
	for {
		var res contracts.ClaimOutcome
		if err := retry(func(ctx context.Context) (err error) {
			res, err = check.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "after", LeaseMs: leaseMs})
			return err
		}); err != nil {
			t.Fatalf("claim after: %v", err)
		}
		if res.Outcome != contracts.OutcomeClaimed {
			break
		}
		remaining++
	}
	stuck := total - len(leases) - remaining
	logf(t, "%d executions: %d claimed by acknowledged claims, %d still claimable, %d held by unacknowledged claims (of %d failed claim calls; free again when their lease expires)",
		total, len(leases), remaining, stuck, unackedCalls)
	if stuck < 0 || stuck > unackedCalls {
		t.Errorf("%d executions unaccounted for, with %d unacknowledged claim calls", stuck, unackedCalls)
	}
}

func killDuringComplete(t testing.TB, _ target, v victim, workers, n int) {
	e := openEngine(t, v.url)
	seedOnce(t, e, "k0")
	total := workers * n
	leases := make([]string, total)
	for i := range total {
		exec := fmt.Sprintf("x-%04d", i)
		s := suspendOne(t, e, exec, "any", "a")
		if err := retry(func(ctx context.Context) error {
			_, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: exec,
				WaitpointID: s.Waitpoints[0].WaitpointID, Token: s.Waitpoints[0].Token, Name: "go", IdempotencyKey: "once"})
			return err
		}); err != nil {
			t.Fatalf("deliver: %v", err)
		}
	}
	byExec := map[string]string{}
	for range total {
		var res contracts.ClaimOutcome
		if err := retry(func(ctx context.Context) (err error) {
			res, err = e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "setup", LeaseMs: leaseMs})
			return err
		}); err != nil || res.Outcome != contracts.OutcomeClaimed {
			t.Fatalf("claim: %v %+v", err, res)
		}
		byExec[res.ExecutionID] = res.LeaseID
	}
	for i := range total {
		leases[i] = byExec[fmt.Sprintf("x-%04d", i)]
	}
	var c tally
	var mu sync.Mutex
	var unacked []int
	kills := underKills(v, workers, n, func(w, i int) {
		j := w*n + i
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: fmt.Sprintf("x-%04d", j), LeaseID: leases[j]})
		if !c.record("complete", err) {
			mu.Lock()
			unacked = append(unacked, j)
			mu.Unlock()
		}
	})
	logf(t, "%s; %d connections killed", c.String(), kills)
	c.report(t)
	check := openEngine(t, v.url)
	applied := 0
	for _, j := range unacked {
		err := retry(func(ctx context.Context) error {
			_, err := check.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: fmt.Sprintf("x-%04d", j), LeaseID: leases[j]})
			return err
		})
		switch {
		case err == nil:
		case isCode(err, contracts.CodeExecutionNotFound):
			applied++
		default:
			t.Errorf("retrying complete x-%04d: %v", j, err)
		}
	}
	logf(t, "%d unacknowledged completes had been applied, %d not (completed by the retry)", applied, len(unacked)-applied)
	for i := range total {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := check.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: fmt.Sprintf("x-%04d", i)})
		cancel()
		if !isCode(err, contracts.CodeExecutionNotFound) {
			t.Errorf("x-%04d after complete: %v, want execution_not_found", i, err)
		}
	}
}

func isCode(err error, code string) bool { return errCode(err) == code }
