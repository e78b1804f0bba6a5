package reliability

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// The server restarted under load, on private durable servers (PostgreSQL
// with fsync on, stopped in immediate mode; redis-server with appendonly
// yes + appendfsync always, killed with SIGKILL): while it is down every
// call fails with a retryable transport (or contention) error, the clients
// recover on their own once it is back, and every acknowledged write —
// suspensions, signals, rotations — is there afterwards.
func TestFaultServerRestart(t *testing.T) {
	restarts := sized(1, 5)
	for _, c := range []struct {
		name string
		open func(t testing.TB) server
	}{
		{"postgres", func(t testing.TB) server { return newPgServer(t) }},
		{"valkey", func(t testing.TB) server { return newRedisServer(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := c.open(t)
			e := openEngine(t, srv.url(), engine.WithKeystoreCache(0))
			seedOnce(t, e, "k0")
			l := &restartLoad{e: e, acked: map[string]ackedSuspension{}}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() { l.run(w, stop) })
			}
			for range restarts {
				time.Sleep(time.Second)
				before := l.ok.Load()
				srv.crash(t)
				down := time.Now()
				time.Sleep(time.Second)
				srv.start(t)
				up := time.Now()
				if !waitFor(30*time.Second, func() bool { return l.ok.Load() > before+20 }) {
					t.Errorf("clients did not recover within 30 s of the restart")
				}
				logf(t, "down %v; first acknowledged call %v after the server was back", up.Sub(down).Round(time.Millisecond), l.firstOKAfter(up).Round(time.Millisecond))
			}
			time.Sleep(500 * time.Millisecond)
			close(stop)
			wg.Wait()
			l.tally.report(t)
			logf(t, "%s over %d restarts", l.tally.String(), restarts)
			l.verify(t, openEngine(t, srv.url(), engine.WithKeystoreCache(0)))
		})
	}
}

type ackedSuspension struct {
	suspensionID string
	signalID     string // "" until the delivery is acknowledged
}

// restartLoad is the load of one restart test: each step suspends a fresh
// execution, delivers a signal to it, and every tenth step rotates.
type restartLoad struct {
	e     *engine.Engine
	tally tally
	ok    atomic.Int64
	mu    sync.Mutex
	acked map[string]ackedSuspension
	kids  []string
	oks   []time.Time
}

func (l *restartLoad) record(what string, err error) bool {
	if !l.tally.record(what, err) {
		time.Sleep(10 * time.Millisecond) // a client's back-off
		return false
	}
	l.ok.Add(1)
	l.mu.Lock()
	l.oks = append(l.oks, time.Now())
	l.mu.Unlock()
	return true
}

func (l *restartLoad) firstOKAfter(t0 time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range l.oks {
		if t.After(t0) {
			return t.Sub(t0)
		}
	}
	return -1
}

func (l *restartLoad) run(w int, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		l.step(w, i)
	}
}

func (l *restartLoad) step(w, i int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if i%10 == 9 {
		kid := fmt.Sprintf("rr-%d-%d", w, i)
		res, err := l.e.RotateAll(ctx, contracts.RotateArgs{NewKid: kid, NewSecret: secretOf(kid, 0), GraceMs: keystoreGraceMs})
		if err == nil && res.Failed() {
			for _, en := range res.Entries {
				if en.Error != nil {
					err = en.Error
				}
			}
		}
		if l.record("rotate_all", err) {
			l.mu.Lock()
			l.kids = append(l.kids, kid)
			l.mu.Unlock()
		}
		return
	}
	exec := fmt.Sprintf("rs-%d-%d", w, i)
	s, err := l.e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: exec, Condition: "all", IdempotencyKey: "ik",
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})
	if !l.record("suspend", err) {
		return
	}
	l.mu.Lock()
	l.acked[exec] = ackedSuspension{suspensionID: s.SuspensionID}
	l.mu.Unlock()
	d, err := l.e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: s.Waitpoints[0].WaitpointID,
		Token: s.Waitpoints[0].Token, Name: "n", IdempotencyKey: "once"})
	if l.record("deliver_signal", err) {
		l.mu.Lock()
		l.acked[exec] = ackedSuspension{suspensionID: s.SuspensionID, signalID: d.SignalID}
		l.mu.Unlock()
	}
}

// verify finds every acknowledged write through a fresh engine.
func (l *restartLoad) verify(t *testing.T, e *engine.Engine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ack := map[string]bool{"k0": true}
	for _, k := range l.kids {
		ack[k] = true
	}
	checkKeystore(t, e, valkeyOrOne(e), ack, nil)
	signals := 0
	for exec, a := range l.acked {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: exec})
		cancel()
		switch {
		case err != nil:
			t.Errorf("acknowledged suspension of %s: %v", exec, err)
		case res.SuspensionID != a.suspensionID:
			t.Errorf("%s: suspension %s, acknowledged %s", exec, res.SuspensionID, a.suspensionID)
		case a.signalID != "" && (len(res.Signals) != 1 || res.Signals[0].SignalID != a.signalID):
			t.Errorf("%s: acknowledged signal %s, observed %v", exec, a.signalID, signalIDs(res.Signals))
		case a.signalID != "":
			signals++
		}
	}
	logf(t, "after the restarts: %d acknowledged suspensions, %d acknowledged signals, %d acknowledged rotations: none lost",
		len(l.acked), signals, len(l.kids))
}

func valkeyOrOne(e *engine.Engine) int { return e.Capabilities().Partitions }
