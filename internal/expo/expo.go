// Package expo is a minimal, dependency-free implementation of the metric
// types the module's front ends need (labelled counters, gauges and
// histograms) and of the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). It keeps
// the library free of github.com/prometheus/client_golang and its
// dependencies; httpapi and worker share it.
//
// Its output matches what client_golang wrote for the same metrics:
// families sorted by name and omitted while they have no series, label
// pairs sorted by label name, series sorted by label values, HELP before
// TYPE, histogram buckets cumulative and ending with le="+Inf". One
// difference: counts are written as integers (1234567, where client_golang
// wrote 1.234567e+06), which parsers read as the same value.
//
// Label values must be bounded sets (route names, error codes, outcomes):
// series are created on first use and never removed.
package expo

import (
	"bytes"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ContentType is the Content-Type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// maxLabels bounds the label names of one vector, so that a label tuple is
// a fixed-size array: a comparable map key that costs no allocation.
const maxLabels = 2

// labelValues is one series' label values, in the order of the vector's
// label names; unused slots are empty.
type labelValues [maxLabels]string

func newLabelValues(labels []string, values []string) labelValues {
	if len(values) != len(labels) {
		panic("expo: metric has " + strconv.Itoa(len(labels)) + " labels, got " + strconv.Itoa(len(values)) + " values")
	}
	var lv labelValues
	copy(lv[:], values)
	return lv
}

// Family is one metric with its series, able to write itself.
type Family interface {
	// MetricName is the family's name.
	MetricName() string
	// AppendText appends the family in the text format, nothing while it
	// has no series.
	AppendText(b *bytes.Buffer)
}

// Registry is a fixed set of families, written sorted by name.
type Registry struct {
	families []Family
}

// NewRegistry returns a registry of the families. It panics when two
// share a name, a programming error.
func NewRegistry(families ...Family) *Registry {
	fs := slices.Clone(families)
	slices.SortFunc(fs, func(a, b Family) int { return strings.Compare(a.MetricName(), b.MetricName()) })
	for i := 1; i < len(fs); i++ {
		if fs[i].MetricName() == fs[i-1].MetricName() {
			panic("expo: family " + fs[i].MetricName() + " registered twice")
		}
	}
	return &Registry{families: fs}
}

// Exposition returns the families in the text format 0.0.4.
func (r *Registry) Exposition() []byte {
	var b bytes.Buffer
	for _, f := range r.families {
		f.AppendText(&b)
	}
	return b.Bytes()
}

// ServeExposition answers a GET or HEAD request with body, an exposition:
// status 200, Content-Type ContentType and Content-Length; the body only
// to GET. The caller answers other methods.
func ServeExposition(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// vec is the part of counters, gauges and histograms that maps label
// tuples onto series. Series are created on first use and never removed:
// label values are bounded sets.
type vec[S any] struct {
	name, help string
	labels     []string // sorted, at most maxLabels
	newSeries  func() *S

	mu     sync.RWMutex
	series map[labelValues]*S
}

func newVec[S any](name, help string, labels []string, newSeries func() *S) vec[S] {
	if len(labels) > maxLabels || !slices.IsSorted(labels) || len(slices.Compact(slices.Clone(labels))) != len(labels) {
		panic("expo: metric " + name + ": label names must be distinct, sorted and at most " + strconv.Itoa(maxLabels))
	}
	return vec[S]{name: name, help: help, labels: labels, newSeries: newSeries, series: make(map[labelValues]*S)}
}

// MetricName is the family's name.
func (v *vec[S]) MetricName() string { return v.name }

// get returns the series of lv, creating it on first use. The common case
// is one read-locked map lookup.
func (v *vec[S]) get(lv labelValues) *S {
	v.mu.RLock()
	s := v.series[lv]
	v.mu.RUnlock()
	if s != nil {
		return s
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s = v.series[lv]; s == nil {
		s = v.newSeries()
		v.series[lv] = s
	}
	return s
}

type seriesOf[S any] struct {
	lv labelValues
	s  *S
}

// snapshot returns the series sorted by label values.
func (v *vec[S]) snapshot() []seriesOf[S] {
	v.mu.RLock()
	out := make([]seriesOf[S], 0, len(v.series))
	for lv, s := range v.series {
		out = append(out, seriesOf[S]{lv, s})
	}
	v.mu.RUnlock()
	slices.SortFunc(out, func(a, b seriesOf[S]) int { return slices.Compare(a.lv[:], b.lv[:]) })
	return out
}

// writeHeader writes the HELP and TYPE lines.
func (v *vec[S]) writeHeader(b *bytes.Buffer, typ string) {
	b.WriteString("# HELP ")
	b.WriteString(v.name)
	b.WriteByte(' ')
	helpEscaper.WriteString(b, v.help) //nolint:errcheck // bytes.Buffer does not fail
	b.WriteString("\n# TYPE ")
	b.WriteString(v.name)
	b.WriteByte(' ')
	b.WriteString(typ)
	b.WriteByte('\n')
}

// writeSeriesName writes name+suffix and the label set of lv, with an
// extra le label when le is not empty.
func (v *vec[S]) writeSeriesName(b *bytes.Buffer, suffix string, lv labelValues, le string) {
	b.WriteString(v.name)
	b.WriteString(suffix)
	if len(v.labels) == 0 && le == "" {
		return
	}
	b.WriteByte('{')
	for i, name := range v.labels {
		if i > 0 {
			b.WriteByte(',')
		}
		writeLabel(b, name, lv[i])
	}
	if le != "" {
		if len(v.labels) > 0 {
			b.WriteByte(',')
		}
		writeLabel(b, "le", le)
	}
	b.WriteByte('}')
}

func writeLabel(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteString(`="`)
	labelEscaper.WriteString(b, strings.ToValidUTF8(value, "\uFFFD")) //nolint:errcheck // bytes.Buffer does not fail
	b.WriteByte('"')
}

// Escaping of the text format: label values escape backslash, double quote
// and newline; HELP text escapes backslash and newline.
var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

// FormatFloat writes f as the text format does (and Go's %g, shortest).
func FormatFloat(f float64) string {
	switch {
	case math.IsInf(f, +1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// CounterVec is a counter with labels.
type CounterVec struct {
	vec[atomic.Uint64]
}

// NewCounterVec returns a counter family. Label names must be distinct,
// sorted and at most two; it panics otherwise, a programming error.
func NewCounterVec(name, help string, labels ...string) *CounterVec {
	return &CounterVec{newVec(name, help, labels, func() *atomic.Uint64 { return new(atomic.Uint64) })}
}

// Inc adds one to the series of the label values, given in the order of
// the label names.
func (c *CounterVec) Inc(values ...string) {
	c.get(newLabelValues(c.labels, values)).Add(1)
}

// Add adds n to the series of the label values; Add(0, ...) makes the
// series appear with 0.
func (c *CounterVec) Add(n uint64, values ...string) {
	c.get(newLabelValues(c.labels, values)).Add(n)
}

// AppendText appends the family in the text format.
func (c *CounterVec) AppendText(b *bytes.Buffer) {
	series := c.snapshot()
	if len(series) == 0 {
		return
	}
	c.writeHeader(b, "counter")
	for _, s := range series {
		c.writeSeriesName(b, "", s.lv, "")
		b.WriteByte(' ')
		b.WriteString(strconv.FormatUint(s.s.Load(), 10))
		b.WriteByte('\n')
	}
}

// GaugeVec is a gauge with labels: an integer value that goes up and down
// (in-flight handlers, say).
type GaugeVec struct {
	vec[atomic.Int64]
}

// NewGaugeVec returns a gauge family; label names as NewCounterVec.
func NewGaugeVec(name, help string, labels ...string) *GaugeVec {
	return &GaugeVec{newVec(name, help, labels, func() *atomic.Int64 { return new(atomic.Int64) })}
}

// Add adds delta (negative to go down) to the series of the label values;
// Add(0, ...) makes the series appear with 0.
func (g *GaugeVec) Add(delta int64, values ...string) {
	g.get(newLabelValues(g.labels, values)).Add(delta)
}

// Set sets the series of the label values to v.
func (g *GaugeVec) Set(v int64, values ...string) {
	g.get(newLabelValues(g.labels, values)).Store(v)
}

// AppendText appends the family in the text format.
func (g *GaugeVec) AppendText(b *bytes.Buffer) {
	series := g.snapshot()
	if len(series) == 0 {
		return
	}
	g.writeHeader(b, "gauge")
	for _, s := range series {
		g.writeSeriesName(b, "", s.lv, "")
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(s.s.Load(), 10))
		b.WriteByte('\n')
	}
}

// HistogramVec is a histogram with labels over fixed bucket upper bounds.
type HistogramVec struct {
	vec[histogramSeries]
	bounds []float64 // ascending upper bounds, without +Inf
	les    []string  // bounds formatted as le label values, then "+Inf"
}

// histogramSeries counts observations per bucket, not cumulatively: one
// atomic add per observation. counts has one slot more than the bounds, the
// +Inf bucket. The count of the series is the sum of counts, so _count
// always equals the +Inf bucket; _sum may miss observations in flight
// while a scrape reads it.
type histogramSeries struct {
	counts  []atomic.Uint64
	sumBits atomic.Uint64 // math.Float64bits of the sum
}

// NewHistogramVec returns a histogram family over bounds (finite, distinct
// and ascending; it panics otherwise); label names as NewCounterVec.
func NewHistogramVec(name, help string, bounds []float64, labels ...string) *HistogramVec {
	if len(bounds) == 0 || !slices.IsSorted(bounds) || len(slices.Compact(slices.Clone(bounds))) != len(bounds) ||
		math.IsInf(bounds[len(bounds)-1], +1) || math.IsNaN(bounds[0]) {
		panic("expo: histogram " + name + ": bounds must be finite, distinct and ascending")
	}
	les := make([]string, 0, len(bounds)+1)
	for _, ub := range bounds {
		les = append(les, FormatFloat(ub))
	}
	les = append(les, "+Inf")
	n := len(bounds) + 1
	return &HistogramVec{
		vec:    newVec(name, help, labels, func() *histogramSeries { return &histogramSeries{counts: make([]atomic.Uint64, n)} }),
		bounds: bounds,
		les:    les,
	}
}

// Les returns the le label values of the buckets, ending with "+Inf".
func (h *HistogramVec) Les() []string { return slices.Clone(h.les) }

// Observe records v in the series of the label values, given in the order
// of the label names.
func (h *HistogramVec) Observe(v float64, values ...string) {
	s := h.get(newLabelValues(h.labels, values))
	// The first bucket whose upper bound is >= v (le is inclusive); NaN and
	// values above every bound land in +Inf.
	s.counts[sort.SearchFloat64s(h.bounds, v)].Add(1)
	for {
		old := s.sumBits.Load()
		if s.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// AppendText appends the family in the text format.
func (h *HistogramVec) AppendText(b *bytes.Buffer) {
	series := h.snapshot()
	if len(series) == 0 {
		return
	}
	h.writeHeader(b, "histogram")
	for _, s := range series {
		var cum uint64
		for i := range s.s.counts {
			cum += s.s.counts[i].Load()
			h.writeSeriesName(b, "_bucket", s.lv, h.les[i])
			b.WriteByte(' ')
			b.WriteString(strconv.FormatUint(cum, 10))
			b.WriteByte('\n')
		}
		h.writeSeriesName(b, "_sum", s.lv, "")
		b.WriteByte(' ')
		b.WriteString(FormatFloat(math.Float64frombits(s.s.sumBits.Load())))
		b.WriteByte('\n')
		h.writeSeriesName(b, "_count", s.lv, "")
		b.WriteByte(' ')
		b.WriteString(strconv.FormatUint(cum, 10))
		b.WriteByte('\n')
	}
}

// ExponentialBuckets returns count upper bounds from start, each factor
// times the one before, computed as client_golang's ExponentialBuckets does
// so that the bounds are the same float64 values.
func ExponentialBuckets(start, factor float64, count int) []float64 {
	b := make([]float64, count)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}
