package contracts

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
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
)

// ValidateKid checks a key id: 1–64 bytes of [A-Za-z0-9._-] (so never ':').
func ValidateKid(field, kid string) error {
	if len(kid) < 1 || len(kid) > MaxKidLen || !allIn(kid, false) {
		return Invalid(field, ruleKid)
	}
	return nil
}

// ValidateIdentifier checks an execution id, waitpoint key, signal name or
// worker id: 1–128 bytes of [A-Za-z0-9._:-].
func ValidateIdentifier(field, s string) error {
	if len(s) < 1 || len(s) > MaxIdentifierLen || !allIn(s, true) {
		return Invalid(field, ruleIdentifier)
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
// empty, one JSON value.
func ValidatePayload(field string, p json.RawMessage) error {
	if err := ValidateMaxLen(field, len(p), MaxPayloadLen); err != nil {
		return err
	}
	if len(p) > 0 && !json.Valid(p) {
		return Invalid(field, "must be a single JSON value")
	}
	return nil
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
