package sqlite

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
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// crashChildEnv names the database a crash child writes to until killed.
const crashChildEnv = "FF_SQLITE_CRASH_CHILD_PATH"

// TestKilledWriterLeavesConsistentFile kills (SIGKILL) a process in the
// middle of a stream of writes, three times over one file, and checks after
// each kill that the file passes integrity_check, holds exactly one current
// kid, and that every remembered suspension has all its waitpoints: a write
// transaction is all or nothing.
func TestKilledWriterLeavesConsistentFile(t *testing.T) {
	if p := os.Getenv(crashChildEnv); p != "" {
		runCrashChild(t, p)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	for round := range 3 {
		killMidWrite(t, path, time.Duration(100+150*round)*time.Millisecond)
		checkIntegrity(t, path)
		checkSuspensionsWhole(t, path)
	}
}

// killMidWrite starts a crash child on path, lets it write for d after it
// reports ready, and kills it.
func killMidWrite(t *testing.T, path string, d time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWriterLeavesConsistentFile$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	ready := false
	for !ready && sc.Scan() {
		ready = strings.Contains(sc.Text(), "CRASH-CHILD-READY")
	}
	if !ready {
		_ = cmd.Wait()
		t.Fatalf("crash child exited before it was ready: %s", sc.Text())
	}
	time.Sleep(d)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// runCrashChild writes until it is killed: rotations, and suspensions on
// several waitpoints that are signalled, claimed and completed.
func runCrashChild(t *testing.T, path string) {
	ctx := context.Background()
	b, err := Open(ctx, path)
	if err != nil {
		fmt.Println("open:", err)
		return
	}
	e := eng(b)
	fmt.Println("CRASH-CHILD-READY")
	pid := os.Getpid()
	for i := 0; ; i++ {
		_, _ = e.RotateAll(ctx, contracts.RotateArgs{NewKid: fmt.Sprintf("k%d-%d", pid, i), NewSecret: newSecret(t), GraceMs: 1000})
		s, err := e.Suspend(ctx, drivertest.SuspendArgs(fmt.Sprintf("e%d-%d", pid, i), "a", "b", "c", "d"))
		if err != nil {
			continue
		}
		_, _ = e.DeliverSignal(ctx, drivertest.DeliverArgs(s, 0, "d"))
		if c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000}); err == nil && i%2 == 0 {
			_, _ = e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: c.ExecutionID, LeaseID: c.LeaseID})
		}
	}
}

// checkSuspensionsWhole checks that every remembered execution's latest
// suspension has exactly waitpoint_count waitpoints.
func checkSuspensionsWhole(t *testing.T, path string) {
	t.Helper()
	b, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var broken, executions int
	err = b.db.QueryRow(`SELECT count(*), coalesce(sum(waitpoint_count != (SELECT count(*) FROM waitpoints w
	    WHERE w.suspension_id = e.suspension_id)), 0) FROM executions e`).Scan(&executions, &broken)
	if err != nil || broken != 0 {
		t.Fatalf("%d of %d executions have a partial suspension (err %v)", broken, executions, err)
	}
	t.Logf("after the kill: %d executions remembered, all whole", executions)
}
