package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// ruleUTF8 is the rule of every text the API reads from a request: bytes
// that are not valid UTF-8 are refused, never replaced (docs/spec.md §2).
const ruleUTF8 = "must be valid UTF-8"

// decodeText reads the request body and decodes it into dst like
// decodeBody, after two checks on the body as bytes, since encoding/json
// would replace what they refuse with U+FFFD, so that two distinct values
// (two idempotency keys, say) would arrive as one:
//
//   - every byte is valid UTF-8;
//   - the body is I-JSON (contracts.FindJSONFault at field depth 1): no
//     unpaired surrogate escape, no member name twice in an object, member
//     values nested at most 64 deep.
//
// Either fault is validation / invalid_input naming the top-level member
// that holds it ("body" when there is none, or its name is not a plain
// field name). The error never quotes the body.
func decodeText(r *http.Request, dst any) error { return decodeTextOr(r, dst, false) }

// decodeOptionalText is decodeText for a route whose body may be left out
// (cancel_suspension's): an empty body, or one of whitespace only, leaves
// dst as it is, like {}; any other body is held to decodeText's rules.
func decodeOptionalText(r *http.Request, dst any) error { return decodeTextOr(r, dst, true) }

// decodeTextOr is decodeText; with emptyOK, a body of whitespace only
// decodes to nothing.
func decodeTextOr(r *http.Request, dst any, emptyOK bool) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errBodyTooLarge.With("body: must be at most %d bytes", tooLarge.Limit)
		}
		return contracts.Invalid("body", "must be one JSON object")
	}
	if emptyOK && len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if i := invalidUTF8(b); i >= 0 {
		return contracts.Invalid(memberAt(b, i), ruleUTF8)
	}
	if f, bad := contracts.FindJSONFault(b, 1); bad {
		if f.Syntax {
			return contracts.Invalid("body", "must be one JSON object")
		}
		return contracts.Invalid(memberAt(b, f.Offset), f.Rule)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return decodeBody(r, dst)
}

// pathText returns the path parameter name, refusing bytes that are not
// valid UTF-8 (a %FF in the path decodes to one).
func pathText(r *http.Request, name string) (string, error) {
	v := r.PathValue(name)
	if !utf8.ValidString(v) {
		return "", contracts.Invalid(name, ruleUTF8)
	}
	return v, nil
}

// queryText returns the query parameter name, refusing bytes that are not
// valid UTF-8.
func queryText(r *http.Request, name string) (string, error) {
	v := r.URL.Query().Get(name)
	if !utf8.ValidString(v) {
		return "", contracts.Invalid(name, ruleUTF8)
	}
	return v, nil
}

// headerText checks that every value of the header name is valid UTF-8;
// field names it in the error.
func headerText(r *http.Request, name, field string) error {
	for _, v := range r.Header.Values(name) {
		if !utf8.ValidString(v) {
			return contracts.Invalid(field, ruleUTF8)
		}
	}
	return nil
}

// invalidUTF8 returns the offset of the first byte of b that does not
// begin a valid UTF-8 sequence, or -1.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// memberAt names the top-level member of the JSON object b whose value
// holds the byte at offset off: its name when it is a plain field name
// (1-64 bytes of [a-z0-9_]), else "body". It reads b with encoding/json's
// token stream, which goes on past the faults it is asked about (it
// replaces invalid UTF-8, keeps the last of two members), and stops at the
// token that reaches off.
func memberAt(b []byte, off int) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	depth, wantName, member := 0, false, ""
	for {
		tok, err := dec.Token()
		if err != nil {
			return "body"
		}
		reached := dec.InputOffset() > int64(off)
		if depth == 1 && wantName {
			// tok is a member name, or the '}' closing the body.
			member, _ = tok.(string)
			if reached { // the fault is in the name: a repeated one is named
				if !plainField(member) {
					return "body"
				}
				return member
			}
			wantName = false
			continue
		}
		if reached {
			if depth == 0 || !plainField(member) {
				return "body"
			}
			return member
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
				wantName = depth == 1 && d == '{'
				continue
			default:
				depth--
			}
		}
		if depth == 1 {
			wantName = true // the member's value has ended
		}
	}
}

// plainField reports whether s looks like one of the API's field names, so
// that an error may name it without echoing arbitrary caller text.
func plainField(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
