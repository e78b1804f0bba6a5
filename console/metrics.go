package console

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// series is one sample line of the text exposition format.
type series struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// parseExposition reads the Prometheus text format (version 0.0.4): one
// sample a line, "name{label="value",…} value [timestamp]"; comments and
// lines it cannot read are skipped.
func parseExposition(b []byte) []series {
	var out []series
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if s, ok := parseSample(line); ok {
			out = append(out, s)
		}
	}
	return out
}

func parseSample(line string) (series, bool) {
	s := series{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ \t")
	if i <= 0 {
		return s, false
	}
	s.Name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, " ,")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.Index(line, "=\"")
			if eq <= 0 {
				return s, false
			}
			name := strings.TrimSpace(line[:eq])
			line = line[eq+2:]
			var val strings.Builder
			closed := false
			for j := 0; j < len(line); j++ {
				ch := line[j]
				if ch == '\\' && j+1 < len(line) {
					j++
					switch line[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(line[j])
					}
					continue
				}
				if ch == '"' {
					line, closed = line[j+1:], true
					break
				}
				val.WriteByte(ch)
			}
			if !closed {
				return s, false
			}
			s.Labels[name] = val.String()
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, false
	}
	s.Value = v
	return s, true
}

// chartDef is one rate chart: the sum of the matching counters, per second.
type chartDef struct {
	Title string
	Unit  string
	match func(series) bool
}

func route(s series, names ...string) bool {
	if s.Name != "ff_http_requests_total" {
		return false
	}
	for _, n := range names {
		if s.Labels["route"] == n {
			return true
		}
	}
	return false
}

func ok(s series) bool { return s.Labels["outcome"] == "ok" }

// charts are the overview's rate charts, from the gateway's metrics
// (httpapi: ff_http_requests_total{outcome,route} and
// ff_token_verification_failures_total{reason}).
var charts = []chartDef{
	{"Signals delivered", "signals/s", func(s series) bool {
		return route(s, "deliver_signal", "deliver_signal_callback") && ok(s)
	}},
	{"Suspends", "suspends/s", func(s series) bool { return route(s, "suspend") && ok(s) }},
	{"Claim calls", "calls/s", func(s series) bool {
		return route(s, "claim_resumed_execution", "claim_resumed_executions") && ok(s)
	}},
	{"Completions", "completions/s", func(s series) bool { return route(s, "complete_execution") && ok(s) }},
	{"Errors", "answers/s", func(s series) bool {
		return s.Name == "ff_http_requests_total" && s.Labels["outcome"] != "ok"
	}},
	{"Token failures", "failures/s", func(s series) bool { return s.Name == "ff_token_verification_failures_total" }},
}

// sample is the value of every chart at one moment.
type sample struct {
	at     time.Time
	values []float64 // one per chart
}

// sampler reads the metrics every interval and keeps the last max samples.
type sampler struct {
	mu      sync.Mutex
	src     func() []byte
	now     func() time.Time
	max     int
	every   time.Duration
	samples []sample
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

func startSampler(src func() []byte, every time.Duration, max int, now func() time.Time) *sampler {
	s := &sampler{src: src, now: now, max: max, every: every, done: make(chan struct{}), stopped: make(chan struct{})}
	s.take()
	go s.run()
	return s
}

func (s *sampler) run() {
	defer close(s.stopped)
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.take()
		}
	}
}

func (s *sampler) stop() {
	s.once.Do(func() { close(s.done) })
	<-s.stopped
}

// take reads the metrics once.
func (s *sampler) take() {
	all := parseExposition(s.src())
	smp := sample{at: s.now(), values: make([]float64, len(charts))}
	for i, c := range charts {
		for _, x := range all {
			if c.match(x) {
				smp.values[i] += x.Value
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, smp)
	if len(s.samples) > s.max {
		s.samples = s.samples[len(s.samples)-s.max:]
	}
}

// snapshot returns a copy of the samples.
func (s *sampler) snapshot() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sample(nil), s.samples...)
}

// chartView is one chart as the overview draws it: an inline SVG polyline
// of the rates between successive samples.
type chartView struct {
	Title, Unit string
	Points      string // SVG polyline points
	Latest      string // the last rate, "0.42"
	Peak        string
	Summary     string // the chart in words, for screen readers
}

type ratesView struct {
	Off     bool // no metrics source
	Charts  []chartView
	Samples int
	Window  string // the time the samples span
	Every   string
}

// Chart geometry, in SVG user units.
const (
	chartW = 240
	chartH = 56
)

func (c *Console) ratesView() ratesView {
	if c.rates == nil {
		return ratesView{Off: true}
	}
	ss := c.rates.snapshot()
	v := ratesView{Samples: len(ss), Every: everyText(c.opts.MetricsEvery)}
	if len(ss) > 1 {
		v.Window = humanDuration(ss[len(ss)-1].at.Sub(ss[0].at))
	}
	for i, def := range charts {
		var rates []float64
		for j := 1; j < len(ss); j++ {
			dt := ss[j].at.Sub(ss[j-1].at).Seconds()
			d := ss[j].values[i] - ss[j-1].values[i]
			if d < 0 { // the counters were reset (a restart)
				d = ss[j].values[i]
			}
			if dt > 0 {
				rates = append(rates, d/dt)
			}
		}
		v.Charts = append(v.Charts, drawChart(def, rates))
	}
	return v
}

// everyText writes the sampling interval: "10s", or "300ms" below a second.
func everyText(d time.Duration) string {
	if d < time.Second {
		return d.String()
	}
	return humanDuration(d)
}

func rateText(r float64) string {
	switch {
	case r == 0:
		return "0"
	case r >= 100:
		return strconv.FormatFloat(r, 'f', 0, 64)
	case r >= 1:
		return strconv.FormatFloat(r, 'f', 1, 64)
	default:
		return strconv.FormatFloat(r, 'f', 2, 64)
	}
}

// drawChart lays rates out over the chart's width, the peak at the top.
func drawChart(def chartDef, rates []float64) chartView {
	v := chartView{Title: def.Title, Unit: def.Unit}
	if len(rates) == 0 {
		v.Latest, v.Peak = "–", "–"
		v.Summary = def.Title + ": no rate yet, it needs two samples."
		return v
	}
	peak := 0.0
	for _, r := range rates {
		peak = math.Max(peak, r)
	}
	var pts []string
	step := float64(chartW)
	if len(rates) > 1 {
		step = float64(chartW) / float64(len(rates)-1)
	}
	for i, r := range rates {
		y := float64(chartH - 2)
		if peak > 0 {
			y = float64(chartH-2) - r/peak*float64(chartH-6)
		}
		x := float64(i) * step
		if len(rates) == 1 {
			pts = append(pts, fmt.Sprintf("0,%.1f", y))
			x = chartW
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
	}
	v.Points = strings.Join(pts, " ")
	v.Latest, v.Peak = rateText(rates[len(rates)-1]), rateText(peak)
	v.Summary = fmt.Sprintf("%s: now %s %s, peak %s %s over the last %d intervals.", def.Title, v.Latest, def.Unit, v.Peak, def.Unit, len(rates))
	return v
}
