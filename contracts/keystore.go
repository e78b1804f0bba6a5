package contracts

import (
	"encoding/json"
	"sort"
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

// PartitionKeys is the keystore of one partition, the state that the pure
// planning functions below transform. Drivers that hold the keystore as rows
// or documents (memory, SQLite, Postgres, third parties) load it, plan, and
// write the result back in one atomic step.
type PartitionKeys struct {
	Current   *KidRecord  // nil when the partition has no keystore
	Verifying []KidRecord // every remembered verifying kid, expired or not
}

// Find returns the record of kid (current or verifying), or nil.
func (k PartitionKeys) Find(kid string) *KidRecord {
	if k.Current != nil && k.Current.Kid == kid {
		return k.Current
	}
	for i := range k.Verifying {
		if k.Verifying[i].Kid == kid {
			return &k.Verifying[i]
		}
	}
	return nil
}

// PlanSeed decides seed for a backend with one partition. changed reports
// whether next must be written; on outcome already_* next equals k.
func PlanSeed(k PartitionKeys, a SeedArgs) (next PartitionKeys, out SeedOutcome, changed bool) {
	if rec := k.Find(a.Kid); rec != nil {
		same := rec.Secret.Equal(a.Secret)
		cur := a.Kid
		if k.Current != nil {
			cur = k.Current.Kid
		}
		return k, SeedOutcome{Outcome: SeedAlreadySeeded, Kid: a.Kid, CurrentKid: cur, SameSecret: &same}, false
	}
	if k.Current != nil {
		return k, SeedOutcome{Outcome: SeedAlreadyInitialized, Kid: a.Kid, CurrentKid: k.Current.Kid}, false
	}
	next = PartitionKeys{Current: &KidRecord{Kid: a.Kid, Secret: a.Secret}, Verifying: k.Verifying}
	return next, SeedOutcome{Outcome: SeedSeeded, Kid: a.Kid, CurrentKid: a.Kid}, true
}

// PlanRotate decides one partition's rotation at nowMs (docs/spec.md §4).
// changed reports whether next must be written; the error is
// conflict / rotation_conflict.
func PlanRotate(k PartitionKeys, a RotateArgs, nowMs int64) (next PartitionKeys, out RotateOutcome, changed bool, err error) {
	if k.Current != nil && k.Current.Kid == a.NewKid {
		if !k.Current.Secret.Equal(a.NewSecret) {
			return k, out, false, ErrRotationConflict.With("new_kid: %q is current with another secret", a.NewKid)
		}
		return k, RotateOutcome{Outcome: RotateNoop, Kid: a.NewKid}, false, nil
	}
	if k.Find(a.NewKid) != nil {
		return k, out, false, ErrRotationConflict.With("new_kid: %q is a verifying kid; kid names are never reused", a.NewKid)
	}
	out = RotateOutcome{Outcome: RotateRotated, NewKid: a.NewKid}
	for _, v := range k.Verifying {
		if v.Usable(nowMs) {
			next.Verifying = append(next.Verifying, v)
		} else {
			out.GCCount++
		}
	}
	if k.Current != nil {
		exp := nowMs + a.GraceMs
		prev := *k.Current
		prev.ExpiresAtMs = &exp
		next.Verifying = append(next.Verifying, prev)
		out.PreviousKid = &prev.Kid
	}
	next.Current = &KidRecord{Kid: a.NewKid, Secret: a.NewSecret}
	return next, out, true, nil
}

// ListPartition renders one partition for list_kids at nowMs: expired kids
// are left out, the rest sorted by expires_at_ms, then kid.
func ListPartition(partition int, k PartitionKeys, nowMs int64) PartitionKids {
	p := PartitionKids{Partition: partition, Verifying: []VerifyingKid{}}
	if k.Current != nil {
		p.CurrentKid = &k.Current.Kid
	}
	for _, v := range k.Verifying {
		if v.Usable(nowMs) {
			p.Verifying = append(p.Verifying, VerifyingKid{Kid: v.Kid, ExpiresAtMs: *v.ExpiresAtMs})
		}
	}
	SortVerifying(p.Verifying)
	return p
}

// SortVerifying sorts by expires_at_ms, then kid, the order list_kids promises.
func SortVerifying(v []VerifyingKid) {
	sort.Slice(v, func(i, j int) bool {
		if v[i].ExpiresAtMs != v[j].ExpiresAtMs {
			return v[i].ExpiresAtMs < v[j].ExpiresAtMs
		}
		return v[i].Kid < v[j].Kid
	})
}

// KeysChange is what a driver storing one row per kid must write to turn a
// partition's keystore prev into next (as PlanSeed or PlanRotate returned
// it): delete Deleted, then set the expiry of Expiry, then insert Inserted.
// In that order a one-current-kid unique index holds after every statement.
// A kid's secret never changes once installed. Every list is sorted by kid.
type KeysChange struct {
	Deleted  []string
	Expiry   []KidRecord
	Inserted []KidRecord
}

// DiffKeys returns the change from prev to next.
func DiffKeys(prev, next PartitionKeys) KeysChange {
	before, after := prev.byKid(), next.byKid()
	var c KeysChange
	for _, kid := range sortedKids(before) {
		if _, ok := after[kid]; !ok {
			c.Deleted = append(c.Deleted, kid)
		}
	}
	for _, kid := range sortedKids(after) {
		rec := after[kid]
		old, ok := before[kid]
		switch {
		case !ok:
			c.Inserted = append(c.Inserted, rec)
		case !sameExpiry(old.ExpiresAtMs, rec.ExpiresAtMs):
			c.Expiry = append(c.Expiry, rec)
		}
	}
	return c
}

func (k PartitionKeys) byKid() map[string]KidRecord {
	m := make(map[string]KidRecord, len(k.Verifying)+1)
	if k.Current != nil {
		m[k.Current.Kid] = *k.Current
	}
	for _, v := range k.Verifying {
		m[v.Kid] = v
	}
	return m
}

func sortedKids(m map[string]KidRecord) []string {
	kids := make([]string, 0, len(m))
	for kid := range m {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	return kids
}

func sameExpiry(a, b *int64) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}
