package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// reports are the reports rendered into testdata/NAME.txt and NAME.json,
// which `ff bench` printed before the runner moved into this package.
var reports = map[string]Report{
	"cycle": {
		Op: OpCycle, Backend: "memory://", Concurrency: 16, DurationMs: 2000, KeystoreCacheMs: 1000, SeededByBench: true,
		Ops: 43903, Errors: 3, ErrorCodes: map[string]int64{"internal": 1, "backend_unreachable": 2}, ForeignClaims: 4,
		OpsPerSec: 21947.0587822113, LatencyUs: Latency{589.823, 1343.487, 2850.815, 1143625},
		StepsUs: map[string]Latency{
			"claim": {1.959, 5.535, 473.087, 10386.801}, "complete": {0.791, 1.263, 48.895, 3260.846},
			"deliver_http": {565.247, 1277.951, 2719.743, 11428.368}, "suspend": {3.423, 5.567, 137.215, 3258.098},
		},
	},
	"sign": {
		Op: OpSign, Backend: "sqlite://x.db", Concurrency: 2, DurationMs: 100, Ops: 10, ErrorCodes: map[string]int64{},
		OpsPerSec: 100, LatencyUs: Latency{0.5, 999.96, 1000, 2.5e6},
	},
}

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The table is unchanged: setup, one row for the op and one per cycle step
// in step order, then error codes sorted and foreign claims when present.
func TestWriteText(t *testing.T) {
	for name, rep := range reports {
		var out bytes.Buffer
		if err := rep.WriteText(&out); err != nil {
			t.Fatal(err)
		}
		if want := golden(t, name+".txt"); out.String() != want {
			t.Errorf("%s: table\n%s\nwant\n%s", name, out.String(), want)
		}
	}
}

// The JSON form keeps its field names and order (ff bench --json).
func TestReportJSON(t *testing.T) {
	for name, rep := range reports {
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		if want := golden(t, name+".json"); string(b)+"\n" != want {
			t.Errorf("%s: JSON\n%s\nwant\n%s", name, b, want)
		}
		var back Report
		if err := json.Unmarshal(b, &back); err != nil || back.Op != rep.Op || back.LatencyUs != rep.LatencyUs || len(back.StepsUs) != len(rep.StepsUs) {
			t.Errorf("%s: round trip %+v, %v", name, back, err)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteTextReportsWriteErrors(t *testing.T) {
	if err := reports["cycle"].WriteText(failingWriter{}); err == nil {
		t.Fatal("no error from a failing writer")
	}
}

func TestFmtUs(t *testing.T) {
	for us, want := range map[float64]string{
		0: "0.0µs", 0.04: "0.0µs", 12.34: "12.3µs", 999.9: "999.9µs",
		1000: "1.00ms", 1234.5: "1.23ms", 999_994: "999.99ms",
		1e6: "1.00s", 2.5e6: "2.50s", 90e6: "90.00s",
	} {
		if got := fmtUs(us); got != want {
			t.Errorf("fmtUs(%v) = %q, want %q", us, got, want)
		}
	}
}
