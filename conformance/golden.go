package conformance

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// update rewrites the golden files in testdata/ instead of comparing:
//
//	go test ./conformance -run TestConformance -conformance.update
var update = flag.Bool("conformance.update", false, "rewrite conformance/testdata golden files from the backend under test")

// goldenFS holds the golden files, embedded so that third-party drivers
// running the suite from their own module compare against the same files.
//
//go:embed testdata/*.json
var goldenFS embed.FS

// Placeholders that stand for volatile values in golden files (docs/spec.md §7).
const (
	placeholderMs  = "<ms>"
	placeholderMAC = "<mac>"
)

var (
	uuidRE  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	tokenRE = regexp.MustCompile(`^([A-Za-z0-9._-]{1,64}):[0-9a-f]{64}$`)
	// htmlEscapeRE finds what json.Marshal's HTML escaping leaves in output.
	htmlEscapeRE = regexp.MustCompile(`\\u00(3c|3e|26)`)
)

// goldenOption adjusts how checkGolden normalizes a value.
type goldenOption func(*goldenConfig)

type goldenConfig struct {
	keepTokens bool
}

// keepTokens leaves tokens literal: for deterministic tokens (fixed kid,
// secret and message) whose exact value is part of the contract.
func keepTokens() goldenOption { return func(c *goldenConfig) { c.keepTokens = true } }

// checkGolden compares the envelope of v with testdata/<name>.json after
// replacing volatile values with placeholders:
//
//   - UUIDs anywhere in a string become "<id:1>", "<id:2>", … numbered by
//     first appearance, so equal ids stay equal;
//   - a non-null value of a key ending in "_at_ms" becomes "<ms>";
//   - a token "<kid>:<64 hex>" becomes "<kid>:<mac>" (unless keepTokens);
//   - a non-null "cursor"/"next_cursor" becomes "<cursor:N>";
//   - a non-null "token_fingerprint" becomes "<fingerprint:N>".
//
// An error v (or an error inside a slice or map) is compared as its envelope
// {"error":{...}}. Arrays of per-partition objects (rotate_all "entries",
// list_kids "partitions", anything whose elements carry "partition") must
// list partitions 0..P-1 in order and be equal entry by entry after
// normalization; they are compared as the one-partition golden, so backends
// with any P share the files. v may be a slice of steps, compared as a JSON
// array.
//
// With -conformance.update the normalized value is written to the file instead.
// A difference fails through require with the differing lines and three
// lines of context around them (- the golden file, + this backend), not the
// two whole texts: golden files run to hundreds of lines.
func checkGolden(t testing.TB, name string, v any, opts ...goldenOption) {
	t.Helper()
	got, err := goldenText(v, opts...)
	require.NoError(t, err, "golden %s", name)
	if *update {
		require.NoError(t, writeGolden(name, got), "golden %s", name)
		return
	}
	want, err := goldenFS.ReadFile("testdata/" + name + ".json")
	require.NoError(t, err, "golden %s: missing testdata/%s.json (run with -conformance.update against the memory backend, then review it)", name, name)
	if d := lineDiff(string(want), got); d != "" {
		require.Failf(t, "golden "+name+" differs",
			"the envelopes differ from testdata/%s.json\n--- golden\n+++ backend\n%s", name, diffContext(d, 3))
	}
}

// goldenText is the normalized, pretty-printed JSON of v that checkGolden
// compares. Exposed to the package's tests and to scenarios that want to
// compare two envelopes with each other.
func goldenText(v any, opts ...goldenOption) (string, error) {
	var cfg goldenConfig
	for _, o := range opts {
		o(&cfg)
	}
	raw, err := encodeEnvelope(v)
	if err != nil {
		return "", err
	}
	if m := htmlEscapeRE.Find(raw); m != nil {
		return "", fmt.Errorf("envelope escapes HTML (%s): envelopes are encoded without HTML escaping, as the CLI prints them", m)
	}
	tree, err := parseOrdered(raw)
	if err != nil {
		return "", err
	}
	tree, err = collapsePartitions(tree, cfg)
	if err != nil {
		return "", err
	}
	n := newNormalizer(cfg)
	tree = n.walk(tree, "")
	var b strings.Builder
	writePretty(&b, tree, 0)
	b.WriteByte('\n')
	return b.String(), nil
}

// encodeEnvelope encodes v as the CLI prints it: encoding/json without HTML
// escaping, errors as {"error":{...}}.
func encodeEnvelope(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(envelopeOf(v)); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return buf.Bytes(), nil
}

// envelopeOf maps errors (also inside []any) onto their error envelope.
func envelopeOf(v any) any {
	switch x := v.(type) {
	case error:
		return errorEnvelope(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = envelopeOf(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = envelopeOf(e)
		}
		return out
	}
	return v
}

// errorEnvelope is the envelope of a failed call; nil stays nil.
func errorEnvelope(err error) any {
	if err == nil {
		return nil
	}
	return contracts.ErrorEnvelope{Error: contracts.AsError(err)}
}

// ---- an order-preserving JSON tree ----

// object is a JSON object that keeps its keys in encoding order, so golden
// files show fields in the order the CLI prints them.
type object struct {
	keys []string
	vals []any
}

func (o *object) get(k string) (any, bool) {
	for i, key := range o.keys {
		if key == k {
			return o.vals[i], true
		}
	}
	return nil, false
}

func (o *object) set(k string, v any) {
	for i, key := range o.keys {
		if key == k {
			o.vals[i] = v
			return
		}
	}
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

func (o *object) clone() *object {
	c := &object{keys: append([]string(nil), o.keys...), vals: make([]any, len(o.vals))}
	for i, v := range o.vals {
		c.vals[i] = cloneTree(v)
	}
	return c
}

func cloneTree(v any) any {
	switch x := v.(type) {
	case *object:
		return x.clone()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneTree(e)
		}
		return out
	}
	return v
}

// parseOrdered decodes JSON into *object, []any, string, json.Number, bool, nil.
func parseOrdered(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decode: trailing data")
	}
	return v, nil
}

func parseValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		o := &object{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			o.keys = append(o.keys, kt.(string))
			o.vals = append(o.vals, v)
		}
		_, err = dec.Token() // '}'
		return o, err
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err = dec.Token() // ']'
		return arr, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

// writePretty writes v indented by two spaces per level, like
// json.MarshalIndent, without HTML escaping.
func writePretty(b *strings.Builder, v any, depth int) {
	ind := strings.Repeat("  ", depth)
	switch x := v.(type) {
	case *object:
		if len(x.keys) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{\n")
		for i, k := range x.keys {
			b.WriteString(ind + "  ")
			writeString(b, k)
			b.WriteString(": ")
			writePretty(b, x.vals[i], depth+1)
			if i < len(x.keys)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(ind + "}")
	case []any:
		if len(x) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteString("[\n")
		for i, e := range x {
			b.WriteString(ind + "  ")
			writePretty(b, e, depth+1)
			if i < len(x)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(ind + "]")
	case string:
		writeString(b, x)
	case json.Number:
		b.WriteString(x.String())
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case nil:
		b.WriteString("null")
	default:
		fmt.Fprintf(b, "%q", fmt.Sprint(x))
	}
}

func writeString(b *strings.Builder, s string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Write(bytes.TrimRight(buf.Bytes(), "\n"))
}

// ---- normalization ----

// collapsePartitions replaces every array of per-partition objects by its
// entry 0 after checking that entry i names partition i and equals entry 0
// once normalized with partition 0.
func collapsePartitions(v any, cfg goldenConfig) (any, error) {
	switch x := v.(type) {
	case *object:
		for i := range x.vals {
			c, err := collapsePartitions(x.vals[i], cfg)
			if err != nil {
				return nil, err
			}
			x.vals[i] = c
		}
		return x, nil
	case []any:
		for i := range x {
			c, err := collapsePartitions(x[i], cfg)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		if !isPartitionArray(x) {
			return x, nil
		}
		return collapseEntries(x, cfg)
	}
	return v, nil
}

func isPartitionArray(arr []any) bool {
	if len(arr) == 0 {
		return false
	}
	for _, e := range arr {
		o, ok := e.(*object)
		if !ok {
			return false
		}
		if _, ok := o.get("partition"); !ok {
			return false
		}
	}
	return true
}

func collapseEntries(arr []any, cfg goldenConfig) (any, error) {
	var first string
	for i, e := range arr {
		o := e.(*object)
		p, _ := o.get("partition")
		if n, ok := p.(json.Number); !ok || n.String() != strconv.Itoa(i) {
			return nil, fmt.Errorf("per-partition entry %d names partition %v: entries must list partitions 0..P-1 in order", i, p)
		}
		c := o.clone()
		c.set("partition", json.Number("0"))
		var b strings.Builder
		writePretty(&b, newNormalizer(cfg).walk(c, ""), 0)
		if i == 0 {
			first = b.String()
			continue
		}
		if b.String() != first {
			return nil, fmt.Errorf("partition %d differs from partition 0 (- partition 0, + partition %d):\n%s", i, i, lineDiff(first, b.String()))
		}
	}
	return []any{arr[0]}, nil
}

// normalizer replaces volatile values, numbering ids and cursors by first
// appearance in document order.
type normalizer struct {
	cfg          goldenConfig
	ids          map[string]string
	cursors      map[string]string
	fingerprints map[string]string
}

func newNormalizer(cfg goldenConfig) *normalizer {
	return &normalizer{cfg: cfg, ids: map[string]string{}, cursors: map[string]string{}, fingerprints: map[string]string{}}
}

func (n *normalizer) walk(v any, key string) any {
	switch x := v.(type) {
	case *object:
		for i, k := range x.keys {
			x.vals[i] = n.walk(x.vals[i], k)
		}
		return x
	case []any:
		for i := range x {
			x[i] = n.walk(x[i], key)
		}
		return x
	case json.Number:
		if strings.HasSuffix(key, "_at_ms") {
			return placeholderMs
		}
		return x
	case string:
		return n.str(x, key)
	}
	return v
}

func (n *normalizer) str(s, key string) string {
	switch {
	case key == "cursor" || key == "next_cursor":
		return n.number(n.cursors, s, "cursor")
	case key == "token_fingerprint":
		// Derived from a token over fresh ids; scenarios check it against
		// the token they were handed (checkFingerprint).
		return n.number(n.fingerprints, s, "fingerprint")
	case strings.HasSuffix(key, "_at_ms"):
		return placeholderMs
	}
	if m := tokenRE.FindStringSubmatch(s); m != nil && !n.cfg.keepTokens {
		return m[1] + ":" + placeholderMAC
	}
	return uuidRE.ReplaceAllStringFunc(s, func(id string) string { return n.number(n.ids, id, "id") })
}

func (n *normalizer) number(seen map[string]string, v, kind string) string {
	if p, ok := seen[v]; ok {
		return p
	}
	p := "<" + kind + ":" + strconv.Itoa(len(seen)+1) + ">"
	seen[v] = p
	return p
}

// ---- files and diffs ----

// testdataDir is conformance/testdata in the source tree this package was
// compiled from, where -conformance.update writes.
func testdataDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the conformance package source")
	}
	return filepath.Join(filepath.Dir(file), "testdata"), nil
}

func writeGolden(name, text string) error {
	dir, err := testdataDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".json"), []byte(text), 0o644)
}

// lineDiff returns "" when a == b, else both texts line by line with the
// differing lines marked.
func lineDiff(a, b string) string {
	if a == b {
		return ""
	}
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	i, j := 0, 0
	for i < len(al) || j < len(bl) {
		switch {
		case i < len(al) && j < len(bl) && al[i] == bl[j]:
			out.WriteString("  " + al[i] + "\n")
			i, j = i+1, j+1
		case j < len(bl) && (i >= len(al) || indexFrom(al, bl[j], i) < 0):
			out.WriteString("+ " + bl[j] + "\n")
			j++
		default:
			out.WriteString("- " + al[i] + "\n")
			i++
		}
	}
	return out.String()
}

// diffContext keeps the lines of a lineDiff that differ ("- ", "+ ") and n
// lines on either side, and replaces each run of other lines by "@@".
func diffContext(d string, n int) string {
	lines := strings.Split(strings.TrimSuffix(d, "\n"), "\n")
	keep := make([]bool, len(lines))
	for i, l := range lines {
		if strings.HasPrefix(l, "- ") || strings.HasPrefix(l, "+ ") {
			for j := max(0, i-n); j <= min(len(lines)-1, i+n); j++ {
				keep[j] = true
			}
		}
	}
	var out strings.Builder
	for i, l := range lines {
		switch {
		case keep[i]:
			out.WriteString(l + "\n")
		case i == 0 || keep[i-1]:
			out.WriteString("@@\n")
		}
	}
	return out.String()
}

func indexFrom(lines []string, s string, from int) int {
	for k := from; k < len(lines); k++ {
		if lines[k] == s {
			return k
		}
	}
	return -1
}
