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
	"github.com/flowfabric/flowfabric-go/engine"
)

// Environment of the child process of TestFaultProcessKilled.
const (
	crashChildURL   = "FF_RELIABILITY_CRASH_URL"   // the store the child writes
	crashChildRound = "FF_RELIABILITY_CRASH_ROUND" // makes its ids unique
	crashChildMode  = "FF_RELIABILITY_CRASH_MODE"  // crashModeLifecycle: the writes of TestFaultProcessKilledLifecycle
)

// crashChild, when the test binary runs as the child of
// TestFaultProcessKilled, writes until it is killed: each step suspends a
// fresh execution on two waitpoints, delivers a signal to the first and,
// every tenth step, rotates; it prints one "ack" line per acknowledged
// write, after the call returned. It reports whether it ran.
func crashChild() bool {
	raw := os.Getenv(crashChildURL)
	if raw == "" {
		return false
	}
	round := os.Getenv(crashChildRound)
	ctx := context.Background()
	b, err := engine.OpenBackend(ctx, raw)
	if err != nil {
		fmt.Println("open-error", err)
		os.Exit(2)
	}
	e := engine.New(b)
	fmt.Println("ready")
	if os.Getenv(crashChildMode) == crashModeLifecycle {
		crashLifecycleChild(e, round)
	}
	for i := 0; ; i++ {
		if i%10 == 9 {
			kid := fmt.Sprintf("c%s-%d", round, i)
			if res, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: kid, NewSecret: secretOf(kid, 0), GraceMs: keystoreGraceMs}); err == nil && !res.Failed() {
				fmt.Println("ack rotate", kid)
			}
			continue
		}
		exec := fmt.Sprintf("crash-%s-%d", round, i)
		s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: exec, Condition: "all",
			Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})
		if err != nil {
			continue
		}
		fmt.Println("ack suspend", exec, s.SuspensionID)
		d, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: s.Waitpoints[0].WaitpointID,
			Token: s.Waitpoints[0].Token, Name: "n", IdempotencyKey: "once"})
		if err == nil {
			fmt.Println("ack deliver", exec, d.SignalID)
		}
	}
}

// The process killed (SIGKILL) in the middle of writes, for SQLite, the
// embedded backend (no connection or server to kill): a child process
// writes to the file and is killed after a random 150-450 ms, several
// times; after each kill the file opens, every acknowledged suspension,
// signal and rotation is there, and every suspension is whole (two
// waitpoints, at most its one signal).
func TestFaultProcessKilled(t *testing.T) {
	rounds := sized(3, 20)
	raw := "sqlite://" + filepath.Join(t.TempDir(), "crash.db")
	seedOnce(t, openEngine(t, raw), "k0")
	acked := map[string][2]string{} // exec -> suspension id, signal id
	kids := map[string]bool{"k0": true}
	for round := range rounds {
		n := crashRound(t, raw, round, time.Duration(150+100*(round%4))*time.Millisecond, acked, kids)
		e := openEngine(t, raw, engine.WithKeystoreCache(0))
		checkKeystore(t, e, 1, kids, nil)
		listed := listAll(t, e)
		for exec, a := range acked {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			res, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: exec})
			cancel()
			if err != nil || res.SuspensionID != a[0] || (a[1] != "" && (len(res.Signals) != 1 || res.Signals[0].SignalID != a[1])) {
				t.Errorf("round %d: acknowledged %s %v: observed %+v, %v", round, exec, a, res, err)
			}
		}
		for exec, x := range listed {
			if x.Waitpoints != 2 {
				t.Errorf("round %d: %s has %d waitpoints, want 2: half-applied suspension", round, exec, x.Waitpoints)
			}
		}
		logf(t, "round %d: killed after %d acknowledged writes; %d suspensions, %d rotations acknowledged so far, all present",
			round, n, len(acked), len(kids)-1)
	}
}

// crashRound runs one child until it is killed after d and records its
// acknowledgements; it returns how many it printed.
func crashRound(t *testing.T, raw string, round int, d time.Duration, acked map[string][2]string, kids map[string]bool) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildURL+"="+raw, crashChildRound+"="+fmt.Sprint(round))
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
	n := 0
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		switch {
		case len(f) == 3 && f[1] == "rotate":
			kids[f[2]] = true
		case len(f) == 4 && f[1] == "suspend":
			acked[f[2]] = [2]string{f[3], ""}
		case len(f) == 4 && f[1] == "deliver":
			acked[f[2]] = [2]string{acked[f[2]][0], f[3]}
		default:
			continue
		}
		n++
	}
	_ = cmd.Wait()
	return n
}
