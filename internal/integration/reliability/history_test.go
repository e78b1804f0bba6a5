package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// history records the operations of concurrent clients for porcupine.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	calls int            // calls made (a call may add several operations)
	drops int            // calls dropped: retryable contention, nothing applied
	bad   []string       // errors no model allows on a healthy server
	kinds map[string]int // operation -> count, by outcome or error code
}

func newHistory() *history { return &history{start: time.Now()} }

// now is the time since start, monotonic, in nanoseconds.
func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(client int, call, ret int64, in, out any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	if h.kinds == nil {
		h.kinds = map[string]int{}
	}
	h.kinds[label(in, out)]++
}

// label names an operation by its kind and result, for the figures.
func label(in, out any) string {
	switch i := in.(type) {
	case KeystoreInput:
		o := out.(KeystoreOutput)
		return string(i.Op) + ":" + firstNonEmpty(o.Err, o.Outcome, "ok")
	case SignalsInput:
		o := out.(SignalsOutput)
		res := firstNonEmpty(o.Err, o.Outcome, "ok")
		if i.Op == SgListed {
			res = fmt.Sprint(o.Listed)
		}
		return string(i.Op) + ":" + res
	}
	return "?"
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// fail records an error no model allows.
func (h *history) fail(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bad = append(h.bad, s)
}

func (h *history) called() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
}

// unusable sorts an error the models cannot take: retryable contention
// (the call applied nothing: it is dropped from the history) or anything
// that is not a contract error of the contract's kinds for a healthy server
// (recorded as bad). It reports whether the call must be left out.
func (h *history) unusable(what string, err error) bool {
	if err == nil {
		return false
	}
	if isKind(err, contracts.KindContention) && retryable(err) {
		h.mu.Lock()
		h.drops++
		h.mu.Unlock()
		return true
	}
	if isKind(err, contracts.KindTransport) || isKind(err, contracts.KindUnavailable) || strings.HasPrefix(errCode(err), "non-contract") {
		h.mu.Lock()
		h.bad = append(h.bad, what+": "+err.Error())
		h.mu.Unlock()
		return true
	}
	return false
}

// check runs porcupine on the history and fails t on a violation, writing
// the visualization to a file named in the failure.
func (h *history) check(t *testing.T, model porcupine.Model, timeout time.Duration) {
	t.Helper()
	for _, b := range h.bad {
		t.Errorf("unexpected error: %s", b)
	}
	begin := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, h.ops, timeout)
	took := time.Since(begin)
	parts := len(model.Partition(h.ops))
	logf(t, "%d calls, %d operations in %d partitions, %d dropped (retryable contention); porcupine: %s in %v",
		h.calls, len(h.ops), parts, h.drops, res, took.Round(time.Millisecond))
	kinds := make([]string, 0, len(h.kinds))
	for k, n := range h.kinds {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	logf(t, "operations: %s", strings.Join(kinds, " "))
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		path := filepath.Join(os.TempDir(), strings.ReplaceAll(t.Name(), "/", "_")+".html")
		if err := porcupine.VisualizePath(model, info, path); err == nil {
			t.Errorf("history is not linearizable; visualization: %s", path)
		} else {
			t.Errorf("history is not linearizable (visualization failed: %v)", err)
		}
	default:
		t.Errorf("porcupine could not decide within %v", timeout)
	}
}

// callCtx bounds one call of a history.
func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// logf logs with the test's name first, so that the figures of parallel
// subtests stay attributable in an interleaved -v log.
func logf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Logf("%s: "+format, append([]any{t.Name()}, args...)...)
}
