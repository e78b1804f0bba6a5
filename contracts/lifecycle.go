package contracts

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Limits of version 2 of the waitpoint lifecycle (docs/spec.md §8).
const (
	MaxPendingWaitpoints = 16        // live pending waitpoints per execution (§8.1)
	MaxExpiresInMs       = 1<<53 - 1 // create_waitpoint's expires_in_ms (§8.1)
	MaxTags              = 10        // tags per suspension or pending waitpoint (§8.6)
	MaxTagLen            = 64
)

// Waitpoint statuses of get_waitpoint (docs/spec.md §8.6).
const (
	WaitpointPending = "pending" // made by create_waitpoint, not yet used by a suspend, before its expires_at_ms
	WaitpointOpen    = "open"    // of a suspension that is waiting
	WaitpointClosed  = "closed"  // of a suspension that resumed, was cancelled or was claimed
	WaitpointExpired = "expired" // pending past its expires_at_ms, or of a suspension past its timeout_at_ms
)

// countPrefix is how a count condition is held in SuspendArgs.Condition and
// SuspendOutcome.Condition: "count:n". Envelopes show it as {"count":n}.
const countPrefix = "count:"

// CountCondition is the condition "resume once n distinct waitpoints hold a
// signal" (docs/spec.md §8.2), for SuspendArgs.Condition.
func CountCondition(n int) string { return countPrefix + strconv.Itoa(n) }

// ConditionCount returns how many distinct waitpoints must hold a signal
// for condition to hold, on a suspension of m waitpoints: 1 for "any", m
// for "all", n for CountCondition(n). It returns 0 for anything else.
func ConditionCount(condition string, m int) int {
	switch condition {
	case ConditionAny:
		return 1
	case ConditionAll:
		return m
	}
	n, ok := parseCount(condition)
	if !ok {
		return 0
	}
	return n
}

// parseCount reads CountCondition's form, refusing anything not written by it.
func parseCount(condition string) (int, bool) {
	digits, ok := strings.CutPrefix(condition, countPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || strconv.Itoa(n) != digits {
		return 0, false
	}
	return n, true
}

// ValidateCondition checks a condition for a suspension of m waitpoints:
// "any", "all" or CountCondition(n) with 1 ≤ n ≤ m.
func ValidateCondition(field, condition string, m int) error {
	if condition == ConditionAny || condition == ConditionAll {
		return nil
	}
	n, ok := parseCount(condition)
	if !ok {
		return Invalid(field, `must be "any", "all" or {"count": n}`)
	}
	if n > m {
		return Invalid(field+".count", "must be from 1 to the number of waitpoints")
	}
	return nil
}

// conditionJSON encodes a condition as an envelope shows it: "any", "all"
// or {"count":n}.
type conditionJSON string

// MarshalJSON encodes the condition.
func (c conditionJSON) MarshalJSON() ([]byte, error) {
	if n, ok := parseCount(string(c)); ok {
		return []byte(`{"count":` + strconv.Itoa(n) + `}`), nil
	}
	return json.Marshal(string(c))
}

// UnmarshalJSON decodes either form; see ParseConditionJSON.
func (c *conditionJSON) UnmarshalJSON(b []byte) error {
	s, err := ParseConditionJSON("condition", b)
	*c = conditionJSON(s)
	return err
}

// ParseConditionJSON reads a condition as a request writes it: "any",
// "all" or {"count": n}, n an integer ≥ 1 (the bound by the number of
// waitpoints is Validate's). An absent or null value gives "".
func ParseConditionJSON(field string, raw json.RawMessage) (string, error) {
	t := strings.TrimSpace(string(raw))
	if t == "" || t == "null" {
		return "", nil
	}
	if strings.HasPrefix(t, `"`) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", Invalid(field, `must be "any", "all" or {"count": n}`)
		}
		if s != ConditionAny && s != ConditionAll {
			return "", Invalid(field, `must be "any", "all" or {"count": n}`)
		}
		return s, nil
	}
	var w struct {
		Count json.RawMessage `json:"count"`
	}
	dec := json.NewDecoder(strings.NewReader(t))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil || len(w.Count) == 0 || w.Count[0] == '"' || string(w.Count) == "null" {
		return "", Invalid(field, `must be "any", "all" or {"count": n}`)
	}
	n, err := strconv.ParseInt(string(w.Count), 10, 32)
	if err != nil || n < 1 {
		return "", Invalid(field+".count", "must be from 1 to the number of waitpoints")
	}
	return CountCondition(int(n)), nil
}

// ValidateTags checks tags (docs/spec.md §8.6): at most 10, distinct, each
// 1–64 bytes of [A-Za-z0-9._:-].
func ValidateTags(field string, tags []string) error {
	if len(tags) > MaxTags {
		return Invalid(field, "must hold at most 10 tags")
	}
	for i, t := range tags {
		if len(t) < 1 || len(t) > MaxTagLen || !allIn(t, true) {
			return Invalid(field, "each tag must be 1-64 bytes of [A-Za-z0-9._:-]")
		}
		for _, u := range tags[:i] {
			if u == t {
				return Invalid(field, "must not repeat a tag")
			}
		}
	}
	return nil
}

// CreateWaitpointArgs are the arguments of create_waitpoint (docs/spec.md
// §8.1): a pending waitpoint for an execution that is not suspended.
type CreateWaitpointArgs struct {
	ExecutionID string
	Key         string
	ExpiresInMs int64   // 1 to 2^53-1
	LeaseID     *string // the current lease when the execution is claimed
	Tags        []string
}

// Validate checks the arguments.
func (a CreateWaitpointArgs) Validate() error {
	if err := ValidateIdentifier("execution_id", a.ExecutionID); err != nil {
		return err
	}
	if err := ValidateIdentifier("key", a.Key); err != nil {
		return err
	}
	if err := ValidateRange("expires_in_ms", a.ExpiresInMs, 1, MaxExpiresInMs); err != nil {
		return err
	}
	if a.LeaseID != nil {
		if err := ValidateUUID("lease_id", *a.LeaseID); err != nil {
			return err
		}
	}
	return ValidateTags("tags", a.Tags)
}

// CreateWaitpointOutcome is the create_waitpoint envelope.
type CreateWaitpointOutcome struct {
	Outcome      string   `json:"outcome"`
	ExecutionID  string   `json:"execution_id"`
	WaitpointID  string   `json:"waitpoint_id"`
	WaitpointKey string   `json:"waitpoint_key"`
	CreatedAtMs  int64    `json:"created_at_ms"`
	ExpiresAtMs  int64    `json:"expires_at_ms"`
	Token        string   `json:"token"`
	Tags         []string `json:"tags"`
}

// GetWaitpointArgs are the arguments of get_waitpoint (docs/spec.md §8.6).
type GetWaitpointArgs struct {
	ExecutionID string
	WaitpointID string
}

// Validate checks the arguments.
func (a GetWaitpointArgs) Validate() error {
	if err := ValidateIdentifier("execution_id", a.ExecutionID); err != nil {
		return err
	}
	return ValidateUUID("waitpoint_id", a.WaitpointID)
}

// WaitpointInfo is the get_waitpoint envelope. It never holds the token:
// only its fingerprint (docs/spec.md §3), null for a waitpoint opened
// before fingerprints were kept.
type WaitpointInfo struct {
	ExecutionID      string   `json:"execution_id"`
	WaitpointID      string   `json:"waitpoint_id"`
	WaitpointKey     string   `json:"waitpoint_key"`
	Status           string   `json:"status"`
	CreatedAtMs      int64    `json:"created_at_ms"`
	ExpiresAtMs      *int64   `json:"expires_at_ms"`
	Signals          int      `json:"signals"`
	TokenFingerprint *string  `json:"token_fingerprint"`
	Tags             []string `json:"tags"`
}

// ExtendLeaseArgs are the arguments of extend_lease (docs/spec.md §8.4).
type ExtendLeaseArgs struct {
	ExecutionID string
	LeaseID     string
	LeaseMs     int64 // 1 to 2^53-1; the Engine defaults 0 to DefaultLeaseMs
}

// Validate checks the arguments.
func (a ExtendLeaseArgs) Validate() error {
	if err := ValidateIdentifier("execution_id", a.ExecutionID); err != nil {
		return err
	}
	if err := ValidateUUID("lease_id", a.LeaseID); err != nil {
		return err
	}
	return ValidateRange("lease_ms", a.LeaseMs, 1, MaxLeaseMs)
}

// ExtendLeaseOutcome is the extend_lease envelope.
type ExtendLeaseOutcome struct {
	Outcome          string `json:"outcome"`
	ExecutionID      string `json:"execution_id"`
	LeaseExpiresAtMs int64  `json:"lease_expires_at_ms"`
}

// ReleaseArgs are the arguments of release_execution (docs/spec.md §8.4).
type ReleaseArgs struct {
	ExecutionID string
	LeaseID     string
}

// Validate checks the arguments.
func (a ReleaseArgs) Validate() error { return CompleteArgs(a).Validate() }

// ReleaseOutcome is the release_execution envelope.
type ReleaseOutcome struct {
	Outcome     string `json:"outcome"`
	ExecutionID string `json:"execution_id"`
}

// CancelArgs are the arguments of cancel_suspension (docs/spec.md §8.5).
type CancelArgs struct {
	ExecutionID string
}

// Validate checks the arguments.
func (a CancelArgs) Validate() error { return ValidateIdentifier("execution_id", a.ExecutionID) }

// CancelOutcome is the cancel_suspension envelope.
type CancelOutcome struct {
	Outcome      string `json:"outcome"`
	ExecutionID  string `json:"execution_id"`
	SuspensionID string `json:"suspension_id"`
}
