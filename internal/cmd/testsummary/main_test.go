package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The testdata/*.jsonl streams were captured with Go 1.26 from a throw-away
// module (`go test -json ./...` and single packages): pass.jsonl (passing
// tests, parallel subtests, skips), fail.jsonl (a failed subtest, its
// parent, t.Fatal), buildfail.jsonl (a type error: build-output/build-fail
// events), panicmain.jsonl (panic in TestMain, no test events), panictest.jsonl
// (a test panics, the next never runs), timeout.jsonl (-timeout 2s, a test
// never ends), notests.jsonl (no test files), fuzzfail.jsonl / fuzzok.jsonl
// (go test -json -fuzz), all.jsonl (the whole module, with a go command line
// on top) and interleaved.jsonl (pass and fail merged event by event).

func summarize(t *testing.T, prefix string, input string) (string, totals) {
	t.Helper()
	var out strings.Builder
	s := newSummarizer(&out, prefix)
	tot, err := s.run(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), tot
}

func sample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSamples(t *testing.T) {
	const samp = "example.com/samp/"
	cases := []struct {
		file                    string
		passed, failed, skipped int
		failures                []string
		contains                []string // in the output, in this order
		absent                  []string
	}{{
		file: "pass.jsonl", passed: 4, skipped: 2,
		contains: []string{"ok   " + samp + "pass  0.08s  4 passed, 2 skipped\n"},
		absent:   []string{"hello from one", "=== FAIL", "not today"},
	}, {
		file: "fail.jsonl", passed: 2, failed: 3,
		failures: []string{samp + "fail TestBad/worse", samp + "fail TestFatal"},
		contains: []string{
			"=== FAIL " + samp + "fail TestBad/worse (0.00s)\n",
			"fail_test.go:14: got 1, want 2\n",
			"=== FAIL " + samp + "fail TestBad (0.00s)\n",
			"fail_test.go:11: some context\n",
			"=== FAIL " + samp + "fail TestFatal (0.00s)\n",
			"fail_test.go:18: boom\n",
			"FAIL " + samp + "fail  0.04s  2 passed, 3 failed\n",
		},
		absent: []string{"output outside tests", "exit status"},
	}, {
		file:     "buildfail.jsonl",
		failures: []string{samp + "buildfail [build failed]"},
		contains: []string{
			"=== FAIL " + samp + "buildfail [build failed]\n",
			`buildfail/b.go:3:23: cannot use "x"`,
			"FAIL " + samp + "buildfail  [build failed]\n",
		},
	}, {
		file:     "panicmain.jsonl",
		failures: []string{samp + "panicmain [package failed]"},
		contains: []string{
			"=== FAIL " + samp + "panicmain (output outside tests)\n",
			"panic: TestMain exploded\n\ngoroutine 1 [running]:\n",
			"FAIL " + samp + "panicmain  0.01s  no tests\n",
		},
	}, {
		file: "panictest.jsonl", passed: 1, failed: 1,
		failures: []string{samp + "panictest TestPanics"},
		contains: []string{
			"=== FAIL " + samp + "panictest TestPanics (0.00s)\n",
			"p_test.go:8: before the panic\n",
			"panic: assignment to entry in nil map",
			"FAIL " + samp + "panictest  0.01s  1 passed, 1 failed\n",
		},
		absent: []string{"TestNeverRuns", "output outside tests"},
	}, {
		file: "timeout.jsonl", passed: 1, failed: 1,
		failures: []string{samp + "timeout TestHangs"},
		contains: []string{
			"=== FAIL " + samp + "timeout TestHangs (did not finish)\n",
			"panic: test timed out after 2s\n",
			"FAIL " + samp + "timeout  2.01s  1 passed, 1 failed\n",
		},
	}, {
		file:     "notests.jsonl",
		contains: []string{"?    " + samp + "notests  [no test files]\n"},
	}, {
		file: "fuzzfail.jsonl", failed: 1,
		failures: []string{samp + "fuzzfail FuzzBad"},
		contains: []string{
			"=== FAIL " + samp + "fuzzfail FuzzBad (0.02s)\n",
			"Failing input written to testdata/fuzz/FuzzBad/",
			"FAIL " + samp + "fuzzfail  0.02s  1 failed\n",
		},
	}, {
		file: "fuzzok.jsonl", passed: 1,
		contains: []string{"ok   " + samp + "fuzzfail  2.07s  1 passed\n"},
	}, {
		file: "interleaved.jsonl", passed: 6, failed: 3, skipped: 2,
		failures: []string{samp + "fail TestBad/worse", samp + "fail TestFatal"},
		contains: []string{
			"=== FAIL " + samp + "fail TestBad/worse (0.00s)\n=== RUN   TestBad/worse\n    fail_test.go:14: got 1, want 2\n--- FAIL: TestBad/worse (0.00s)\n=== FAIL",
			"FAIL " + samp + "fail  0.04s  2 passed, 3 failed\n",
			"ok   " + samp + "pass  0.08s  4 passed, 2 skipped\n",
		},
		absent: []string{"hello from one"},
	}, {
		file: "all.jsonl", passed: 4 + 2 + 4 + 1 + 2, failed: 3 + 1, skipped: 2,
		failures: []string{
			samp + "buildfail [build failed]",
			samp + "fail TestBad/worse",
			samp + "fail TestFatal",
			samp + "panicmain [package failed]",
			samp + "panictest TestPanics",
		},
		contains: []string{
			"go: downloading example.com/dep v1.0.0\n",
			"FAIL " + samp + "buildfail  [build failed]\n",
			"FAIL " + samp + "fail  0.04s  2 passed, 3 failed\n",
			"ok   " + samp + "fuzzfail  0.01s  4 passed\n",
			"?    " + samp + "notests  [no test files]\n",
			"FAIL " + samp + "panicmain  0.01s  no tests\n",
			"FAIL " + samp + "panictest  0.01s  1 passed, 1 failed\n",
			"ok   " + samp + "pass  0.08s  4 passed, 2 skipped\n",
			"ok   " + samp + "timeout  60.01s  2 passed\n",
		},
	}}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			out, tot := summarize(t, "", sample(t, c.file))
			if tot.Passed != c.passed || tot.Failed != c.failed || tot.Skipped != c.skipped {
				t.Errorf("totals = %s, want %d passed, %d failed, %d skipped", tot.line(), c.passed, c.failed, c.skipped)
			}
			if !reflect.DeepEqual(tot.Failures, c.failures) {
				t.Errorf("failures = %q, want %q", tot.Failures, c.failures)
			}
			if got, want := tot.ok(), len(c.failures) == 0; got != want {
				t.Errorf("ok() = %v, want %v", got, want)
			}
			rest := out
			for _, want := range c.contains {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Errorf("output lacks (or has out of order) %q; output:\n%s", want, out)
					break
				}
				rest = rest[i+len(want):]
			}
			for _, bad := range c.absent {
				if strings.Contains(out, bad) {
					t.Errorf("output has %q; output:\n%s", bad, out)
				}
			}
		})
	}
}

func TestPrefix(t *testing.T) {
	out, tot := summarize(t, "redis7:", sample(t, "fail.jsonl")+sample(t, "buildfail.jsonl"))
	for _, want := range []string{
		"=== FAIL redis7:example.com/samp/fail TestFatal (0.00s)\n",
		"FAIL redis7:example.com/samp/fail  0.04s  2 passed, 3 failed\n",
		"FAIL redis7:example.com/samp/buildfail  [build failed]\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q; output:\n%s", want, out)
		}
	}
	want := []string{"redis7:example.com/samp/fail TestBad/worse", "redis7:example.com/samp/fail TestFatal", "redis7:example.com/samp/buildfail [build failed]"}
	if !reflect.DeepEqual(tot.Failures, want) {
		t.Errorf("failures = %q, want %q", tot.Failures, want)
	}
}

// Several runs of the same package in one stream, as scripts/fuzz.sh emits
// (one go test per fuzz target), with the synthesized events it writes for a
// fuzzing deadline race (no Time, no Elapsed).
func TestRepeatedPackage(t *testing.T) {
	synth := `{"Action":"start","Package":"example.com/samp/fuzzfail"}
{"Action":"run","Package":"example.com/samp/fuzzfail","Test":"FuzzOK"}
{"Action":"output","Package":"example.com/samp/fuzzfail","Test":"FuzzOK","Output":"fuzz.sh: deadline race, counted as passed\n"}
{"Action":"pass","Package":"example.com/samp/fuzzfail","Test":"FuzzOK"}
{"Action":"pass","Package":"example.com/samp/fuzzfail","Elapsed":5}
`
	var out strings.Builder
	s := newSummarizer(&out, "fuzz:")
	s.showTests = true
	tot, err := s.run(strings.NewReader(sample(t, "fuzzok.jsonl") + sample(t, "fuzzfail.jsonl") + synth))
	if err != nil {
		t.Fatal(err)
	}
	if tot.line() != "2 passed, 1 failed, 0 skipped" {
		t.Errorf("totals = %s", tot.line())
	}
	for _, want := range []string{
		"ok   fuzz:example.com/samp/fuzzfail  2.07s  1 passed  FuzzOK\n",
		"FAIL fuzz:example.com/samp/fuzzfail  0.02s  1 failed  FuzzBad\n",
		"ok   fuzz:example.com/samp/fuzzfail  5.00s  1 passed  FuzzOK\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q; output:\n%s", want, out.String())
		}
	}
}

// A stream that stops mid-package (go test killed) fails the package and the
// tests it was running.
func TestTruncated(t *testing.T) {
	in := sample(t, "pass.jsonl")
	in = in[:strings.Index(in, `"Action":"pass","Package":"example.com/samp/pass","Test":"TestSub"`)]
	in = in[:strings.LastIndex(in, "\n")+1]
	out, tot := summarize(t, "", in)
	if tot.ok() {
		t.Errorf("a truncated stream passed; output:\n%s", out)
	}
	if !strings.Contains(out, "FAIL example.com/samp/pass  [no result: output ended]") {
		t.Errorf("no FAIL line for the cut package; output:\n%s", out)
	}
	if !strings.Contains(out, "=== FAIL example.com/samp/pass TestSub (did not finish)") {
		t.Errorf("the running test is not reported; output:\n%s", out)
	}
	if len(tot.Failures) != 1 || tot.Failures[0] != "example.com/samp/pass TestSub" {
		t.Errorf("failures = %q", tot.Failures)
	}
}

// A failure of the go command before any package ran: only non-JSON lines,
// which are copied; the stream itself reports nothing failed (the caller
// checks go test's exit code).
func TestNonJSON(t *testing.T) {
	in := "go: updates to go.mod needed; to update it:\n\tgo mod tidy\n{not json\n"
	out, tot := summarize(t, "", in)
	if out != in {
		t.Errorf("output = %q, want the input copied", out)
	}
	if !tot.ok() || tot.line() != "0 passed, 0 failed, 0 skipped" {
		t.Errorf("totals = %+v", tot)
	}
}

// A build failure that no package claims (reported by build events only).
func TestUnclaimedBuildFailure(t *testing.T) {
	in := `{"ImportPath":"example.com/x","Action":"build-output","Output":"# example.com/x\n"}
{"ImportPath":"example.com/x","Action":"build-output","Output":"x.go:1: nope\n"}
{"ImportPath":"example.com/x","Action":"build-fail"}
`
	out, tot := summarize(t, "", in)
	if tot.ok() || !reflect.DeepEqual(tot.Failures, []string{"example.com/x [build failed]"}) {
		t.Errorf("failures = %q", tot.Failures)
	}
	if !strings.Contains(out, "x.go:1: nope\n") {
		t.Errorf("build output missing; output:\n%s", out)
	}
}

func TestState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	if tot, err := readState(path); err != nil || !tot.ok() || tot.line() != "0 passed, 0 failed, 0 skipped" {
		t.Fatalf("empty state: %+v, %v", tot, err)
	}
	_, a := summarize(t, "", sample(t, "pass.jsonl"))
	_, b := summarize(t, "redis7:", sample(t, "fail.jsonl"))
	for _, tot := range []totals{a, b, {Failures: []string{"go vet: module backend/valkey"}}} {
		if err := appendState(path, tot); err != nil {
			t.Fatal(err)
		}
	}
	tot, err := readState(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if tot.report(&out) {
		t.Error("report says ok")
	}
	want := `FAILED (3):
    redis7:example.com/samp/fail TestBad/worse
    redis7:example.com/samp/fail TestFatal
    go vet: module backend/valkey
6 passed, 3 failed, 2 skipped
`
	if out.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", out.String(), want)
	}

	out.Reset()
	if !a.report(&out) || out.String() != "4 passed, 0 failed, 2 skipped\n" {
		t.Errorf("passing report: %q", out.String())
	}
}

func TestReportCapsList(t *testing.T) {
	var tot totals
	for i := 0; i < maxListed+5; i++ {
		tot.Failures = append(tot.Failures, "x")
		tot.Failed++
	}
	var out strings.Builder
	tot.report(&out)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 1+maxListed+1+1 {
		t.Errorf("%d lines", len(lines))
	}
	if !strings.Contains(out.String(), "... and 5 more") {
		t.Errorf("output:\n%s", out.String())
	}
	if last := lines[len(lines)-1]; last != "0 passed, 55 failed, 0 skipped" {
		t.Errorf("last line %q", last)
	}
}
