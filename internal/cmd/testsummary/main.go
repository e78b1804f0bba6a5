// Command testsummary condenses `go test -json` streams for scripts/test.sh.
//
// Stream mode reads one stream (go test -json, stderr merged in) on stdin and
// prints, as it goes, one progress line per package (ok, FAIL, or "?" for a
// package without test files, with its elapsed time and counts), the full
// output of every failed test, and the output of a package that fails
// without a failing test: a build failure, a panic or os.Exit outside a test,
// a timeout, a race or leak reported after the tests. Lines that are not
// JSON (messages of the go command) are copied through. The exit code is 1
// when anything failed.
//
//	go test -json ./... 2>&1 | testsummary [-prefix redis7:] [-show-tests] [-state FILE]
//
// With -state, the stream's counts and failures are appended to FILE, so
// that several streams (modules, reruns, fuzzing) add up to one total:
//
//	testsummary -state FILE -fail "go vet: module backend/valkey"   # a failure seen elsewhere
//	testsummary -state FILE -final
//
// -final prints the list of failures, then, as the last line,
// "N passed, N failed, N skipped": the pass, fail and skip events of tests
// and subtests (events naming a Test), plus, as failed, the tests that were
// running when their package died (a timeout or a crash). It exits 1 when
// any failure was recorded, including those that are not tests.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

func main() {
	prefix := flag.String("prefix", "", "prefix for the package names of this stream, e.g. redis7:")
	showTests := flag.Bool("show-tests", false, "name the top-level tests on each package's progress line")
	state := flag.String("state", "", "file that accumulates the totals of several streams")
	final := flag.Bool("final", false, "print the totals accumulated in -state and exit")
	fail := flag.String("fail", "", "record a failure seen outside a test stream in -state and exit")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "testsummary: unexpected arguments:", flag.Args())
		os.Exit(2)
	}

	switch {
	case *final:
		if *state == "" {
			fatal(errors.New("-final needs -state"))
		}
		tot, err := readState(*state)
		if err != nil {
			fatal(err)
		}
		if !tot.report(os.Stdout) {
			os.Exit(1)
		}
	case *fail != "":
		if *state == "" {
			fatal(errors.New("-fail needs -state"))
		}
		if err := appendState(*state, totals{Failed: 1, Failures: []string{*fail}}); err != nil { // a failed check counts as a failed test
			fatal(err)
		}
	default:
		s := newSummarizer(os.Stdout, *prefix)
		s.showTests = *showTests
		tot, err := s.run(os.Stdin)
		if err != nil {
			fatal(err)
		}
		if *state != "" {
			if err := appendState(*state, tot); err != nil {
				fatal(err)
			}
		}
		if !tot.ok() {
			os.Exit(1)
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "testsummary:", err)
	os.Exit(2)
}

// event is one line of `go test -json` (cmd/test2json), including the build
// events of Go 1.24+ (Action build-output / build-fail, keyed by ImportPath).
type event struct {
	Time        time.Time `json:",omitempty"`
	Action      string
	Package     string  `json:",omitempty"`
	Test        string  `json:",omitempty"`
	Elapsed     float64 `json:",omitempty"`
	Output      string  `json:",omitempty"`
	ImportPath  string  `json:",omitempty"`
	FailedBuild string  `json:",omitempty"`
}

// totals is what a stream contributes to the final line; one JSON line of
// the -state file.
type totals struct {
	Passed   int      `json:"passed"`
	Failed   int      `json:"failed"`
	Skipped  int      `json:"skipped"`
	Failures []string `json:"failures,omitempty"` // names, for the list before the last line
}

func (t *totals) add(o totals) {
	t.Passed += o.Passed
	t.Failed += o.Failed
	t.Skipped += o.Skipped
	t.Failures = append(t.Failures, o.Failures...)
}

func (t totals) ok() bool { return t.Failed == 0 && len(t.Failures) == 0 }

func (t totals) line() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", t.Passed, t.Failed, t.Skipped)
}

// maxListed caps the failure list printed before the totals line.
const maxListed = 50

// report prints the failures, then the totals line last; it reports whether
// everything passed.
func (t totals) report(w io.Writer) bool {
	if len(t.Failures) > 0 {
		fmt.Fprintf(w, "FAILED (%d):\n", len(t.Failures))
		for i, f := range t.Failures {
			if i == maxListed {
				fmt.Fprintf(w, "    ... and %d more (their output is above)\n", len(t.Failures)-i)
				break
			}
			fmt.Fprintf(w, "    %s\n", f)
		}
	}
	fmt.Fprintln(w, t.line())
	return t.ok()
}

func appendState(path string, t totals) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readState sums the lines of a -state file; a missing file is no streams.
func readState(path string) (totals, error) {
	var tot totals
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return tot, nil
	}
	if err != nil {
		return tot, err
	}
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var t totals
		if err := json.Unmarshal(line, &t); err != nil {
			return tot, fmt.Errorf("%s:%d: %v", path, i+1, err)
		}
		tot.add(t)
	}
	return tot, nil
}

// test is one test or subtest of a running package.
type test struct {
	name    string
	output  []string
	done    bool
	failed  bool
	subFail bool // a subtest failed: the failure list names the subtest
}

// pkg is one run of a package's test binary, from its start event to its
// pass, fail or skip event.
type pkg struct {
	name     string
	tests    map[string]*test
	order    []string // tests in the order they started
	output   []string // package-level output
	passed   int
	failed   int
	skipped  int
	anyFail  bool // a test failed (its output was printed)
	topLevel []string
}

type summarizer struct {
	w         io.Writer
	prefix    string
	showTests bool

	pkgs map[string]*pkg
	// Build output by ImportPath (Go 1.24+ reports it apart from the
	// packages); shown[ip] once printed.
	build      map[string][]string
	buildOrder []string
	buildFail  map[string]bool
	shown      map[string]bool

	tot totals
}

func newSummarizer(w io.Writer, prefix string) *summarizer {
	return &summarizer{
		w:         w,
		prefix:    prefix,
		pkgs:      map[string]*pkg{},
		build:     map[string][]string{},
		buildFail: map[string]bool{},
		shown:     map[string]bool{},
	}
}

// run consumes a whole stream and returns its totals.
func (s *summarizer) run(r io.Reader) (totals, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			s.line(line)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return s.tot, err
		}
	}
	s.finish()
	return s.tot, nil
}

// line handles one line of the stream.
func (s *summarizer) line(line string) {
	trimmed := strings.TrimSpace(line)
	var e event
	if !strings.HasPrefix(trimmed, "{") || json.Unmarshal([]byte(trimmed), &e) != nil || e.Action == "" {
		// The go command's own messages (go: downloading ..., errors
		// before any package ran): copied through.
		io.WriteString(s.w, strings.TrimRight(line, "\n")+"\n")
		return
	}
	s.event(e)
}

func (s *summarizer) display(name string) string { return s.prefix + name }

func (s *summarizer) event(e event) {
	switch e.Action {
	case "build-output":
		if _, ok := s.build[e.ImportPath]; !ok {
			s.buildOrder = append(s.buildOrder, e.ImportPath)
		}
		s.build[e.ImportPath] = append(s.build[e.ImportPath], e.Output)
		return
	case "build-fail":
		s.buildFail[e.ImportPath] = true
		if _, ok := s.build[e.ImportPath]; !ok {
			s.buildOrder = append(s.buildOrder, e.ImportPath)
			s.build[e.ImportPath] = nil
		}
		return
	}
	if e.Package == "" {
		return
	}
	p := s.pkgs[e.Package]
	if p == nil || e.Action == "start" {
		if p != nil {
			s.endPackage(p, "", 0, false, "") // a start without an end: the run was cut short
		}
		p = &pkg{name: e.Package, tests: map[string]*test{}}
		s.pkgs[e.Package] = p
		if e.Action == "start" {
			return
		}
	}
	if e.Test == "" {
		switch e.Action {
		case "output":
			p.output = append(p.output, e.Output)
		case "pass", "fail", "skip":
			s.endPackage(p, e.Action, e.Elapsed, true, e.FailedBuild)
			delete(s.pkgs, e.Package)
		}
		return
	}
	t := p.tests[e.Test]
	if t == nil {
		t = &test{name: e.Test}
		p.tests[e.Test] = t
		p.order = append(p.order, e.Test)
		if !strings.Contains(e.Test, "/") {
			p.topLevel = append(p.topLevel, e.Test)
		}
	}
	switch e.Action {
	case "output":
		if !t.done {
			t.output = append(t.output, e.Output)
		}
	case "pass":
		t.done = true
		t.output = nil
		p.passed++
		s.tot.Passed++
	case "skip":
		t.done = true
		t.output = nil
		p.skipped++
		s.tot.Skipped++
	case "fail":
		t.done = true
		t.failed = true
		p.failed++
		p.anyFail = true
		s.tot.Failed++
		s.markParents(p, e.Test)
		s.printTest(p, t, fmt.Sprintf("(%.2fs)", e.Elapsed))
		t.output = nil
	}
}

// markParents notes, on each enclosing test, that a subtest failed.
func (s *summarizer) markParents(p *pkg, name string) {
	for i := strings.LastIndex(name, "/"); i > 0; i = strings.LastIndex(name, "/") {
		name = name[:i]
		if t := p.tests[name]; t != nil {
			t.subFail = true
		}
	}
}

func (s *summarizer) printTest(p *pkg, t *test, note string) {
	fmt.Fprintf(s.w, "=== FAIL %s %s %s\n", s.display(p.name), t.name, note)
	printLines(s.w, t.output)
}

// printBuild prints the build output of import path ip, once.
func (s *summarizer) printBuild(ip string) {
	if s.shown[ip] {
		fmt.Fprintf(s.w, "(build output of %s above)\n", s.display(ip))
		return
	}
	s.shown[ip] = true
	printLines(s.w, s.build[ip])
}

func printLines(w io.Writer, lines []string) {
	for _, o := range lines {
		io.WriteString(w, o)
		if !strings.HasSuffix(o, "\n") {
			io.WriteString(w, "\n")
		}
	}
}

// endPackage closes package p with action (pass, fail, skip; "" when the
// stream ended or the package restarted without a result).
func (s *summarizer) endPackage(p *pkg, action string, elapsed float64, complete bool, failedBuild string) {
	name := s.display(p.name)
	failed := action == "fail" || action == ""
	// Tests still running when the package died (timeout, os.Exit, a
	// crash in another goroutine) count as failed.
	var unfinished []*test
	if failed {
		for _, n := range p.order {
			if t := p.tests[n]; !t.done {
				unfinished = append(unfinished, t)
			}
		}
	}
	for _, t := range unfinished {
		t.done, t.failed = true, true
		p.failed++
		s.tot.Failed++
		s.markParents(p, t.name)
	}
	for _, t := range unfinished {
		s.printTest(p, t, "(did not finish)")
	}

	all := strings.Join(p.output, "")
	buildFailed := failedBuild != "" || strings.Contains(all, "[build failed]") || strings.Contains(all, "[setup failed]")
	if failed {
		switch extra := packageOutput(p.output); {
		case buildFailed:
			fmt.Fprintf(s.w, "=== FAIL %s [build failed]\n", name)
			if failedBuild != "" {
				s.printBuild(failedBuild)
			}
			printLines(s.w, extra)
		case len(extra) > 0:
			// Printed outside any test: TestMain, init, a panic, the race
			// detector or a leak check after the tests.
			fmt.Fprintf(s.w, "=== FAIL %s (output outside tests)\n", name)
			printLines(s.w, extra)
		case !p.anyFail && len(unfinished) == 0:
			fmt.Fprintf(s.w, "=== FAIL %s (no failing test reported)\n", name)
			printLines(s.w, p.output)
		}
	}

	// Failure list: the failed tests without a failed subtest, or the
	// package itself when no test names the failure.
	var listed bool
	for _, n := range p.order {
		t := p.tests[n]
		if t.failed && !t.subFail {
			s.tot.Failures = append(s.tot.Failures, name+" "+t.name)
			listed = true
		}
	}
	if failed && !listed {
		why := "package failed"
		switch {
		case buildFailed:
			why = "build failed"
		case !complete:
			why = "no result: output ended"
		}
		s.tot.Failures = append(s.tot.Failures, fmt.Sprintf("%s [%s]", name, why))
	}

	// The progress line.
	var status, detail string
	switch {
	case failed:
		status = "FAIL"
	case action == "skip":
		status = "?"
	default:
		status = "ok"
	}
	var counts []string
	if p.passed > 0 {
		counts = append(counts, fmt.Sprintf("%d passed", p.passed))
	}
	if p.failed > 0 {
		counts = append(counts, fmt.Sprintf("%d failed", p.failed))
	}
	if p.skipped > 0 {
		counts = append(counts, fmt.Sprintf("%d skipped", p.skipped))
	}
	switch {
	case buildFailed:
		detail = "[build failed]"
	case !complete:
		detail = "[no result: output ended]"
	case action == "skip":
		detail = "[no test files]"
	case len(counts) == 0:
		detail = fmt.Sprintf("%.2fs  no tests", elapsed)
	default:
		detail = fmt.Sprintf("%.2fs  %s", elapsed, strings.Join(counts, ", "))
	}
	if s.showTests && len(p.topLevel) > 0 {
		detail += "  " + strings.Join(p.topLevel, " ")
	}
	fmt.Fprintf(s.w, "%-4s %s  %s\n", status, name, detail)
}

// packageOutput drops go's framing lines from a package's own output: what
// is left was printed outside any test (TestMain, init, a panic, the race
// detector or a leak check after the tests).
func packageOutput(lines []string) []string {
	var keep []string
	for _, o := range lines {
		t := strings.TrimRight(o, "\n")
		switch {
		case t == "PASS", t == "FAIL",
			strings.HasPrefix(t, "FAIL\t"), strings.HasPrefix(t, "ok  \t"), strings.HasPrefix(t, "?   \t"),
			strings.HasPrefix(t, "exit status "),
			strings.HasPrefix(t, "testing: warning: no tests to run"):
			continue
		}
		keep = append(keep, o)
	}
	return keep
}

// finish closes what the stream left open.
func (s *summarizer) finish() {
	names := make([]string, 0, len(s.pkgs))
	for n := range s.pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s.endPackage(s.pkgs[n], "", 0, false, "")
		delete(s.pkgs, n)
	}
	// Build failures no package claimed (e.g. go vet's during go test).
	for _, ip := range s.buildOrder {
		if s.shown[ip] || !s.buildFail[ip] {
			continue
		}
		fmt.Fprintf(s.w, "=== FAIL %s [build failed]\n", s.display(ip))
		s.printBuild(ip)
		s.tot.Failures = append(s.tot.Failures, fmt.Sprintf("%s [build failed]", s.display(ip)))
	}
}
