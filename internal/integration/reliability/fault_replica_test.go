package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// replicaPartitions is P of the replica test.
const replicaPartitions = 4

// lagBytes is how far (in replication stream bytes) the stopped replica
// falls behind before the primary is killed, at least: well past what the
// loopback sockets buffer for it.
const lagBytes = 8 << 20

// A primary with one replica (standalone; valkey-server 8 and redis-server
// 7 when installed), under load, whose replica lags: it is stopped
// (SIGSTOP) while suspensions and signals with 8 KiB payloads go on, so
// that the primary's replication stream piles up (at least 8 MiB when no
// write waits for the replica); then the primary is
// killed (SIGKILL), the replica continued (SIGCONT) and promoted (REPLICAOF
// NO ONE), and a fresh Engine on it looks for every acknowledged
// suspension and signal. Without wait_replicas the test requires that it
// finds some lost (asynchronous replication loses what the replica had not
// received: the fault works) and logs how many; with wait_replicas=1 it
// requires that none is lost, the writes during the stall having answered
// replication_unconfirmed (retryable, not acknowledged). The long version
// runs 3 rounds with a 5 s stall instead of 1 round with 2 s.
func TestFaultReplicaLag(t *testing.T) {
	rounds, stall := sized(1, 3), sized(2*time.Second, 5*time.Second)
	for _, fam := range kvFamilies {
		for _, wait := range []int{0, 1} {
			t.Run(fmt.Sprintf("%s/wait_replicas=%d", fam.name, wait), func(t *testing.T) {
				t.Parallel()
				var lost, acked, unconfirmed int
				for round := range rounds {
					r := replicaLagRound(t, fam, wait, stall)
					logf(t, "round %d: %s; primary %d bytes ahead of the replica at the kill; promoted after %v; %d acknowledged writes (suspensions and signals), %d lost",
						round+1, r.tally, r.behind, r.promoted.Round(time.Millisecond), r.acked, r.lost)
					lost, acked, unconfirmed = lost+r.lost, acked+r.acked, unconfirmed+r.unconfirmed
				}
				if wait == 0 {
					if lost == 0 {
						t.Errorf("no acknowledged write was lost over %d rounds: the fault did not make the replica lag", rounds)
					}
					logf(t, "without wait_replicas: %d of %d acknowledged writes lost over %d rounds (allowed: replication is asynchronous)", lost, acked, rounds)
					return
				}
				if lost != 0 {
					t.Errorf("wait_replicas=1: %d of %d acknowledged writes lost", lost, acked)
				}
				if unconfirmed == 0 {
					t.Errorf("wait_replicas=1: no write answered replication_unconfirmed while the replica was stopped")
				}
				logf(t, "wait_replicas=1: %d acknowledged writes, none lost; %d writes answered replication_unconfirmed", acked, unconfirmed)
			})
		}
	}
}

// replicaLagResult is what one round found.
type replicaLagResult struct {
	tally                    string
	behind                   int64 // replication bytes the primary had that the replica had not confirmed
	promoted                 time.Duration
	acked, lost, unconfirmed int
}

func replicaLagRound(t *testing.T, fam kvFamily, wait int, stall time.Duration) replicaLagResult {
	t.Helper()
	pair := newKVPair(t, fam)
	raw := kvURL(pair.primary, replicaPartitions, "rel:")
	if wait > 0 {
		raw += fmt.Sprintf("&wait_replicas=%d&wait_timeout=200ms", wait)
	}
	e := openEngine(t, raw, engine.WithKeystoreCache(0))
	seedOnce(t, e, "k0")
	l := &restartLoad{e: e, acked: map[string]ackedSuspension{}}
	payload := lagPayload()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				l.suspendDeliver(fmt.Sprintf("rl-%d-%d", w, i), payload)
			}
		})
	}
	time.Sleep(time.Second)
	pair.replica.signal(t, syscall.SIGSTOP)
	time.Sleep(stall)
	if wait == 0 {
		// On a slow machine, go on until the stream outgrows what the
		// sockets can buffer for the stopped replica.
		waitFor(15*time.Second, func() bool {
			return replOffset(pair.primary, "master_repl_offset")-replOffset(pair.primary, "slave0.offset") > lagBytes
		})
	}
	var res replicaLagResult
	res.behind = replOffset(pair.primary, "master_repl_offset") - replOffset(pair.primary, "slave0.offset")
	pair.primary.Kill()
	killed := time.Now()
	close(stop)
	wg.Wait()
	pair.replica.signal(t, syscall.SIGCONT)
	if _, err := pair.replica.do("REPLICAOF", "NO", "ONE"); err != nil {
		t.Fatalf("REPLICAOF NO ONE: %v", err)
	}
	if !waitFor(10*time.Second, func() bool { return pair.replica.info("replication")["role"] == "master" }) {
		t.Fatalf("the replica was not promoted")
	}
	res.promoted = time.Since(killed)
	l.tally.report(t)
	res.tally = l.tally.String()
	for code, n := range l.tally.failures {
		if code == contracts.CodeReplicationUnconfirmed {
			res.unconfirmed += n
		}
	}
	res.acked, res.lost = l.countLost(t, openEngine(t, kvURL(pair.replica, replicaPartitions, "rel:"), engine.WithKeystoreCache(0)))
	return res
}

// lagPayload is an 8 KiB JSON payload: big signals make the replication
// stream outgrow what the sockets buffer while the replica is stopped.
func lagPayload() json.RawMessage {
	b, _ := json.Marshal(map[string]string{"fill": strings.Repeat("x", 8<<10)})
	return b
}

// suspendDeliver suspends exec on one waitpoint and delivers a signal with
// payload to it, recording what was acknowledged.
func (l *restartLoad) suspendDeliver(exec string, payload json.RawMessage) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := l.e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: exec, Condition: "any", IdempotencyKey: "ik",
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
	if !l.record("suspend", err) {
		return
	}
	l.mu.Lock()
	l.acked[exec] = ackedSuspension{suspensionID: s.SuspensionID}
	l.mu.Unlock()
	d, err := l.e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: s.Waitpoints[0].WaitpointID,
		Token: s.Waitpoints[0].Token, Name: "n", Payload: payload, IdempotencyKey: "once"})
	if l.record("deliver_signal", err) {
		l.mu.Lock()
		l.acked[exec] = ackedSuspension{suspensionID: s.SuspensionID, signalID: d.SignalID}
		l.mu.Unlock()
	}
}

// countLost looks for every acknowledged suspension and signal through e
// and returns how many were acknowledged and how many are missing.
func (l *restartLoad) countLost(t testing.TB, e *engine.Engine) (acked, lost int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for exec, a := range l.acked {
		acked++
		if a.signalID != "" {
			acked++
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: exec})
		cancel()
		switch {
		case isCode(err, contracts.CodeExecutionNotFound):
			lost++ // the suspension
			if a.signalID != "" {
				lost++
			}
		case err != nil:
			t.Errorf("%s: observe: %v", exec, err)
		case res.SuspensionID != a.suspensionID:
			t.Errorf("%s: suspension %s, acknowledged %s", exec, res.SuspensionID, a.suspensionID)
		case a.signalID != "" && (len(res.Signals) != 1 || res.Signals[0].SignalID != a.signalID):
			lost++
		}
	}
	return acked, lost
}

// replOffset reads an offset from n's INFO replication: a plain field
// (master_repl_offset), or "slave0.offset" from the slave0 line.
func replOffset(n *kvNode, field string) int64 {
	info := n.info("replication")
	if name, sub, ok := strings.Cut(field, "."); ok {
		for _, kv := range strings.Split(info[name], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok && k == sub {
				var x int64
				_, _ = fmt.Sscan(v, &x)
				return x
			}
		}
		return 0
	}
	var x int64
	_, _ = fmt.Sscan(info[field], &x)
	return x
}
