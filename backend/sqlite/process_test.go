package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Environment of the child processes of TestTwoProcessesRotateOneFile.
const (
	childEnvPath = "FF_SQLITE_ROTATE_CHILD_PATH"
	childEnvName = "FF_SQLITE_ROTATE_CHILD_NAME"
	childEnvN    = "FF_SQLITE_ROTATE_CHILD_N"
	childEnvAt   = "FF_SQLITE_ROTATE_CHILD_START_NS" // both children start rotating at this instant
	resultPrefix = "ROTATE-RESULT "
)

// rotationsPerProcess is how many rotations each child process runs.
const rotationsPerProcess = 300

// childReport is what a child process prints: how its calls went.
type childReport struct {
	Rotated    int      `json:"rotated"`    // rotations that succeeded
	Listed     int      `json:"listed"`     // list_kids reads that succeeded
	Contention int      `json:"contention"` // calls that failed with retryable contention
	Other      []string `json:"other"`      // any other failure
	StartNs    int64    `json:"start_ns"`   // when the rotations began
	EndNs      int64    `json:"end_ns"`     // when they ended
}

// TestTwoProcessesRotateOneFile starts two OS processes (this test binary,
// re-executed) that open the same fresh file at once and rotate it many times
// concurrently. Afterwards the file must pass integrity_check, hold exactly one
// current kid, and no call may have failed with anything but retryable
// contention (and never with "database is locked").
func TestTwoProcessesRotateOneFile(t *testing.T) {
	if os.Getenv(childEnvPath) != "" {
		runRotationChild(t)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "shared.db")
	at := time.Now().Add(2 * time.Second).UnixNano() // after both processes started and opened the file
	var wg sync.WaitGroup
	reports := make([]childReport, 2)
	outputs := make([]string, 2)
	for i := range 2 {
		wg.Go(func() { reports[i], outputs[i] = spawnRotationChild(t, path, fmt.Sprintf("p%d", i), at) })
	}
	wg.Wait()
	t.Logf("2 processes x %d rotations (each followed by a list_kids) on one file: %v from the common start to the last end",
		rotationsPerProcess, time.Duration(max(reports[0].EndNs, reports[1].EndNs)-at))
	for i, r := range reports {
		if strings.Contains(outputs[i], "database is locked") {
			t.Errorf("process %d printed \"database is locked\":\n%s", i, outputs[i])
		}
		if len(r.Other) > 0 {
			t.Errorf("process %d: errors other than contention: %q", i, r.Other)
		}
		if r.Rotated+r.Listed+r.Contention != 2*rotationsPerProcess {
			t.Errorf("process %d: %d rotated + %d listed + %d contention, want %d calls", i, r.Rotated, r.Listed, r.Contention, 2*rotationsPerProcess)
		}
		t.Logf("process %d: %d rotated, %d listed, %d contention", i, r.Rotated, r.Listed, r.Contention)
	}
	overlap := min(reports[0].EndNs, reports[1].EndNs) - max(reports[0].StartNs, reports[1].StartNs)
	if overlap <= 0 {
		t.Errorf("the two processes' rotations did not overlap in time")
	}
	t.Logf("the processes rotated concurrently for %v", time.Duration(overlap))
	checkIntegrity(t, path)
}

func spawnRotationChild(t *testing.T, path, name string, at int64) (childReport, string) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestTwoProcessesRotateOneFile$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnvPath+"="+path, childEnvName+"="+name, fmt.Sprintf("%s=%d", childEnvN, rotationsPerProcess), fmt.Sprintf("%s=%d", childEnvAt, at))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("child %s: %v\n%s", name, err, out)
		return childReport{}, string(out)
	}
	var r childReport
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), resultPrefix); ok {
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Errorf("child %s: bad report %q: %v", name, line, err)
			}
			return r, string(out)
		}
	}
	t.Errorf("child %s printed no report:\n%s", name, out)
	return r, string(out)
}

// runRotationChild is the body of a child process: open the shared file (the
// first Open of a fresh file migrates it, racing the other child) and rotate
// to kids of its own name with a tiny grace, so rotations also collect.
func runRotationChild(t *testing.T) {
	var n int
	fmt.Sscan(os.Getenv(childEnvN), &n)
	name := os.Getenv(childEnvName)
	ctx := context.Background()
	var r childReport
	failed := func(err error) bool {
		switch {
		case err == nil:
			return false
		case errors.Is(err, contracts.ErrSerializationRetryExhausted) && !strings.Contains(err.Error(), "database is locked"):
			r.Contention++
		default:
			r.Other = append(r.Other, err.Error())
		}
		return true
	}
	b, err := Open(ctx, os.Getenv(childEnvPath))
	if failed(err) {
		fmt.Println(resultPrefix + mustJSON(r))
		return
	}
	e := eng(b)
	var at int64
	fmt.Sscan(os.Getenv(childEnvAt), &at)
	time.Sleep(time.Until(time.Unix(0, at)))
	r.StartNs = time.Now().UnixNano()
	for i := range n {
		res, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: fmt.Sprintf("%s-%d", name, i), NewSecret: newSecret(t), GraceMs: 2})
		if err == nil && res.Failed() {
			err = res.Entries[0].Error
		}
		if !failed(err) {
			r.Rotated++
		}
		// A read while the other process writes: a WAL snapshot that always
		// shows exactly one current kid.
		list, err := e.ListKids(ctx)
		if !failed(err) {
			r.Listed++
			if list.Partitions[0].CurrentKid == nil {
				r.Other = append(r.Other, "list_kids: no current kid")
			}
		}
	}
	r.EndNs = time.Now().UnixNano()
	if err := b.Close(); err != nil {
		r.Other = append(r.Other, "close: "+err.Error())
	}
	fmt.Println(resultPrefix + mustJSON(r))
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// checkIntegrity opens the file afresh and checks SQLite's integrity and the
// keystore's invariant: exactly one current kid.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	b, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var ok string
	if err := b.db.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check = %q, %v", ok, err)
	}
	var current int
	if err := b.db.QueryRow(`SELECT count(*) FROM keystore WHERE expires_at_ms IS NULL`).Scan(&current); err != nil || current != 1 {
		t.Fatalf("current kids = %d, %v; want exactly 1", current, err)
	}
	list, err := eng(b).ListKids(context.Background())
	if err != nil || list.Partitions[0].CurrentKid == nil {
		t.Fatalf("list_kids after the race = %+v, %v", list, err)
	}
}
