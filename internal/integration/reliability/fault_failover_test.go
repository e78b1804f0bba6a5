package reliability

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// failoverPartitions is P of the failover test: enough partitions for
// every master of a 3-master cluster to hold several.
const failoverPartitions = 16

// failoverBudget is how long after a master's SIGKILL calls touching its
// slots may go on failing: the cluster's own failover (cluster-node-timeout
// plus the replica's election, ~3 s here) and the driver's topology refresh.
const failoverBudget = 10 * time.Second

// A master of a cluster (3 masters, 1 replica each; valkey-server 8 and
// redis-server 7 when installed) killed with SIGKILL under load: suspend,
// deliver and claim through an Engine over a valkey+cluster URL, and the
// same suspend and deliver through a second Engine with wait_replicas=1.
// Checks, per kill: calls touching the dead master's slots succeed again
// within failoverBudget of the kill (the driver refreshes the cluster's
// topology when a call meets a connection error, MOVED or CLUSTERDOWN, so
// it does not wait for go-redis' 60 s reload); every error is retryable;
// every suspension and signal acknowledged before a fence (a write on the
// master followed by WAIT 1, so its replica had them) is there afterwards,
// and those acknowledged between the fence and the kill are counted when
// lost (asynchronous replication: the contract allows it, docs/spec.md
// §6.1); with wait_replicas=1 no acknowledged write is lost. The long
// version kills 4 times, restarting each killed node (it rejoins as a
// replica) before the next kill.
func TestFaultClusterFailover(t *testing.T) {
	kills := sized(1, 4)
	for _, fam := range kvFamilies {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			c := newKVCluster(t, fam, 3, 1)
			raw := c.url(failoverPartitions, "rel:")
			e := openEngine(t, raw, engine.WithKeystoreCache(0))
			ew := openEngine(t, withParams(t, raw, "wait_replicas", "1", "wait_timeout", "500ms"), engine.WithKeystoreCache(0))
			seedOnce(t, e, "k0")
			plain := &failoverLoad{e: e, name: "fo", acked: map[string]ackedSuspension{}, ackedAt: map[string]time.Time{}}
			waited := &failoverLoad{e: ew, name: "fw", acked: map[string]ackedSuspension{}, ackedAt: map[string]time.Time{}}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() { plain.run(w, stop) })
			}
			wg.Go(func() { plain.claims(stop) })
			for w := range 2 {
				wg.Go(func() { waited.run(w, stop) })
			}
			var snapshots []map[string]ackedSuspension
			for round := range kills {
				time.Sleep(sized(time.Second, 3*time.Second))
				victim, replica, parts := failoverVictim(t, c)
				plain.setAffected(parts)
				waited.setAffected(parts)
				snapshots = append(snapshots, plain.snapshot())
				for p := range parts {
					fence(t, victim, p)
					break
				}
				victim.Kill()
				killed := time.Now()
				promoted := awaitPromotion(t, replica, killed)
				waitFor(90*time.Second, func() bool { return plain.recovered(killed, 2*time.Second) })
				r := plain.recovery(killed)
				logf(t, "kill %d of %s (%d of %d partitions): replica promoted %v after the kill; calls on its slots failed until %v after the kill (first success %v, %v after the promotion; %d failed, %s); other slots: %d failed",
					round+1, victim.Addr(), len(parts), failoverPartitions, promoted.Round(time.Millisecond),
					r.lastFail.Round(time.Millisecond), r.firstOK.Round(time.Millisecond), (r.firstOK - promoted).Round(time.Millisecond),
					r.failed, r.codes, r.otherFailed)
				if r.firstOK < 0 {
					t.Errorf("kill %d: no call on the dead master's slots succeeded within 90 s", round+1)
				} else if r.lastFail > failoverBudget {
					t.Errorf("kill %d: calls on the dead master's slots failed until %v after the kill, over %v", round+1, r.lastFail.Round(time.Millisecond), failoverBudget)
				}
				if round+1 < kills {
					victim.Restart(t) // it rejoins as a replica of its successor
					if !waitFor(60*time.Second, func() bool { return c.healthy(3, 3) }) {
						t.Fatalf("the cluster did not heal after the restart: %s", c.describe())
					}
				}
			}
			time.Sleep(500 * time.Millisecond)
			close(stop)
			wg.Wait()
			plain.tally.report(t)
			waited.tally.report(t)
			logf(t, "plain: %s; wait_replicas=1: %s", plain.tally.String(), waited.tally.String())
			check := openEngine(t, raw, engine.WithKeystoreCache(0))
			fenced := map[string]bool{}
			for _, s := range snapshots {
				for exec := range s {
					fenced[exec] = true
				}
			}
			lost := plain.verify(t, check, fenced)
			logf(t, "plain: %d acknowledged suspensions (%d before a fence, none lost); %d acknowledged writes between a fence and its kill lost (allowed)", len(plain.acked), len(fenced), lost)
			if lost := waited.verify(t, check, nil); lost != 0 {
				t.Errorf("wait_replicas=1: %d acknowledged writes lost", lost)
			}
			logf(t, "wait_replicas=1: %d acknowledged suspensions, none lost", len(waited.acked))
		})
	}
}

// failoverVictim picks the master serving the most partitions and returns
// it, its replica and those partitions.
func failoverVictim(t testing.TB, c *kvCluster) (victim, replica *kvNode, parts map[int]bool) {
	t.Helper()
	by := map[*kvNode]map[int]bool{}
	ids := map[*kvNode]string{}
	for p := range failoverPartitions {
		n, ni := c.masterOfSlot(c.keySlot(t, "{p:"+strconv.Itoa(p)+"}"))
		if n == nil {
			t.Fatalf("no master serves partition %d: %s", p, c.describe())
		}
		if by[n] == nil {
			by[n] = map[int]bool{}
		}
		by[n][p] = true
		ids[n] = ni.id
	}
	for n, ps := range by {
		if victim == nil || len(ps) > len(by[victim]) {
			victim = n
		}
	}
	for _, ni := range c.nodesView() {
		if !ni.master && ni.masterID == ids[victim] {
			replica = c.node(ni.addr)
		}
	}
	if replica == nil {
		t.Fatalf("master %s has no replica: %s", victim.Addr(), c.describe())
	}
	return victim, replica, by[victim]
}

// fence writes a key of partition p on its master n and waits until one
// replica confirmed it: the replica then holds every write n acknowledged
// before.
func fence(t testing.TB, n *kvNode, p int) {
	t.Helper()
	c := n.Client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pipe := c.Pipeline()
	pipe.Set(ctx, "fence{p:"+strconv.Itoa(p)+"}", time.Now().String(), 0)
	wait := pipe.Do(ctx, "WAIT", 1, 5000)
	_, _ = pipe.Exec(ctx)
	if n, err := wait.Int64(); err != nil || n < 1 {
		t.Fatalf("fence: %v (%d replicas confirmed)", err, n)
	}
}

// awaitPromotion waits until replica r calls itself a master, and returns
// when that was seen, relative to killed.
func awaitPromotion(t testing.TB, r *kvNode, killed time.Time) time.Duration {
	t.Helper()
	if !waitFor(60*time.Second, func() bool { return r.info("replication")["role"] == "master" }) {
		t.Fatalf("replica %s was not promoted within 60 s", r.Addr())
	}
	return time.Since(killed)
}

// failoverCall is one call of the load.
type failoverCall struct {
	start, end time.Time
	affected   bool // touched a partition of the killed master
	err        error
}

// failoverLoad is the load of one Engine: each step suspends a fresh
// execution on one waitpoint and delivers a signal to it (resuming it).
type failoverLoad struct {
	e       *engine.Engine
	name    string
	tally   tally
	mu      sync.Mutex
	acked   map[string]ackedSuspension
	ackedAt map[string]time.Time
	calls   []failoverCall
	parts   map[int]bool
}

func (l *failoverLoad) setAffected(parts map[int]bool) {
	l.mu.Lock()
	l.parts = parts
	l.mu.Unlock()
}

func (l *failoverLoad) snapshot() map[string]ackedSuspension {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]ackedSuspension, len(l.acked))
	for k, v := range l.acked {
		out[k] = v
	}
	return out
}

// call runs f and records it; all is true for calls that touch every
// partition (claim).
func (l *failoverLoad) call(what, exec string, all bool, f func(ctx context.Context) error) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	start := time.Now()
	err := f(ctx)
	cancel()
	end := time.Now()
	l.mu.Lock()
	affected := all || l.parts[driver.PartitionOf(exec, failoverPartitions)]
	l.calls = append(l.calls, failoverCall{start: start, end: end, affected: affected, err: err})
	l.mu.Unlock()
	if !l.tally.record(what, err) {
		time.Sleep(10 * time.Millisecond) // a client's back-off
		return false
	}
	return true
}

func (l *failoverLoad) run(w int, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		exec := fmt.Sprintf("%s-%d-%d", l.name, w, i)
		var s contracts.SuspendOutcome
		if !l.call("suspend", exec, false, func(ctx context.Context) (err error) {
			s, err = l.e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: exec, Condition: "any", IdempotencyKey: "ik",
				Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
			return err
		}) {
			continue
		}
		l.mu.Lock()
		l.acked[exec] = ackedSuspension{suspensionID: s.SuspensionID}
		l.ackedAt[exec] = time.Now()
		l.mu.Unlock()
		var d contracts.DeliverSignalOutcome
		if l.call("deliver_signal", exec, false, func(ctx context.Context) (err error) {
			d, err = l.e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: s.Waitpoints[0].WaitpointID,
				Token: s.Waitpoints[0].Token, Name: "n", IdempotencyKey: "once"})
			return err
		}) {
			l.mu.Lock()
			l.acked[exec] = ackedSuspension{suspensionID: s.SuspensionID, signalID: d.SignalID}
			l.mu.Unlock()
		}
	}
}

// claims claims resumed executions with a long lease (they stay readable).
func (l *failoverLoad) claims(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		l.call("claim", "", true, func(ctx context.Context) error {
			_, err := l.e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 600_000})
			return err
		})
	}
}

// failoverRecovery is what the calls on the dead master's slots did after
// a kill: the end of the last failed one and of the first successful one
// (-1 when none), relative to the kill.
type failoverRecovery struct {
	lastFail, firstOK, lastOK time.Duration
	failed                    int
	codes                     string
	otherFailed               int
}

func (l *failoverLoad) recovery(killed time.Time) failoverRecovery {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := failoverRecovery{firstOK: -1, lastOK: -1}
	codes := map[string]int{}
	for _, c := range l.calls {
		if c.end.Before(killed) {
			continue
		}
		switch {
		case c.err != nil && c.affected:
			r.failed++
			codes[errCode(c.err)]++
			r.lastFail = max(r.lastFail, c.end.Sub(killed))
		case c.err != nil:
			r.otherFailed++
		case c.affected && c.start.After(killed):
			if r.firstOK < 0 || c.end.Sub(killed) < r.firstOK {
				r.firstOK = c.end.Sub(killed)
			}
			r.lastOK = max(r.lastOK, c.end.Sub(killed))
		}
	}
	var keys []string
	for k, n := range codes {
		keys = append(keys, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(keys)
	r.codes = fmt.Sprint(keys)
	return r
}

// recovered reports whether, since the kill, calls on the dead master's
// slots succeeded after the last one that failed, and none failed for
// quiet.
func (l *failoverLoad) recovered(killed time.Time, quiet time.Duration) bool {
	r := l.recovery(killed)
	return r.lastOK > r.lastFail && time.Since(killed.Add(r.lastFail)) > quiet
}

// verify reads every acknowledged suspension through e. Those in must
// (every one when must is nil) are required; the others are counted when
// lost. It returns the number of acknowledged writes (suspensions and
// signals) lost outside must.
func (l *failoverLoad) verify(t testing.TB, e *engine.Engine, must map[string]bool) int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	lost := 0
	for exec, a := range l.acked {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: exec})
		cancel()
		var problem string
		switch {
		case err != nil && !isCode(err, contracts.CodeExecutionNotFound):
			t.Errorf("%s: observe: %v", exec, err)
			continue
		case err != nil:
			problem = "suspension lost"
		case res.SuspensionID != a.suspensionID:
			problem = fmt.Sprintf("suspension %s, acknowledged %s", res.SuspensionID, a.suspensionID)
		case a.signalID != "" && (len(res.Signals) != 1 || res.Signals[0].SignalID != a.signalID):
			problem = fmt.Sprintf("acknowledged signal %s, observed %v", a.signalID, signalIDs(res.Signals))
		default:
			continue
		}
		if must == nil || must[exec] {
			t.Errorf("%s (acknowledged at %s): %s", exec, l.ackedAt[exec].Format("15:04:05.000"), problem)
			continue
		}
		lost++
	}
	return lost
}
