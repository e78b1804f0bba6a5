package reliability

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// crashModeLifecycle selects crashLifecycleChild in the child process.
const crashModeLifecycle = "lifecycle"

// lcCrashArgs is the suspend of step i of crashLifecycleChild: even steps
// wait on the pending waitpoint and a new one (condition all), odd steps
// use the pending waitpoint alone (condition any: already_satisfied once it
// holds its signal). The idempotency key makes the call one a client
// would retry.
func lcCrashArgs(exec, pending string, i int) contracts.SuspendArgs {
	a := contracts.SuspendArgs{ExecutionID: exec, Condition: contracts.ConditionAny, IdempotencyKey: "ik",
		Waitpoints: []contracts.WaitpointSpec{{Pending: pending}}}
	if i%2 == 0 {
		a.Condition, a.Waitpoints = contracts.ConditionAll, append(a.Waitpoints, contracts.WaitpointSpec{Key: "k"})
	}
	return a
}

// crashLifecycleChild writes until it is killed: each step creates a
// pending waitpoint for a fresh execution, delivers a signal to it, suspends
// using it (lcCrashArgs) and, when the suspension waits, cancels it. It
// prints one "ack" line per acknowledged write, after the call returned:
// the fingerprint of a token, never the token.
func crashLifecycleChild(e *engine.Engine, round string) {
	ctx := context.Background()
	for i := 0; ; i++ {
		exec := fmt.Sprintf("lc-%s-%04d", round, i)
		p, err := e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: exec, Key: "p", ExpiresInMs: pendingExpiresMs})
		if err != nil {
			continue
		}
		fmt.Println("ack create", exec, p.WaitpointID, driver.TokenFingerprint(p.Token))
		d, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: p.WaitpointID, Token: p.Token, Name: "n", IdempotencyKey: "once"})
		if err != nil {
			continue
		}
		fmt.Println("ack deliver", exec, d.SignalID)
		s, err := e.Suspend(ctx, lcCrashArgs(exec, p.WaitpointID, i))
		if err != nil {
			continue
		}
		fmt.Println("ack suspend", exec, s.SuspensionID, s.Outcome)
		if i%2 == 0 {
			if _, err := e.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: exec}); err == nil {
				fmt.Println("ack cancel", exec)
			}
		}
	}
}

// lcAcked is what the child acknowledged for one execution.
type lcAcked struct {
	step                 int
	pending, fingerprint string
	signal               string
	suspension, outcome  string
	cancelled            bool
}

// The process killed (SIGKILL) in the middle of the writes of version 2 of
// the waitpoint lifecycle, for SQLite (docs/spec.md §8.1, §8.5): a child
// creates pending waitpoints, delivers to them, suspends using them
// (suspended or already_satisfied) and cancels, and is killed after a
// random 150-450 ms, several times. After each kill, for every execution
// whose create was acknowledged: its pending waitpoint exists with the
// fingerprint of the token answered; it is still pending with no
// suspension, or used by a suspension that holds its signal (open and
// listed with 2 waitpoints, or closed); every acknowledged write is there;
// and exactly the cancelled executions are claimable, with reason
// cancelled and their signal.
func TestFaultProcessKilledLifecycle(t *testing.T) {
	rounds := sized(2, 20)
	raw := "sqlite://" + filepath.Join(t.TempDir(), "crash-lifecycle.db")
	e := openEngine(t, raw)
	needLifecycle(t, e, "sqlite")
	seedOnce(t, e, "k0")
	total := map[string]int{}
	for round := range rounds {
		acked := lcCrashRound(t, raw, round, time.Duration(150+100*(round%4))*time.Millisecond)
		check := openEngine(t, raw, engine.WithKeystoreCache(0))
		counts := checkLifecycleCrash(t, check, round, acked)
		for k, n := range counts {
			total[k] += n
		}
		logf(t, "round %d: %d executions acknowledged; after the kill: %v", round, len(acked), counts)
	}
	logf(t, "all rounds: %v", total)
}

// lcCrashRound runs one child in lifecycle mode until it is killed after d
// and returns what it acknowledged, by execution.
func lcCrashRound(t *testing.T, raw string, round int, d time.Duration) map[string]*lcAcked {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildURL+"="+raw, crashChildRound+"="+fmt.Sprint(round), crashChildMode+"="+crashModeLifecycle)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child did not start: %q", lines.Text())
	}
	timer := time.AfterFunc(d, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	acked := map[string]*lcAcked{}
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) < 3 || f[0] != "ack" {
			continue
		}
		a := acked[f[2]]
		switch {
		case f[1] == "create" && len(f) == 5:
			var step int
			_, _ = fmt.Sscanf(f[2][strings.LastIndexByte(f[2], '-')+1:], "%d", &step)
			acked[f[2]] = &lcAcked{step: step, pending: f[3], fingerprint: f[4]}
		case a == nil:
		case f[1] == "deliver" && len(f) == 4:
			a.signal = f[3]
		case f[1] == "suspend" && len(f) == 5:
			a.suspension, a.outcome = f[3], f[4]
		case f[1] == "cancel":
			a.cancelled = true
		}
	}
	_ = cmd.Wait()
	return acked
}

// checkLifecycleCrash checks the executions of one round after the kill,
// claims and completes the cancelled ones, and returns counts by what was
// found.
func checkLifecycleCrash(t *testing.T, e *engine.Engine, round int, acked map[string]*lcAcked) map[string]int {
	t.Helper()
	listed := listAll(t, e)
	counts := map[string]int{}
	wantClaim := map[string]bool{}
	for exec, a := range acked {
		where := fmt.Sprintf("round %d: %s", round, exec)
		info, err := waitpointInfo(e, exec, a.pending)
		if err != nil {
			t.Errorf("%s: acknowledged pending waitpoint: %v", where, err)
			continue
		}
		if info.TokenFingerprint == nil || *info.TokenFingerprint != a.fingerprint {
			t.Errorf("%s: the stored fingerprint is not the acknowledged token's", where)
		}
		if info.Signals > 1 || a.signal != "" && info.Signals != 1 {
			t.Errorf("%s: pending waitpoint holds %d signals (delivery acknowledged: %v)", where, info.Signals, a.signal != "")
		}
		obs, oerr := observe(e, exec)
		row, isListed := listed[exec]
		waits := a.step%2 == 0
		counts[info.Status]++
		switch info.Status {
		case contracts.WaitpointPending:
			if a.suspension != "" || !isCode(oerr, contracts.CodeExecutionNotFound) || isListed {
				t.Errorf("%s: half applied or lost: still pending, but suspend acknowledged %q, observe %+v %v, listed %v", where, a.suspension, obs, oerr, isListed)
			}
			continue
		case contracts.WaitpointOpen:
			if !waits || a.cancelled || !isListed || row.Waitpoints != 2 || row.SuspensionID != obs.SuspensionID {
				t.Errorf("%s: open, but cancel acknowledged %v, listed %v as %+v", where, a.cancelled, isListed, row)
			}
		case contracts.WaitpointClosed:
			if isListed || !waits && info.Signals != 1 {
				t.Errorf("%s: closed, but listed %v with %d signals", where, isListed, info.Signals)
			}
			if waits {
				wantClaim[exec] = true
			}
		default:
			t.Errorf("%s: status %s", where, info.Status)
		}
		switch {
		case oerr != nil:
			t.Errorf("%s: used, but observe: %v", where, oerr)
		case a.suspension != "" && obs.SuspensionID != a.suspension:
			t.Errorf("%s: acknowledged suspension %s, observed %s", where, a.suspension, obs.SuspensionID)
		case len(obs.Signals) != info.Signals:
			t.Errorf("%s: half applied: the suspension holds %d signals, its pending waitpoint %d", where, len(obs.Signals), info.Signals)
		}
	}
	claims := claimAll(t, e)
	for exec, cl := range claims {
		a := acked[exec]
		switch {
		case !wantClaim[exec]:
			t.Errorf("round %d: %s is claimable (%s), but no cancel of it was applied", round, exec, cl.Reason)
		case cl.Reason != contracts.ReasonCancelled || len(cl.Signals) != 1 || a.signal != "" && cl.Signals[0].SignalID != a.signal:
			t.Errorf("round %d: %s claimed with reason %s and %d signals, want cancelled with its signal", round, exec, cl.Reason, len(cl.Signals))
		}
		must(t, "complete "+exec, func(ctx context.Context) error {
			_, err := e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: exec, LeaseID: cl.LeaseID})
			return err
		})
	}
	for exec := range wantClaim {
		if _, ok := claims[exec]; !ok {
			t.Errorf("round %d: %s was cancelled but is not claimable", round, exec)
		}
	}
	counts["claimed"] = len(claims)
	return counts
}
