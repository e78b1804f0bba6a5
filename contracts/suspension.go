package contracts

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
)

// Resume conditions of a suspension.
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
)

// Claim reasons.
const (
	ReasonSignal  = "signal"
	ReasonTimeout = "timeout"
)

// Execution states as drivers store them. An execution in no state is not
// stored at all ("none").
const (
	StateSuspended = "suspended"
	StateResumed   = "resumed"
	StateClaimed   = "claimed"
)

// WaitpointSpec names one waitpoint to open.
type WaitpointSpec struct {
	Key string `json:"key"`
}

// SuspendArgs are the arguments of suspend.
type SuspendArgs struct {
	ExecutionID    string
	Waitpoints     []WaitpointSpec
	Condition      string // "any" or "all"; the Engine defaults "" to "any"
	TimeoutMs      *int64 // nil: never times out
	IdempotencyKey string // empty: none
	LeaseID        *string
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
		if err := ValidateIdentifier("waitpoints.key", w.Key); err != nil {
			return err
		}
		if seen[w.Key] {
			return Invalid("waitpoints.key", "must be unique within one suspension")
		}
		seen[w.Key] = true
	}
	if a.Condition != ConditionAny && a.Condition != ConditionAll {
		return Invalid("condition", `must be "any" or "all"`)
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
		return ValidateUUID("lease_id", *a.LeaseID)
	}
	return nil
}

// Fingerprint is a stable digest of the arguments, stored with a suspend
// idempotency record so that a replay with other arguments is recognised
// (idempotency_mismatch).
func (a SuspendArgs) Fingerprint() string {
	h := sha256.New()
	field := func(s string) { h.Write([]byte(strconv.Itoa(len(s)) + ":" + s)) }
	field(a.ExecutionID)
	field(a.Condition)
	for _, w := range a.Waitpoints {
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
	return hex.EncodeToString(h.Sum(nil))
}

// WaitpointOutcome is one opened waitpoint and its token.
type WaitpointOutcome struct {
	WaitpointID  string `json:"waitpoint_id"`
	WaitpointKey string `json:"waitpoint_key"`
	CreatedAtMs  int64  `json:"created_at_ms"`
	Token        string `json:"token"`
}

// SuspendOutcome is the suspend envelope.
type SuspendOutcome struct {
	Outcome       string             `json:"outcome"`
	ExecutionID   string             `json:"execution_id"`
	SuspensionID  string             `json:"suspension_id"`
	SuspendedAtMs int64              `json:"suspended_at_ms"`
	TimeoutAtMs   *int64             `json:"timeout_at_ms"`
	Condition     string             `json:"condition"`
	Waitpoints    []WaitpointOutcome `json:"waitpoints"`
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
}

// Validate checks the arguments, decoding the cursor.
func (a ListSuspendedArgs) Validate() error {
	if err := ValidateRange("limit", int64(a.Limit), 1, MaxListLimit); err != nil {
		return err
	}
	if a.Cursor != "" {
		_, err := DecodeCursor(a.Cursor)
		return err
	}
	return nil
}

// SuspendedExecution is one entry of list_suspended.
type SuspendedExecution struct {
	ExecutionID   string `json:"execution_id"`
	SuspensionID  string `json:"suspension_id"`
	SuspendedAtMs int64  `json:"suspended_at_ms"`
	TimeoutAtMs   *int64 `json:"timeout_at_ms"`
	Waitpoints    int    `json:"waitpoints"`
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
