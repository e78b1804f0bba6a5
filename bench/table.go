package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// measure is one side of a comparison: a rate of successful operations and
// their latency, or the error that kept it from being measured.
type measure struct {
	OpsPerSec float64
	P50, P99  time.Duration
	Errors    int64  // operations that failed during the measurement
	Err       error  // the measurement could not run; the other fields are zero
	Note      string // anything else the reader should know, shown after the figures
}

// measureOf turns a loop result into a measure: a failed one when no
// operation succeeded, else the figures, with the first error as a note.
func measureOf(r result) measure {
	if r.Ops == 0 && r.FirstErr != nil {
		return measure{Err: r.FirstErr}
	}
	m := measure{OpsPerSec: r.opsPerSec(), P50: r.P50, P99: r.P99, Errors: r.Errors}
	if r.FirstErr != nil {
		m.Note = "first error: " + r.FirstErr.Error()
	}
	return m
}

// scaled returns m with its rate multiplied by f (row 2's "a quarter of the
// raw rate"); the latencies are left out, since they are not scaled.
func (m measure) scaled(f float64) measure {
	if m.Err != nil {
		return m
	}
	return measure{OpsPerSec: m.OpsPerSec * f, Errors: m.Errors, Note: m.Note}
}

// row is one line of the comparison: our operation against a reference,
// with the ratio of their rates and the target that ratio should reach.
type row struct {
	Name          string // what is measured on our side, e.g. "SQLite deliver_signal, 8 clients"
	RefName       string // the reference, e.g. "raw SQLite tx"
	Ours, Ref     measure
	Target        float64 // the ratio Ours/Ref should reach
	Informational bool    // the target is a guide, not a goal
}

// ratio is Ours/Ref in operations per second; ok is false when either side
// failed or measured no operation.
func (r row) ratio() (ratio float64, ok bool) {
	if r.Ours.Err != nil || r.Ref.Err != nil || r.Ref.OpsPerSec <= 0 {
		return 0, false
	}
	return r.Ours.OpsPerSec / r.Ref.OpsPerSec, true
}

// met answers "yes" or "no" for the target, "n/a" when there is no ratio;
// an informational row says so.
func (r row) met() string {
	ratio, ok := r.ratio()
	var s string
	switch {
	case !ok:
		s = "n/a"
	case ratio >= r.Target:
		s = "yes"
	default:
		s = "no"
	}
	if r.Informational {
		s += " (info)"
	}
	return s
}

// writeTable writes rows as one markdown table: ours, the reference, the
// ratio, the target and whether it is met.
func writeTable(w io.Writer, rows []row) error {
	var b strings.Builder
	b.WriteString("| # | ours | ours: rate, p50 / p99 | reference | reference: rate, p50 / p99 | ratio | target | met |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for i, r := range rows {
		ratio := "n/a"
		if x, ok := r.ratio(); ok {
			ratio = strconv.FormatFloat(x, 'f', 2, 64) + "×"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | ≥ %s× | %s |\n", i+1,
			cell(r.Name), cell(formatMeasure(r.Ours)), cell(r.RefName), cell(formatMeasure(r.Ref)),
			ratio, strconv.FormatFloat(r.Target, 'f', -1, 64), r.met())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatMeasure renders a measure as "12,345 ops/s, 1.20 ms / 3.40 ms",
// with the failed operations when there were any.
func formatMeasure(m measure) string {
	if m.Err != nil {
		return "failed: " + m.Err.Error()
	}
	s := formatRate(m.OpsPerSec) + " ops/s"
	if m.P50 > 0 {
		s += ", " + formatLatency(m.P50) + " / " + formatLatency(m.P99)
	}
	if m.Errors > 0 {
		s += fmt.Sprintf(" (errors: %d)", m.Errors)
	}
	if m.Note != "" {
		s += " (" + m.Note + ")"
	}
	return s
}

// formatRate renders a rate with thousands separators, with one decimal
// below 100.
func formatRate(x float64) string {
	if x < 100 {
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	digits := strconv.FormatInt(int64(x+0.5), 10)
	var b strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatLatency renders a duration in µs, ms or s with three significant
// figures or so.
func formatLatency(d time.Duration) string {
	us := float64(d) / float64(time.Microsecond)
	switch {
	case us < 1000:
		return strconv.FormatFloat(us, 'f', 0, 64) + " µs"
	case us < 1e6:
		return strconv.FormatFloat(us/1e3, 'f', 2, 64) + " ms"
	default:
		return strconv.FormatFloat(us/1e6, 'f', 2, 64) + " s"
	}
}

// cell makes s safe inside a markdown table cell: one line, pipes escaped.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
