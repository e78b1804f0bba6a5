package contracts

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
)

// Resume conditions of a suspension. A quorum "n of the waitpoints" is
// written CountCondition(n) (docs/spec.md §8.2).
const (
	ConditionAny = "any"
	ConditionAll = "all"
)

// Outcome words of the suspension operations (docs/spec.md §5).
const (
	OutcomeSuspended = "suspended"
	OutcomeAccepted  = "accepted"
	OutcomeDuplicate = "duplicate"
	OutcomeClaimed   = "claimed"
	OutcomeNone      = "none"
	OutcomeCompleted = "completed"
	// Version 2 of the waitpoint lifecycle (docs/spec.md §8).
	OutcomeCreated          = "created"
	OutcomeAlreadySatisfied = "already_satisfied"
	OutcomeExtended         = "extended"
	OutcomeReleased         = "released"
	OutcomeCancelled        = "cancelled"
)

// Claim reasons.
const (
	ReasonSignal    = "signal"
	ReasonTimeout   = "timeout"
	ReasonCancelled = "cancelled" // cancel_suspension (docs/spec.md §8.5)
)

// Execution states as drivers store them. An execution in no state is not
// stored at all ("none").
const (
	StateSuspended = "suspended"
	StateResumed   = "resumed"
	StateClaimed   = "claimed"
)

// WaitpointSpec names one waitpoint of a suspension: a new one by its Key,
// or a pending waitpoint made by create_waitpoint by its id (Pending,
// docs/spec.md §8.1). Exactly one of the two is set.
type WaitpointSpec struct {
	Key     string `json:"key,omitempty"`
	Pending string `json:"pending,omitempty"`
}

// SuspendArgs are the arguments of suspend.
type SuspendArgs struct {
	ExecutionID    string
	Waitpoints     []WaitpointSpec
	Condition      string // "any", "all" or CountCondition(n); the Engine defaults "" to "any"
	TimeoutMs      *int64 // nil: never times out
	IdempotencyKey string // empty: none
	LeaseID        *string
	Tags           []string // 0-10 distinct tags (docs/spec.md §8.6)
}

// UsesVersion2 reports whether the arguments use an addition of
// docs/spec.md §8 (a pending waitpoint, a count condition, tags), which a
// backend without driver.Lifecycle cannot honour.
func (a SuspendArgs) UsesVersion2() bool {
	if len(a.Tags) > 0 || strings.HasPrefix(a.Condition, countPrefix) {
		return true
	}
	for _, w := range a.Waitpoints {
		if w.Pending != "" {
			return true
		}
	}
	return false
}

// Validate checks the arguments (docs/spec.md §2, §5).
func (a SuspendArgs) Validate() error {
	if err := ValidateIdentifier("execution_id", a.ExecutionID); err != nil {
		return err
	}
	if len(a.Waitpoints) < MinWaitpoints || len(a.Waitpoints) > MaxWaitpoints {
		return Invalid("waitpoints", "must hold 1-16 waitpoints")
	}
	seen := make(map[string]bool, len(a.Waitpoints))
	for _, w := range a.Waitpoints {
		if err := w.validate(); err != nil {
			return err
		}
		id := "k:" + w.Key
		if w.Pending != "" {
			id = "p:" + w.Pending
		}
		if seen[id] {
			if w.Pending != "" {
				return Invalid("waitpoints.pending", "must name each pending waitpoint once")
			}
			return Invalid("waitpoints.key", ruleUniqueKey)
		}
		seen[id] = true
	}
	if err := ValidateCondition("condition", a.Condition, len(a.Waitpoints)); err != nil {
		return err
	}
	if a.TimeoutMs != nil {
		if err := ValidateRange("timeout_ms", *a.TimeoutMs, 1, MaxTimeoutMs); err != nil {
			return err
		}
	}
	if err := ValidateText("idempotency_key", a.IdempotencyKey, MaxIdempotencyKeyLen); err != nil {
		return err
	}
	if a.LeaseID != nil {
		if err := ValidateUUID("lease_id", *a.LeaseID); err != nil {
			return err
		}
	}
	return ValidateTags("tags", a.Tags)
}

// validate checks that exactly one of Key and Pending is set, and well formed.
func (w WaitpointSpec) validate() error {
	switch {
	case w.Key != "" && w.Pending != "":
		return Invalid("waitpoints", `each item must hold "key" or "pending", not both`)
	case w.Pending != "":
		return ValidateUUID("waitpoints.pending", w.Pending)
	}
	return ValidateIdentifier("waitpoints.key", w.Key)
}

// ruleUniqueKey is the rule a repeated waitpoint key breaks, whether both
// are new keys or one is a pending waitpoint's (docs/spec.md §8.1).
const ruleUniqueKey = "must be unique within one suspension"

// Fingerprint is a stable digest of the arguments, stored with a suspend
// idempotency record so that a replay with other arguments is recognised
// (idempotency_mismatch).
func (a SuspendArgs) Fingerprint() string {
	h := sha256.New()
	field := func(s string) { h.Write([]byte(strconv.Itoa(len(s)) + ":" + s)) }
	field(a.ExecutionID)
	field(a.Condition)
	for _, w := range a.Waitpoints {
		if w.Pending != "" {
			field("") // no key is empty: the pending id that follows cannot be read as one
			field(w.Pending)
			continue
		}
		field(w.Key)
	}
	field("|")
	if a.TimeoutMs != nil {
		field(strconv.FormatInt(*a.TimeoutMs, 10))
	} else {
		field("-")
	}
	if a.LeaseID != nil {
		field(*a.LeaseID)
	} else {
		field("-")
	}
	field(a.IdempotencyKey)
	if len(a.Tags) > 0 { // appended, so fingerprints stored before tags existed still match
		field("#tags")
		for _, t := range a.Tags {
			field(t)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// WaitpointOutcome is one opened waitpoint and its token.
type WaitpointOutcome struct {
	WaitpointID  string `json:"waitpoint_id"`
	WaitpointKey string `json:"waitpoint_key"`
	CreatedAtMs  int64  `json:"created_at_ms"`
	Token        string `json:"token"`
}

// SuspendOutcome is the suspend envelope: the suspension with its
// waitpoints (outcome suspended), or, when the signals already buffered on
// the pending waitpoints it uses satisfy its condition, outcome
// already_satisfied with those signals in delivery order (docs/spec.md §8.1).
type SuspendOutcome struct {
	Outcome       string
	ExecutionID   string
	SuspensionID  string
	SuspendedAtMs int64
	TimeoutAtMs   *int64
	Condition     string
	Waitpoints    []WaitpointOutcome
	Tags          []string
	Signals       []Signal // already_satisfied only
}

type suspendedJSON struct {
	Outcome       string             `json:"outcome"`
	ExecutionID   string             `json:"execution_id"`
	SuspensionID  string             `json:"suspension_id"`
	SuspendedAtMs int64              `json:"suspended_at_ms"`
	TimeoutAtMs   *int64             `json:"timeout_at_ms"`
	Condition     conditionJSON      `json:"condition"`
	Waitpoints    []WaitpointOutcome `json:"waitpoints"`
	Tags          []string           `json:"tags"`
}

type satisfiedJSON struct {
	Outcome      string   `json:"outcome"`
	ExecutionID  string   `json:"execution_id"`
	SuspensionID string   `json:"suspension_id"`
	Signals      []Signal `json:"signals"`
}

// MarshalJSON encodes the shape of the outcome.
func (o SuspendOutcome) MarshalJSON() ([]byte, error) {
	if o.Outcome == OutcomeAlreadySatisfied {
		return marshal(satisfiedJSON{o.Outcome, o.ExecutionID, o.SuspensionID, nonNil(o.Signals)})
	}
	return marshal(suspendedJSON{o.Outcome, o.ExecutionID, o.SuspensionID, o.SuspendedAtMs, o.TimeoutAtMs,
		conditionJSON(o.Condition), nonNil(o.Waitpoints), nonNil(o.Tags)})
}

// UnmarshalJSON decodes either shape.
func (o *SuspendOutcome) UnmarshalJSON(b []byte) error {
	var w struct {
		suspendedJSON
		Signals []Signal `json:"signals"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	s := w.suspendedJSON
	*o = SuspendOutcome{s.Outcome, s.ExecutionID, s.SuspensionID, s.SuspendedAtMs, s.TimeoutAtMs,
		string(s.Condition), s.Waitpoints, s.Tags, w.Signals}
	return nil
}

// nonNil returns s, or an empty slice for nil: envelopes show [] rather
// than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// DeliverSignalArgs are the arguments of deliver_signal.
type DeliverSignalArgs struct {
	ExecutionID    string
	WaitpointID    string
	Token          string
	Name           string
	Payload        json.RawMessage // empty: no payload (null)
	IdempotencyKey string          // empty: none
	// Limits are the budgets a delivery is checked against (docs/spec.md
	// §8.3). The Engine sets them from its options; drivers read them with
	// Limits.OrDefaults, so a zero value means the defaults.
	Limits SignalLimits
}

// SignalLimits are the budgets of one suspension's token holders
// (docs/spec.md §8.3): signals per waitpoint, signals per suspension and
// payload bytes per suspension. Zero fields mean the defaults.
type SignalLimits struct {
	PerWaitpoint  int
	PerSuspension int
	PayloadBytes  int64
}

// DefaultSignalLimits are the budgets of docs/spec.md §8.3.
func DefaultSignalLimits() SignalLimits {
	return SignalLimits{PerWaitpoint: WaitpointSignalLimit, PerSuspension: SignalLimit, PayloadBytes: PayloadBudgetBytes}
}

// OrDefaults returns l with every zero field set to its default.
func (l SignalLimits) OrDefaults() SignalLimits {
	d := DefaultSignalLimits()
	if l.PerWaitpoint == 0 {
		l.PerWaitpoint = d.PerWaitpoint
	}
	if l.PerSuspension == 0 {
		l.PerSuspension = d.PerSuspension
	}
	if l.PayloadBytes == 0 {
		l.PayloadBytes = d.PayloadBytes
	}
	return l
}

// Validate checks that every limit is zero (the default) or from 1 to ten
// times its default: an Engine may lower the budgets, and raise them only
// that far.
func (l SignalLimits) Validate() error {
	d := DefaultSignalLimits()
	if err := ValidateRange("limits.per_waitpoint", int64(l.PerWaitpoint), 0, 10*int64(d.PerWaitpoint)); err != nil {
		return err
	}
	if err := ValidateRange("limits.per_suspension", int64(l.PerSuspension), 0, 10*int64(d.PerSuspension)); err != nil {
		return err
	}
	return ValidateRange("limits.payload_bytes", l.PayloadBytes, 0, 10*d.PayloadBytes)
}

// Validate checks the arguments, the token's format included. A waitpoint_id
// that is not a UUID cannot name a waitpoint; it is reported as
// invalid_token / signature_mismatch so a caller learns nothing from it.
func (a DeliverSignalArgs) Validate() error {
	if err := ValidateIdentifier("execution_id", a.ExecutionID); err != nil {
		return err
	}
	if _, err := ParseToken("token", a.Token); err != nil {
		return err
	}
	if err := ValidateIdentifier("name", a.Name); err != nil {
		return err
	}
	if err := ValidatePayload("payload", a.Payload); err != nil {
		return err
	}
	if err := ValidateText("idempotency_key", a.IdempotencyKey, MaxIdempotencyKeyLen); err != nil {
		return err
	}
	if ValidateUUID("waitpoint_id", a.WaitpointID) != nil {
		// The same error as a wrong MAC (docs/spec.md §5.2): no existence oracle.
		return ErrSignatureMismatch.With("token: signature does not match")
	}
	return nil
}

// DeliverSignalOutcome is the deliver_signal envelope:
// {"outcome":"accepted","signal_id":S,"resumed":bool} or
// {"outcome":"duplicate","signal_id":S}.
type DeliverSignalOutcome struct {
	Outcome  string
	SignalID string
	Resumed  bool
}

// MarshalJSON encodes the shape of the outcome.
func (o DeliverSignalOutcome) MarshalJSON() ([]byte, error) {
	if o.Outcome == OutcomeDuplicate {
		return marshal(struct {
			Outcome  string `json:"outcome"`
			SignalID string `json:"signal_id"`
		}{o.Outcome, o.SignalID})
	}
	return marshal(struct {
		Outcome  string `json:"outcome"`
		SignalID string `json:"signal_id"`
		Resumed  bool   `json:"resumed"`
	}{o.Outcome, o.SignalID, o.Resumed})
}

// UnmarshalJSON decodes either shape.
func (o *DeliverSignalOutcome) UnmarshalJSON(b []byte) error {
	var w struct {
		Outcome  string `json:"outcome"`
		SignalID string `json:"signal_id"`
		Resumed  bool   `json:"resumed"`
	}
	err := json.Unmarshal(b, &w)
	*o = DeliverSignalOutcome(w)
	return err
}

// Signal is one recorded signal. Payload is JSON null when none was given;
// IdempotencyKey encodes as null when empty.
type Signal struct {
	SignalID       string
	WaitpointID    string
	WaitpointKey   string
	Name           string
	Payload        json.RawMessage
	IdempotencyKey string
	DeliveredAtMs  int64
}

type signalJSON struct {
	SignalID       string          `json:"signal_id"`
	WaitpointID    string          `json:"waitpoint_id"`
	WaitpointKey   string          `json:"waitpoint_key"`
	Name           string          `json:"name"`
	Payload        json.RawMessage `json:"payload"`
	IdempotencyKey *string         `json:"idempotency_key"`
	DeliveredAtMs  int64           `json:"delivered_at_ms"`
}

// MarshalJSON encodes the signal with null for an absent payload or key.
func (s Signal) MarshalJSON() ([]byte, error) {
	p := s.Payload
	if len(p) == 0 {
		p = json.RawMessage("null")
	}
	return marshal(signalJSON{s.SignalID, s.WaitpointID, s.WaitpointKey, s.Name, p, nullable(s.IdempotencyKey), s.DeliveredAtMs})
}

// UnmarshalJSON decodes the signal.
func (s *Signal) UnmarshalJSON(b []byte) error {
	var w signalJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = Signal{SignalID: w.SignalID, WaitpointID: w.WaitpointID, WaitpointKey: w.WaitpointKey, Name: w.Name, DeliveredAtMs: w.DeliveredAtMs}
	if string(w.Payload) != "null" {
		s.Payload = w.Payload
	}
	if w.IdempotencyKey != nil {
		s.IdempotencyKey = *w.IdempotencyKey
	}
	return nil
}

// ObserveSignalsArgs are the arguments of observe_signals.
type ObserveSignalsArgs struct {
	ExecutionID string
	Limit       int    // 1-1000; the Engine defaults 0 to 1000
	Cursor      string // empty: from the first signal; else a next_cursor
}

// Validate checks the arguments.
func (a ObserveSignalsArgs) Validate() error {
	if err := ValidateIdentifier("execution_id", a.ExecutionID); err != nil {
		return err
	}
	if err := ValidateRange("limit", int64(a.Limit), 1, MaxObserveLimit); err != nil {
		return err
	}
	if a.Cursor != "" {
		if _, err := DecodeSignalCursor(a.Cursor); err != nil {
			return err
		}
	}
	return nil
}

// ObserveSignalsResult is the observe_signals envelope: a page of the
// signals of the execution's latest suspension in delivery order, and the
// cursor of the next page (null on the last).
type ObserveSignalsResult struct {
	ExecutionID  string   `json:"execution_id"`
	SuspensionID string   `json:"suspension_id"`
	Signals      []Signal `json:"signals"`
	NextCursor   *string  `json:"next_cursor"`
}

// SignalCursor is the position after a signal in a suspension's delivery
// order: its suspension and its place (0-based) in that order. A cursor of
// another suspension than the latest starts from the beginning of nothing:
// the driver answers an empty last page.
type SignalCursor struct {
	SuspensionID string
	Position     int64 // signals of the suspension before the next page
}

// EncodeSignalCursor returns the opaque form of c.
func EncodeSignalCursor(c SignalCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s1:" + strconv.FormatInt(c.Position, 10) + ":" + c.SuspensionID))
}

// DecodeSignalCursor parses an opaque cursor made by EncodeSignalCursor; any
// other string is validation / invalid_input.
func DecodeSignalCursor(s string) (SignalCursor, error) {
	bad := Invalid("cursor", "must be a next_cursor returned by observe_signals")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(raw), "s1:") {
		return SignalCursor{}, bad
	}
	pos, id, ok := strings.Cut(string(raw[3:]), ":")
	if !ok {
		return SignalCursor{}, bad
	}
	n, err := strconv.ParseInt(pos, 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != pos || ValidateUUID("cursor", id) != nil {
		return SignalCursor{}, bad
	}
	return SignalCursor{SuspensionID: id, Position: n}, nil
}

// ListSuspendedArgs are the arguments of list_suspended.
type ListSuspendedArgs struct {
	Limit  int    // 1-1000; the Engine defaults 0 to 100
	Cursor string // empty: first page
	Tag    string // empty: every suspended execution; else those whose suspension carries it (docs/spec.md §8.6)
}

// Validate checks the arguments, decoding the cursor.
func (a ListSuspendedArgs) Validate() error {
	if err := ValidateRange("limit", int64(a.Limit), 1, MaxListLimit); err != nil {
		return err
	}
	if a.Tag != "" {
		if err := ValidateTags("tag", []string{a.Tag}); err != nil {
			return err
		}
	}
	if a.Cursor != "" {
		_, err := DecodeCursor(a.Cursor)
		return err
	}
	return nil
}

// SuspendedExecution is one entry of list_suspended.
type SuspendedExecution struct {
	ExecutionID   string   `json:"execution_id"`
	SuspensionID  string   `json:"suspension_id"`
	SuspendedAtMs int64    `json:"suspended_at_ms"`
	TimeoutAtMs   *int64   `json:"timeout_at_ms"`
	Waitpoints    int      `json:"waitpoints"`
	Tags          []string `json:"tags"`
}

// MarshalJSON encodes the entry with [] for no tags.
func (x SuspendedExecution) MarshalJSON() ([]byte, error) {
	type plain SuspendedExecution
	p := plain(x)
	p.Tags = nonNil(p.Tags)
	return marshal(p)
}

// ListSuspendedResult is the list_suspended envelope. NextCursor is set
// exactly when more executions follow the page.
type ListSuspendedResult struct {
	Executions []SuspendedExecution `json:"executions"`
	NextCursor *string              `json:"next_cursor"`
}

// Cursor is the decoded position of list_suspended: the page continues
// strictly after (SuspendedAtMs, ExecutionID).
type Cursor struct {
	SuspendedAtMs int64
	ExecutionID   string
}

// After reports whether (ms, id) sorts strictly after the cursor.
func (c Cursor) After(ms int64, id string) bool {
	return ms > c.SuspendedAtMs || ms == c.SuspendedAtMs && id > c.ExecutionID
}

// EncodeCursor returns the opaque cursor for the position after e.
func EncodeCursor(c Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + strconv.FormatInt(c.SuspendedAtMs, 10) + ":" + c.ExecutionID))
}

// DecodeCursor parses an opaque cursor; anything malformed is
// validation / invalid_input naming the cursor.
func DecodeCursor(s string) (Cursor, error) {
	bad := Invalid("cursor", "must be a cursor returned by list_suspended")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, bad
	}
	rest, ok := strings.CutPrefix(string(b), "v1:")
	if !ok {
		return Cursor{}, bad
	}
	msText, id, ok := strings.Cut(rest, ":")
	if !ok {
		return Cursor{}, bad
	}
	ms, err := strconv.ParseInt(msText, 10, 64)
	if err != nil || ms < 0 || ValidateIdentifier("cursor", id) != nil {
		return Cursor{}, bad
	}
	return Cursor{SuspendedAtMs: ms, ExecutionID: id}, nil
}

// ClaimArgs are the arguments of claim_resumed_execution.
type ClaimArgs struct {
	WorkerID string
	LeaseMs  int64 // 1 to 2^53-1; the Engine defaults 0 to DefaultLeaseMs
}

// Validate checks the arguments.
func (a ClaimArgs) Validate() error {
	if err := ValidateIdentifier("worker_id", a.WorkerID); err != nil {
		return err
	}
	return ValidateRange("lease_ms", a.LeaseMs, 1, MaxLeaseMs)
}

// ClaimOutcome is the claim_resumed_execution envelope: {"outcome":"none"}
// or the claimed execution with its lease and the suspension's signals.
type ClaimOutcome struct {
	Outcome          string
	ExecutionID      string
	SuspensionID     string
	Reason           string
	LeaseID          string
	LeaseExpiresAtMs int64
	Signals          []Signal
}

type claimedJSON struct {
	Outcome          string   `json:"outcome"`
	ExecutionID      string   `json:"execution_id"`
	SuspensionID     string   `json:"suspension_id"`
	Reason           string   `json:"reason"`
	LeaseID          string   `json:"lease_id"`
	LeaseExpiresAtMs int64    `json:"lease_expires_at_ms"`
	Signals          []Signal `json:"signals"`
}

// MarshalJSON encodes the shape of the outcome.
func (o ClaimOutcome) MarshalJSON() ([]byte, error) {
	if o.Outcome != OutcomeClaimed {
		return marshal(struct {
			Outcome string `json:"outcome"`
		}{OutcomeNone})
	}
	s := o.Signals
	if s == nil {
		s = []Signal{}
	}
	return marshal(claimedJSON{o.Outcome, o.ExecutionID, o.SuspensionID, o.Reason, o.LeaseID, o.LeaseExpiresAtMs, s})
}

// UnmarshalJSON decodes either shape.
func (o *ClaimOutcome) UnmarshalJSON(b []byte) error {
	var w claimedJSON
	err := json.Unmarshal(b, &w)
	*o = ClaimOutcome(w)
	return err
}

// CompleteArgs are the arguments of complete_execution.
type CompleteArgs struct {
	ExecutionID string
	LeaseID     string
}

// Validate checks the arguments.
func (a CompleteArgs) Validate() error {
	if err := ValidateIdentifier("execution_id", a.ExecutionID); err != nil {
		return err
	}
	return ValidateUUID("lease_id", a.LeaseID)
}

// CompleteOutcome is the complete_execution envelope.
type CompleteOutcome struct {
	Outcome     string `json:"outcome"`
	ExecutionID string `json:"execution_id"`
}
