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
	resultPrefix = "ROTATE-RESULT "
)

// rotationsPerProcess is how many rotations each child process runs.
const rotationsPerProcess = 300

// childReport is what a child process prints: how its rotations went.
type childReport struct {
	Rotated    int      `json:"rotated"`
	Contention int      `json:"contention"`
	Other      []string `json:"other"`
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
	start := time.Now()
	var wg sync.WaitGroup
	reports := make([]childReport, 2)
	outputs := make([]string, 2)
	for i := range 2 {
		wg.Go(func() { reports[i], outputs[i] = spawnRotationChild(t, path, fmt.Sprintf("p%d", i)) })
	}
	wg.Wait()
	t.Logf("2 processes x %d rotations on one file: %v", rotationsPerProcess, time.Since(start))
	for i, r := range reports {
		if strings.Contains(outputs[i], "database is locked") {
			t.Errorf("process %d printed \"database is locked\":\n%s", i, outputs[i])
		}
		if len(r.Other) > 0 {
			t.Errorf("process %d: errors other than contention: %q", i, r.Other)
		}
		if r.Rotated+r.Contention != rotationsPerProcess {
			t.Errorf("process %d: %d rotated + %d contention, want %d calls", i, r.Rotated, r.Contention, rotationsPerProcess)
		}
		t.Logf("process %d: %d rotated, %d contention", i, r.Rotated, r.Contention)
	}
	checkIntegrity(t, path)
}

func spawnRotationChild(t *testing.T, path, name string) (childReport, string) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestTwoProcessesRotateOneFile$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnvPath+"="+path, childEnvName+"="+name, fmt.Sprintf("%s=%d", childEnvN, rotationsPerProcess))
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
	record := func(err error) {
		switch {
		case err == nil:
			r.Rotated++
		case errors.Is(err, contracts.ErrSerializationRetryExhausted) && !strings.Contains(err.Error(), "database is locked"):
			r.Contention++
		default:
			r.Other = append(r.Other, err.Error())
		}
	}
	b, err := Open(ctx, os.Getenv(childEnvPath))
	if err != nil {
		r.Other = append(r.Other, "open: "+err.Error())
	} else {
		e := eng(b)
		for i := range n {
			res, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: fmt.Sprintf("%s-%d", name, i), NewSecret: newSecret(t), GraceMs: 2})
			if err == nil && res.Failed() {
				err = res.Entries[0].Error
			}
			record(err)
		}
		if err := b.Close(); err != nil {
			r.Other = append(r.Other, "close: "+err.Error())
		}
	}
	line, _ := json.Marshal(r)
	fmt.Println(resultPrefix + string(line))
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
