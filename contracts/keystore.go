package contracts

import (
	"encoding/json"
)

// Seed outcomes (docs/spec.md §4).
const (
	SeedSeeded             = "seeded"
	SeedAlreadySeeded      = "already_seeded"
	SeedAlreadyInitialized = "already_initialized"
)

// Rotation outcomes (docs/spec.md §4).
const (
	RotateRotated = "rotated"
	RotateNoop    = "noop"
)

// SeedArgs are the arguments of seed: install kid with secret as the first
// current kid, idempotently.
type SeedArgs struct {
	Kid    string
	Secret Secret
}

// Validate checks the arguments (docs/spec.md §2).
func (a SeedArgs) Validate() error {
	if err := ValidateKid("kid", a.Kid); err != nil {
		return err
	}
	return ValidateSecret("secret", a.Secret)
}

// SeedOutcome is the seed envelope.
type SeedOutcome struct {
	Outcome    string `json:"outcome"`
	Kid        string `json:"kid"`
	CurrentKid string `json:"current_kid"`
	SameSecret *bool  `json:"same_secret"`
}

// RotateArgs are the arguments of rotate_all.
type RotateArgs struct {
	NewKid    string
	NewSecret Secret
	GraceMs   int64
}

// Validate checks the arguments (docs/spec.md §2).
func (a RotateArgs) Validate() error {
	if err := ValidateKid("new_kid", a.NewKid); err != nil {
		return err
	}
	if err := ValidateSecret("new_secret", a.NewSecret); err != nil {
		return err
	}
	return ValidateRange("grace_ms", a.GraceMs, 0, MaxGraceMs)
}

// RotateOutcome is one partition's rotation outcome. Its JSON shape depends
// on Outcome: {"outcome":"noop","kid":K} or
// {"outcome":"rotated","previous_kid":K|null,"new_kid":K,"gc_count":N}.
type RotateOutcome struct {
	Outcome     string
	Kid         string  // noop: the kid that is already current
	PreviousKid *string // rotated: the kid that became verifying, nil on bootstrap
	NewKid      string  // rotated
	GCCount     int     // rotated: expired verifying kids deleted
}

type rotatedJSON struct {
	Outcome     string  `json:"outcome"`
	PreviousKid *string `json:"previous_kid"`
	NewKid      string  `json:"new_kid"`
	GCCount     int     `json:"gc_count"`
}

type noopJSON struct {
	Outcome string `json:"outcome"`
	Kid     string `json:"kid"`
}

// MarshalJSON encodes the shape of the outcome.
func (o RotateOutcome) MarshalJSON() ([]byte, error) {
	if o.Outcome == RotateNoop {
		return marshal(noopJSON{o.Outcome, o.Kid})
	}
	return marshal(rotatedJSON{o.Outcome, o.PreviousKid, o.NewKid, o.GCCount})
}

// UnmarshalJSON decodes either shape.
func (o *RotateOutcome) UnmarshalJSON(b []byte) error {
	var w struct {
		rotatedJSON
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*o = RotateOutcome{Outcome: w.Outcome, Kid: w.Kid, PreviousKid: w.PreviousKid, NewKid: w.NewKid, GCCount: w.GCCount}
	return nil
}

// RotateEntry is one partition's result: exactly one of Outcome and Error is set.
type RotateEntry struct {
	Partition int            `json:"partition"`
	Outcome   *RotateOutcome `json:"outcome"`
	Error     *Error         `json:"error"`
}

// RotateAllResult is the rotate_all envelope: one entry per partition, in
// partition order.
type RotateAllResult struct {
	Entries []RotateEntry `json:"entries"`
}

// Failed reports whether any partition's entry carries an error.
func (r RotateAllResult) Failed() bool {
	for _, e := range r.Entries {
		if e.Error != nil {
			return true
		}
	}
	return false
}

// ListKidsArgs are the (empty) arguments of list_kids.
type ListKidsArgs struct{}

// VerifyingKid is a kid that still verifies until ExpiresAtMs (inclusive).
type VerifyingKid struct {
	Kid         string `json:"kid"`
	ExpiresAtMs int64  `json:"expires_at_ms"`
}

// PartitionKids is one partition's keystore as list_kids shows it.
type PartitionKids struct {
	Partition  int            `json:"partition"`
	CurrentKid *string        `json:"current_kid"`
	Verifying  []VerifyingKid `json:"verifying"`
}

// ListKidsResult is the list_kids envelope.
type ListKidsResult struct {
	Partitions []PartitionKids `json:"partitions"`
}

// SignArgs are the arguments of sign.
type SignArgs struct {
	Scope   string
	Message []byte
}

// Validate checks the arguments (docs/spec.md §2).
func (a SignArgs) Validate() error {
	if err := ValidateMaxLen("scope", len(a.Scope), MaxScopeLen); err != nil {
		return err
	}
	return ValidateMaxLen("message", len(a.Message), MaxMessageLen)
}

// SignResult is the sign envelope.
type SignResult struct {
	Kid   string `json:"kid"`
	Token string `json:"token"`
}

// VerifyArgs are the arguments of verify.
type VerifyArgs struct {
	Scope   string
	Message []byte
	Token   string
}

// Validate checks the arguments, including the token's format.
func (a VerifyArgs) Validate() error {
	if err := (SignArgs{a.Scope, a.Message}).Validate(); err != nil {
		return err
	}
	_, err := ParseToken("token", a.Token)
	return err
}

// VerifyResult is the verify envelope of an accepted token.
type VerifyResult struct {
	Valid bool   `json:"valid"`
	Kid   string `json:"kid"`
}

// RewrapResult reports a RewrapSecrets: how many stored secrets it re-sealed
// and how many were already in the target form.
type RewrapResult struct {
	Partitions int `json:"partitions"`
	Rewrapped  int `json:"rewrapped"`
	Unchanged  int `json:"unchanged"`
}

// Outcome words of revoke_kid (docs/spec.md §8.7).
const (
	RevokeRevoked = "revoked"
	RevokeNoop    = "noop"
)

// RevokeKidArgs are the arguments of revoke_kid: the verifying kid that
// must stop verifying at once (a leaked secret).
type RevokeKidArgs struct {
	Kid string
}

// Validate checks the arguments.
func (a RevokeKidArgs) Validate() error { return ValidateKid("kid", a.Kid) }

// RevokeOutcome is one partition's revocation: {"outcome":"revoked"|"noop","kid":K}.
type RevokeOutcome struct {
	Outcome string `json:"outcome"`
	Kid     string `json:"kid"`
}

// RevokeEntry is one partition's result: exactly one of Outcome and Error is set.
type RevokeEntry struct {
	Partition int            `json:"partition"`
	Outcome   *RevokeOutcome `json:"outcome"`
	Error     *Error         `json:"error"`
}

// RevokeKidResult is the revoke_kid envelope: one entry per partition, in
// partition order.
type RevokeKidResult struct {
	Entries []RevokeEntry `json:"entries"`
}

// Failed reports whether any partition's entry carries an error.
func (r RevokeKidResult) Failed() bool {
	for _, e := range r.Entries {
		if e.Error != nil {
			return true
		}
	}
	return false
}
