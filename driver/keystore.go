package driver

import (
	"sort"

	"github.com/flowfabric/flowfabric-go/contracts"
)

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
func PlanSeed(k PartitionKeys, a contracts.SeedArgs) (next PartitionKeys, out contracts.SeedOutcome, changed bool) {
	if rec := k.Find(a.Kid); rec != nil {
		same := rec.Secret.Equal(a.Secret)
		cur := a.Kid
		if k.Current != nil {
			cur = k.Current.Kid
		}
		return k, contracts.SeedOutcome{Outcome: contracts.SeedAlreadySeeded, Kid: a.Kid, CurrentKid: cur, SameSecret: &same}, false
	}
	if k.Current != nil {
		return k, contracts.SeedOutcome{Outcome: contracts.SeedAlreadyInitialized, Kid: a.Kid, CurrentKid: k.Current.Kid}, false
	}
	next = PartitionKeys{Current: &KidRecord{Kid: a.Kid, Secret: a.Secret}, Verifying: k.Verifying}
	return next, contracts.SeedOutcome{Outcome: contracts.SeedSeeded, Kid: a.Kid, CurrentKid: a.Kid}, true
}

// PlanRotate decides one partition's rotation at nowMs (docs/spec.md §4).
// changed reports whether next must be written; the error is
// conflict / rotation_conflict.
func PlanRotate(k PartitionKeys, a contracts.RotateArgs, nowMs int64) (next PartitionKeys, out contracts.RotateOutcome, changed bool, err error) {
	if k.Current != nil && k.Current.Kid == a.NewKid {
		if !k.Current.Secret.Equal(a.NewSecret) {
			return k, out, false, contracts.ErrRotationConflict.With("new_kid: %q is current with another secret", a.NewKid)
		}
		return k, contracts.RotateOutcome{Outcome: contracts.RotateNoop, Kid: a.NewKid}, false, nil
	}
	if rec := k.Find(a.NewKid); rec != nil && rec.Revoked {
		return k, out, false, contracts.ErrRotationConflict.With("new_kid: %q was revoked; kid names are never reused", a.NewKid)
	} else if rec != nil {
		return k, out, false, contracts.ErrRotationConflict.With("new_kid: %q is a verifying kid; kid names are never reused", a.NewKid)
	}
	out = contracts.RotateOutcome{Outcome: contracts.RotateRotated, NewKid: a.NewKid}
	for _, v := range k.Verifying {
		if v.Usable(nowMs) || v.Revoked { // revoked kids are remembered for good
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

// PlanRevoke decides one partition's revoke_kid at nowMs (docs/spec.md
// §8.7): a verifying kid that still verifies becomes revoked (its secret
// dropped, its name kept for good); an unknown, expired or already revoked
// kid is a noop; the current kid is conflict / kid_is_current. changed
// reports whether next must be written.
func PlanRevoke(k PartitionKeys, a contracts.RevokeKidArgs, nowMs int64) (next PartitionKeys, out contracts.RevokeOutcome, changed bool, err error) {
	if k.Current != nil && k.Current.Kid == a.Kid {
		return k, out, false, contracts.ErrKidIsCurrent.With("kid: %q is the current kid; rotate to a new kid first, then revoke it", a.Kid)
	}
	out = contracts.RevokeOutcome{Outcome: contracts.RevokeNoop, Kid: a.Kid}
	rec := k.Find(a.Kid)
	if rec == nil || !rec.Usable(nowMs) {
		return k, out, false, nil
	}
	next = PartitionKeys{Current: k.Current}
	for _, v := range k.Verifying {
		if v.Kid == a.Kid {
			revokedAt := nowMs - 1 // expired since just before the revocation: no token verifies from now on
			v = KidRecord{Kid: v.Kid, ExpiresAtMs: &revokedAt, Revoked: true}
		}
		next.Verifying = append(next.Verifying, v)
	}
	out.Outcome = contracts.RevokeRevoked
	return next, out, true, nil
}

// RevokePartition is PlanRevoke as the entry revoke_kid reports for
// partition: the outcome, or kid_is_current in the entry's error.
func RevokePartition(partition int, k PartitionKeys, a contracts.RevokeKidArgs, nowMs int64) (entry contracts.RevokeEntry, next PartitionKeys, changed bool) {
	entry.Partition = partition
	next, out, changed, err := PlanRevoke(k, a, nowMs)
	if err != nil {
		entry.Error = contracts.AsError(err)
		return entry, k, false
	}
	entry.Outcome = &out
	return entry, next, changed
}

// ListPartition renders one partition for list_kids at nowMs: expired kids
// are left out, the rest sorted by expires_at_ms, then kid.
func ListPartition(partition int, k PartitionKeys, nowMs int64) contracts.PartitionKids {
	p := contracts.PartitionKids{Partition: partition, Verifying: []contracts.VerifyingKid{}}
	if k.Current != nil {
		p.CurrentKid = &k.Current.Kid
	}
	for _, v := range k.Verifying {
		if v.Usable(nowMs) {
			p.Verifying = append(p.Verifying, contracts.VerifyingKid{Kid: v.Kid, ExpiresAtMs: *v.ExpiresAtMs})
		}
	}
	SortVerifying(p.Verifying)
	return p
}

// SortVerifying sorts by expires_at_ms, then kid, the order list_kids promises.
func SortVerifying(v []contracts.VerifyingKid) {
	sort.Slice(v, func(i, j int) bool {
		if v[i].ExpiresAtMs != v[j].ExpiresAtMs {
			return v[i].ExpiresAtMs < v[j].ExpiresAtMs
		}
		return v[i].Kid < v[j].Kid
	})
}

// KeysChange is what a driver storing one row per kid must write to turn a
// partition's keystore prev into next (as PlanSeed, PlanRotate or
// PlanRevoke returned it): delete Deleted, then set the expiry of Expiry,
// then mark Revoked (its expiry set, its secret destroyed), then insert
// Inserted. In that order a one-current-kid unique index holds after every
// statement. A kid's secret never changes once installed, except that
// revocation drops it. Every list is sorted by kid.
type KeysChange struct {
	Deleted  []string
	Expiry   []KidRecord
	Revoked  []KidRecord
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
		case rec.Revoked && !old.Revoked:
			c.Revoked = append(c.Revoked, rec)
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
