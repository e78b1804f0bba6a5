package contracts

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits of docs/spec.md §2 and §5.
const (
	MaxKidLen            = 64
	MinSecretBytes       = 32
	MaxSecretBytes       = 64
	MaxGraceMs           = 1<<53 - 1
	MaxIdentifierLen     = 128
	MaxScopeLen          = 256
	MaxMessageLen        = 64 << 10
	MaxPayloadLen        = 64 << 10
	MaxPayloadDepth      = 64 // arrays and objects nested in a payload
	MaxIdempotencyKeyLen = 256
	MinWaitpoints        = 1
	MaxWaitpoints        = 16
	SignalLimit          = 10000   // signals per suspension (§8.3)
	WaitpointSignalLimit = 1000    // signals per waitpoint (§8.3)
	PayloadBudgetBytes   = 1 << 20 // payload bytes per suspension (§8.3)
	DefaultObserveLimit  = 1000
	MaxObserveLimit      = 1000
	DefaultListLimit     = 100
	MaxListLimit         = 1000
	MaxLeaseMs           = 1<<53 - 1
	MaxTimeoutMs         = 1<<53 - 1
)

// Defaults, in one place for every front end. The Engine fills a zero
// ListSuspendedArgs.Limit and a zero ClaimArgs.LeaseMs with them; a grace
// of 0 is a valid grace (the outgoing kid expires at once), so front ends
// apply DefaultGraceMs when the caller gives none.
const (
	DefaultLeaseMs = 30_000              // claim_resumed_execution: 30 s
	DefaultGraceMs = 24 * 60 * 60 * 1000 // rotate_all: 24 h
)

// Rule texts, shared so that every error names its rule the same way.
const (
	ruleKid        = "must be 1-64 bytes of [A-Za-z0-9._-]"
	ruleIdentifier = "must be 1-128 bytes of [A-Za-z0-9._:-]"
	ruleSecret     = "must be hex of even length decoding to 32-64 bytes"
	ruleDots       = `must not be "." or ".."`
)

// ValidateKid checks a key id: 1–64 bytes of [A-Za-z0-9._-] (so never ':').
func ValidateKid(field, kid string) error {
	if len(kid) < 1 || len(kid) > MaxKidLen || !allIn(kid, false) {
		return Invalid(field, ruleKid)
	}
	return nil
}

// ValidateIdentifier checks an execution id, waitpoint key, signal name or
// worker id: 1–128 bytes of [A-Za-z0-9._:-], other than "." and "..",
// which cannot travel as a segment of a URL path.
func ValidateIdentifier(field, s string) error {
	if len(s) < 1 || len(s) > MaxIdentifierLen || !allIn(s, true) {
		return Invalid(field, ruleIdentifier)
	}
	if s == "." || s == ".." {
		return Invalid(field, ruleDots)
	}
	return nil
}

// ParseSecretHex decodes a secret given as hex (either letter case) and
// checks its length. The error never quotes the input.
func ParseSecretHex(field, s string) (Secret, error) {
	if len(s)%2 != 0 {
		return nil, Invalid(field, ruleSecret)
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) < MinSecretBytes || len(b) > MaxSecretBytes {
		return nil, Invalid(field, ruleSecret)
	}
	return Secret(b), nil
}

// ValidateSecret checks the length of a secret given as bytes.
func ValidateSecret(field string, s Secret) error {
	if len(s) < MinSecretBytes || len(s) > MaxSecretBytes {
		return Invalid(field, "must be 32-64 bytes")
	}
	return nil
}

// ValidateRange checks min <= v <= max for an integer field.
func ValidateRange(field string, v, min, max int64) error {
	if v < min || v > max {
		return Invalid(field, fmt.Sprintf("must be an integer from %d to %d", min, max))
	}
	return nil
}

// ValidateMaxLen checks that a byte string is at most max bytes long.
func ValidateMaxLen(field string, n, max int) error {
	if n > max {
		return Invalid(field, fmt.Sprintf("must be at most %d bytes", max))
	}
	return nil
}

// ValidateText checks a free-form string field that is stored and echoed in
// JSON envelopes (an idempotency key): at most max bytes of valid UTF-8
// without NUL. JSON cannot carry other bytes, and SQL text columns refuse
// them, so every backend refuses them alike, before any I/O.
func ValidateText(field, s string, max int) error {
	if err := ValidateMaxLen(field, len(s), max); err != nil {
		return err
	}
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return Invalid(field, "must be valid UTF-8 without NUL")
	}
	return nil
}

// ValidatePayload checks a signal payload: at most 64 KiB and, when not
// empty, one I-JSON value (RFC 7493; see FindJSONFault) whose arrays and
// objects nest at most MaxPayloadDepth deep. It reads the payload once and
// decodes nothing but member names that hold escapes.
func ValidatePayload(field string, p json.RawMessage) error {
	if err := ValidateMaxLen(field, len(p), MaxPayloadLen); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	if f, bad := FindJSONFault(p, 0); bad {
		return Invalid(field, f.Rule)
	}
	return nil
}

// JSONFault is the first place where a JSON text breaks the rules of
// docs/spec.md §2, as FindJSONFault reports it.
type JSONFault struct {
	// Offset is the byte of the text at which the fault was found: the
	// unexpected byte, the invalid UTF-8 sequence, the \u escape, the
	// opening quote of the repeated member name or the bracket one level
	// too deep.
	Offset int
	// Rule is the rule broken, worded for an error detail ("must be ...").
	Rule string
	// Syntax is set when the text is not one JSON value at all; the other
	// faults are JSON that is not I-JSON.
	Syntax bool
}

// The rules of FindJSONFault, as error details word them.
const (
	ruleJSONValue     = "must be a single JSON value"
	ruleJSONUTF8      = "must be valid UTF-8"
	ruleJSONSurrogate = `must be I-JSON: no unpaired surrogate in a \u escape`
	ruleJSONDuplicate = "must be I-JSON: no member name twice in one object"
	ruleJSONDepth     = "must be I-JSON: arrays and objects nested at most 64 deep"
)

// FindJSONFault scans b, in one pass and without decoding its values (only
// member names that hold escapes are unescaped, to compare them), for the first
// fault that keeps it from being one I-JSON value (RFC 7493) as docs/spec.md
// §2 requires of a payload: one JSON value (RFC 8259) with nothing but
// whitespace around it; strings (member names included) of valid UTF-8; no
// \u escape of a surrogate that is not a high one immediately followed by
// a \u escape of a low one; no object with two members of the same name
// (compared after unescaping, so "a" and "\u0061" are the same); arrays and
// objects nested at most MaxPayloadDepth deep.
//
// fieldDepth says which values the depth rule measures: 0 when b is the
// value itself (a payload); 1 when b is an object whose members are the
// values (a request body whose "payload" member is one), so that the limit
// is MaxPayloadDepth+fieldDepth levels of b.
//
// Inside a string, a fault is reported only once the string has closed, so
// a string that never closes is a syntax fault whatever it holds.
func FindJSONFault(b []byte, fieldDepth int) (JSONFault, bool) {
	s := jsonScanners.Get().(*jsonScanner)
	s.p, s.maxDepth = b, MaxPayloadDepth+fieldDepth
	at, f := s.scan()
	s.reset()
	jsonScanners.Put(s)
	if f == faultNone {
		return JSONFault{}, false
	}
	return JSONFault{Offset: at, Rule: f.rule(), Syntax: f == faultSyntax}, true
}

// jsonFault is a class of FindJSONFault's faults.
type jsonFault uint8

const (
	faultNone jsonFault = iota
	faultSyntax
	faultUTF8
	faultSurrogate
	faultDuplicate
	faultDepth
)

func (f jsonFault) rule() string {
	switch f {
	case faultUTF8:
		return ruleJSONUTF8
	case faultSurrogate:
		return ruleJSONSurrogate
	case faultDuplicate:
		return ruleJSONDuplicate
	case faultDepth:
		return ruleJSONDepth
	}
	return ruleJSONValue
}

// jsonScanner holds FindJSONFault's state. Scanners are pooled and keep
// their stacks between calls, so that a scan does not allocate once the
// pool is warm.
type jsonScanner struct {
	p        []byte
	maxDepth int
	frames   []jsonFrame // the open arrays and objects, outermost first
	names    []jsonName  // member names of the open objects, by frame
	arena    []byte      // unescaped member names
	tables   []int32     // hash tables of the open objects that have them, by frame
}

var jsonScanners = sync.Pool{New: func() any { return new(jsonScanner) }}

// jsonSeed keys the hash of member names, so that nobody can choose names
// that collide.
var jsonSeed = maphash.MakeSeed()

// reset forgets the text of the last scan.
func (s *jsonScanner) reset() {
	s.p, s.frames, s.names, s.arena, s.tables = nil, s.frames[:0], s.names[:0], s.arena[:0], s.tables[:0]
}

// jsonFrame is one open array or object. An object's member names are
// names[first:]. From jsonSetFrom members on, they are also in a hash
// table, tables[table:table+size], of indexes into names plus one (0 is
// an empty slot), kept at most half full.
type jsonFrame struct {
	object      bool
	first       int
	table, size int
}

// jsonSetFrom is the member count from which an object's names are looked
// up in a hash table rather than compared one by one.
const jsonSetFrom = 16

// jsonName is a member name: p[start:end], or arena[start:end] when the
// name held escapes.
type jsonName struct {
	start, end int
	unescaped  bool
}

// jsonPlain marks the bytes that a string holds as they are: printable
// ASCII other than the quote and the backslash.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Scanner states: what the next byte other than whitespace must start.
const (
	expectValue = iota // a value
	expectKey          // a member name
	afterValue         // a comma, a closing bracket or the end
)

func (s *jsonScanner) scan() (int, jsonFault) {
	p, n := s.p, len(s.p)
	i, state := 0, expectValue
	for {
		i = skipJSONSpace(p, i)
		switch state {
		case expectValue:
			if i >= n {
				return n, faultSyntax
			}
			switch c := p[i]; {
			case c == '{' || c == '[':
				if len(s.frames) == s.maxDepth {
					return i, faultDepth
				}
				s.frames = append(s.frames, jsonFrame{object: c == '{', first: len(s.names)})
				i = skipJSONSpace(p, i+1)
				if i < n && p[i] == c+2 { // '}' is '{'+2, ']' is '['+2
					s.pop()
					i++
					state = afterValue
				} else if c == '{' {
					state = expectKey
				}
			case c == '"':
				end, _, at, f := s.str(i)
				if f != faultNone {
					return at, f
				}
				i, state = end, afterValue
			case c == '-' || '0' <= c && c <= '9':
				end, ok := jsonNumber(p, i)
				if !ok {
					return end, faultSyntax
				}
				i, state = end, afterValue
			case c == 't' || c == 'f' || c == 'n':
				lit := "null"
				if c == 't' {
					lit = "true"
				} else if c == 'f' {
					lit = "false"
				}
				if n-i < len(lit) || string(p[i:i+len(lit)]) != lit {
					return i, faultSyntax
				}
				i, state = i+len(lit), afterValue
			default:
				return i, faultSyntax
			}
		case expectKey:
			if i >= n || p[i] != '"' {
				return i, faultSyntax
			}
			end, escaped, at, f := s.str(i)
			if f != faultNone {
				return at, f
			}
			if s.repeated(i+1, end-1, escaped) {
				return i, faultDuplicate
			}
			i = skipJSONSpace(p, end)
			if i >= n || p[i] != ':' {
				return i, faultSyntax
			}
			i, state = i+1, expectValue
		case afterValue:
			if len(s.frames) == 0 {
				if i != n {
					return i, faultSyntax
				}
				return 0, faultNone
			}
			if i >= n {
				return n, faultSyntax
			}
			top := &s.frames[len(s.frames)-1]
			switch c := p[i]; {
			case c == ',':
				i++
				if top.object {
					state = expectKey
				} else {
					state = expectValue
				}
			case c == '}' && top.object || c == ']' && !top.object:
				s.pop()
				i++
			default:
				return i, faultSyntax
			}
		}
	}
}

// pop closes the innermost array or object, forgetting its member names.
func (s *jsonScanner) pop() {
	top := s.frames[len(s.frames)-1]
	s.names = s.names[:top.first]
	if top.size > 0 {
		s.tables = s.tables[:top.table]
	}
	s.frames = s.frames[:len(s.frames)-1]
}

// str scans the string whose opening quote is p[i]. It returns the index
// after the closing quote and whether the string holds escapes; or the
// first fault and where it is. A UTF-8 or surrogate fault is reported only
// once the string has closed: until then a syntax fault takes precedence.
func (s *jsonScanner) str(i int) (end int, escaped bool, at int, f jsonFault) {
	p, n := s.p, len(s.p)
	pending, pendingAt := faultNone, 0
	note := func(f jsonFault, at int) {
		if pending == faultNone {
			pending, pendingAt = f, at
		}
	}
	i++
	for {
		for i < n && jsonPlain[p[i]] {
			i++
		}
		if i >= n {
			return 0, false, n, faultSyntax
		}
		switch c := p[i]; {
		case c == '"':
			if pending != faultNone {
				return 0, false, pendingAt, pending
			}
			return i + 1, escaped, 0, faultNone
		case c == '\\':
			escaped = true
			if i+1 >= n {
				return 0, false, n, faultSyntax
			}
			switch p[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				u, ok := jsonHex4(p, i+2)
				if !ok {
					return 0, false, i, faultSyntax
				}
				switch {
				case utf16.IsSurrogate(rune(u)) && u < 0xDC00: // high: a low must follow
					if lo, ok := jsonEscapedUnit(p, i+6); ok && 0xDC00 <= lo && lo <= 0xDFFF {
						i += 12
						continue
					}
					note(faultSurrogate, i)
				case utf16.IsSurrogate(rune(u)): // a low one alone
					note(faultSurrogate, i)
				}
				i += 6
			default:
				return 0, false, i, faultSyntax
			}
		case c < 0x20:
			return 0, false, i, faultSyntax
		default: // c >= 0x80
			r, size := utf8.DecodeRune(p[i:])
			if r == utf8.RuneError && size == 1 {
				note(faultUTF8, i)
			}
			i += size
		}
	}
}

// repeated records the member name p[start:end] (escaped: still to be
// unescaped) in the innermost object and reports whether the object
// already has a member of that name.
func (s *jsonScanner) repeated(start, end int, escaped bool) bool {
	name := jsonName{start: start, end: end}
	if escaped {
		a := len(s.arena)
		s.arena = unescapeJSON(s.arena, s.p[start:end])
		name = jsonName{start: a, end: len(s.arena), unescaped: true}
	}
	key := s.nameBytes(name)
	top := &s.frames[len(s.frames)-1]
	if top.size == 0 {
		for _, other := range s.names[top.first:] {
			if bytes.Equal(s.nameBytes(other), key) {
				return true
			}
		}
		s.names = append(s.names, name)
		if len(s.names)-top.first == jsonSetFrom {
			s.rehash(top, 4*jsonSetFrom)
		}
		return false
	}
	table := s.tables[top.table : top.table+top.size]
	mask := uint64(top.size - 1)
	for h := maphash.Bytes(jsonSeed, key) & mask; ; h = (h + 1) & mask {
		slot := table[h]
		if slot == 0 {
			s.names = append(s.names, name)
			table[h] = int32(len(s.names))
			break
		}
		if bytes.Equal(s.nameBytes(s.names[slot-1]), key) {
			return true
		}
	}
	if n := len(s.names) - top.first; 2*n > top.size {
		s.rehash(top, 4*top.size)
	}
	return false
}

// rehash gives the innermost object f a table of size slots (a power of
// two) holding its names. f's table, if any, is the last of tables.
func (s *jsonScanner) rehash(f *jsonFrame, size int) {
	if f.size == 0 {
		f.table = len(s.tables)
	}
	s.tables = append(s.tables[:f.table], make([]int32, size)...)
	f.size = size
	table, mask := s.tables[f.table:], uint64(size-1)
	for i := f.first; i < len(s.names); i++ {
		h := maphash.Bytes(jsonSeed, s.nameBytes(s.names[i])) & mask
		for table[h] != 0 {
			h = (h + 1) & mask
		}
		table[h] = int32(i + 1)
	}
}

func (s *jsonScanner) nameBytes(nm jsonName) []byte {
	if nm.unescaped {
		return s.arena[nm.start:nm.end]
	}
	return s.p[nm.start:nm.end]
}

// unescapeJSON appends to dst the text of a string's body that scan has
// already found valid (every surrogate escape is paired).
func unescapeJSON(dst, body []byte) []byte {
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch body[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			u, _ := jsonHex4(body, i+2)
			r := rune(u)
			if utf16.IsSurrogate(r) {
				lo, _ := jsonHex4(body, i+8)
				r = utf16.DecodeRune(r, rune(lo))
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default: // '"', '\\', '/'
			dst = append(dst, body[i+1])
		}
		i += 2
	}
	return dst
}

// jsonEscapedUnit reads a \uXXXX escape at p[i:].
func jsonEscapedUnit(p []byte, i int) (uint16, bool) {
	if i+1 >= len(p) || p[i] != '\\' || p[i+1] != 'u' {
		return 0, false
	}
	return jsonHex4(p, i+2)
}

// jsonHex4 reads four hex digits at p[i:].
func jsonHex4(p []byte, i int) (uint16, bool) {
	if i+4 > len(p) {
		return 0, false
	}
	var u uint16
	for _, c := range p[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		u = u<<4 | uint16(c)
	}
	return u, true
}

// jsonNumber scans the number at p[i:]: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?.
// It returns the index after it, or the offending index and false.
func jsonNumber(p []byte, i int) (int, bool) {
	n := len(p)
	digits := func(i int) (int, bool) {
		j := i
		for j < n && '0' <= p[j] && p[j] <= '9' {
			j++
		}
		return j, j > i
	}
	if p[i] == '-' {
		i++
	}
	switch {
	case i < n && p[i] == '0':
		i++
	case i < n && '1' <= p[i] && p[i] <= '9':
		i, _ = digits(i)
	default:
		return i, false
	}
	var ok bool
	if i < n && p[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return i, false
		}
	}
	if i < n && (p[i] == 'e' || p[i] == 'E') {
		i++
		if i < n && (p[i] == '+' || p[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	return i, true
}

func skipJSONSpace(p []byte, i int) int {
	for i < len(p) {
		switch p[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// ValidateUUID checks a generated identifier (waitpoint_id, suspension_id,
// lease_id): a UUID in canonical lowercase form.
func ValidateUUID(field, s string) error {
	if len(s) != 36 {
		return Invalid(field, "must be a lowercase canonical UUID")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return Invalid(field, "must be a lowercase canonical UUID")
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return Invalid(field, "must be a lowercase canonical UUID")
			}
		}
	}
	return nil
}

func allIn(s string, colon bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '-' || (colon && c == ':')
		if !ok {
			return false
		}
	}
	return true
}

// Secret holds HMAC key bytes. It never prints, logs or encodes its bytes:
// fmt verbs, log/slog and encoding/json all see "[REDACTED]". Use the bytes
// only through []byte(s).
type Secret []byte

// String implements fmt.Stringer without revealing the bytes.
func (Secret) String() string { return "[REDACTED]" }

// GoString implements fmt.GoStringer without revealing the bytes.
func (Secret) GoString() string { return "contracts.Secret([REDACTED])" }

// Format implements fmt.Formatter so that no verb (%x, %v, %s, %q) reveals the bytes.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[REDACTED]")) }

// MarshalJSON encodes the placeholder, never the bytes.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[REDACTED]"`), nil }

// Equal compares two secrets as bytes in constant time.
func (s Secret) Equal(o Secret) bool { return hmacEqual(s, o) }

// Hex returns the canonical lowercase hex form, for drivers that store text.
func (s Secret) Hex() string { return hex.EncodeToString(s) }
