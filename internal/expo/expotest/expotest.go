// Package expotest is a strict parser of the Prometheus text exposition
// format 0.0.4, for tests of what package expo writes: HELP and TYPE
// before a family's samples, families contiguous and not repeated, no
// timestamps, counters ending in _total, histograms whose buckets are
// cumulative and end in +Inf with one _sum and one _count equal to it.
package expotest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Sample is one sample line.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Family is one metric family: its HELP text, TYPE and samples in order.
type Family struct {
	Name, Help, Type string
	Samples          []Sample
}

// Exposition is a parsed scrape: the families by name, and their names in
// the order of the body.
type Exposition struct {
	Families map[string]*Family
	Order    []string
}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Parse reads body strictly: a malformed line, a sample before its TYPE, an
// unknown escape, unsorted labels or a histogram whose buckets are not
// cumulative is an error.
func Parse(body []byte) (*Exposition, error) {
	x := &Exposition{Families: map[string]*Family{}}
	var cur *Family
	sc := bufio.NewScanner(bytes.NewReader(body))
	if len(body) > 0 && body[len(body)-1] != '\n' {
		return nil, errors.New("body does not end in a newline")
	}
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fail := func(format string, a ...any) error {
			return fmt.Errorf("line %d %q: %s", n, line, fmt.Sprintf(format, a...))
		}
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, help, ok := strings.Cut(strings.TrimPrefix(line, "# HELP "), " ")
			if !ok || !metricNameRE.MatchString(name) {
				return nil, fail("bad HELP")
			}
			if x.Families[name] != nil {
				return nil, fail("family %s repeated", name)
			}
			text, err := unescape(help, false)
			if err != nil {
				return nil, fail("%v", err)
			}
			cur = &Family{Name: name, Help: text}
			x.Families[name] = cur
			x.Order = append(x.Order, name)
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, ok := strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
			if !ok || cur == nil || cur.Name != name || cur.Type != "" || len(cur.Samples) > 0 {
				return nil, fail("TYPE not right after the family's HELP")
			}
			switch typ {
			case "counter", "gauge", "histogram":
			default:
				return nil, fail("unexpected type %s", typ)
			}
			cur.Type = typ
		case line == "" || strings.HasPrefix(line, "#"):
			return nil, fail("unexpected line")
		default:
			s, err := parseSample(line)
			if err != nil {
				return nil, fail("%v", err)
			}
			if cur == nil || cur.Type == "" {
				return nil, fail("sample before its family's TYPE")
			}
			ok := false
			switch cur.Type {
			case "counter":
				ok = s.Name == cur.Name && strings.HasSuffix(s.Name, "_total") && s.Value >= 0
			case "gauge":
				ok = s.Name == cur.Name
			case "histogram":
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					ok = ok || s.Name == cur.Name+suf
				}
				_, hasLe := s.Labels["le"]
				ok = ok && hasLe == (s.Name == cur.Name+"_bucket")
			}
			if !ok {
				return nil, fail("sample does not belong to %s %s", cur.Type, cur.Name)
			}
			cur.Samples = append(cur.Samples, s)
		}
	}
	for _, f := range x.Families {
		if f.Type == "" || len(f.Samples) == 0 {
			return nil, fmt.Errorf("family %s without TYPE or samples", f.Name)
		}
	}
	return x, x.CheckHistograms()
}

// parseSample parses `name{l="v",...} value`.
func parseSample(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, errors.New("no value")
	}
	s.Name = line[:i]
	if !metricNameRE.MatchString(s.Name) {
		return s, fmt.Errorf("bad metric name %q", s.Name)
	}
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		var prevName string
		for {
			name, after, ok := strings.Cut(rest, `="`)
			if !ok || !labelNameRE.MatchString(name) {
				return s, fmt.Errorf("bad label at %q", rest)
			}
			if _, dup := s.Labels[name]; dup {
				return s, fmt.Errorf("label %s repeated", name)
			}
			if name != "le" && name <= prevName {
				return s, fmt.Errorf("label %s not sorted after %s", name, prevName)
			}
			prevName = name
			// The value ends at the first unescaped quote.
			end := -1
			for j := 0; j < len(after); j++ {
				if after[j] == '\\' {
					j++
					continue
				}
				if after[j] == '"' {
					end = j
					break
				}
			}
			if end < 0 {
				return s, errors.New("unterminated label value")
			}
			v, err := unescape(after[:end], true)
			if err != nil {
				return s, err
			}
			s.Labels[name] = v
			rest = after[end+1:]
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
				continue
			}
			if !strings.HasPrefix(rest, "}") {
				return s, fmt.Errorf("expected , or } at %q", rest)
			}
			rest = rest[1:]
			break
		}
	}
	if !strings.HasPrefix(rest, " ") || strings.Count(rest, " ") != 1 {
		return s, fmt.Errorf("expected one space and a value at %q", rest)
	}
	v, err := strconv.ParseFloat(rest[1:], 64)
	if err != nil {
		return s, err
	}
	s.Value = v
	return s, nil
}

// unescape undoes the format's escapes: \\ and \n, and \" in label values.
func unescape(s string, label bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' || label && c == '"' {
			return "", fmt.Errorf("unescaped %q", c)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i++; i == len(s) {
			return "", errors.New("trailing backslash")
		}
		switch {
		case s[i] == '\\':
			b.WriteByte('\\')
		case s[i] == 'n':
			b.WriteByte('\n')
		case label && s[i] == '"':
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

// CheckHistograms checks every histogram series: le ascending and ending in
// +Inf, counts cumulative, _count equal to the +Inf bucket, one _sum.
func (x *Exposition) CheckHistograms() error {
	for _, f := range x.Families {
		if f.Type != "histogram" {
			continue
		}
		type series struct {
			les                  []float64
			counts               []float64
			sum, count           int
			countValue, infValue float64
		}
		all := map[string]*series{}
		for _, s := range f.Samples {
			var key []string
			for k, v := range s.Labels {
				if k != "le" {
					key = append(key, k+"="+v)
				}
			}
			slices.Sort(key)
			k := strings.Join(key, "\x00")
			if all[k] == nil {
				all[k] = &series{}
			}
			se := all[k]
			switch s.Name {
			case f.Name + "_bucket":
				le, err := strconv.ParseFloat(s.Labels["le"], 64)
				if err != nil {
					return fmt.Errorf("%s: le %q", f.Name, s.Labels["le"])
				}
				if n := len(se.les); n > 0 && (le <= se.les[n-1] || s.Value < se.counts[n-1]) {
					return fmt.Errorf("%s{%s}: bucket le=%v out of order or not cumulative", f.Name, k, le)
				}
				se.les, se.counts = append(se.les, le), append(se.counts, s.Value)
				se.infValue = s.Value
			case f.Name + "_sum":
				se.sum++
			case f.Name + "_count":
				se.count++
				se.countValue = s.Value
			}
		}
		for k, se := range all {
			if len(se.les) == 0 || !math.IsInf(se.les[len(se.les)-1], 1) || se.sum != 1 || se.count != 1 || se.countValue != se.infValue {
				return fmt.Errorf("%s{%s}: want buckets ending in +Inf, one _sum and one _count equal to +Inf; got %+v", f.Name, k, se)
			}
		}
	}
	return nil
}

// Samples returns every sample named name, of any family.
func (x *Exposition) Samples(name string) []Sample {
	var out []Sample
	for _, f := range x.Families {
		for _, s := range f.Samples {
			if s.Name == name {
				out = append(out, s)
			}
		}
	}
	return out
}

// Value returns the one sample of name with exactly the labels given as
// name, value pairs; it fails the test when there is none.
func (x *Exposition) Value(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, ok := x.Lookup(name, labels...)
	if !ok {
		t.Fatalf("no sample %s%q", name, labels)
	}
	return v
}

// Lookup returns the one sample of name with exactly the labels given as
// name, value pairs, and whether there is one.
func (x *Exposition) Lookup(name string, labels ...string) (float64, bool) {
	for _, s := range x.Samples(name) {
		if len(s.Labels) != len(labels)/2 {
			continue
		}
		match := true
		for i := 0; i < len(labels); i += 2 {
			if v, ok := s.Labels[labels[i]]; !ok || v != labels[i+1] {
				match = false
			}
		}
		if match {
			return s.Value, true
		}
	}
	return 0, false
}

// Equal reports whether a and b hold the same families and samples in the
// same order.
func Equal(a, b *Exposition) bool {
	return fmt.Sprint(a.Order) == fmt.Sprint(b.Order) && fmt.Sprintf("%v", flatten(a)) == fmt.Sprintf("%v", flatten(b))
}

func flatten(x *Exposition) []string {
	var out []string
	for _, name := range x.Order {
		for _, s := range x.Families[name].Samples {
			out = append(out, fmt.Sprint(s.Name, s.Labels, s.Value))
		}
	}
	return out
}
