package driver

import (
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Helpers for drivers that keep a partition's keystore as a
// PartitionKeys whose secrets are in stored form (sealed, or in
// plain without a keyring): open only what a decision reads, seal only what
// a write inserts, re-seal in a rewrap. Every result is a copy; the
// arguments are never modified.

// Rewrap returns stored re-sealed under to (nil: in plain), opening it with
// r. changed is false, and next is stored itself, when stored is already in
// to's form (see SealedUnderPrimary); a rewrap counts such secrets as
// unchanged and writes nothing for them.
func RewrapSecret(r, to *kek.Keyring, kid string, partition int, stored []byte) (next []byte, changed bool, err error) {
	if to.SealedUnderPrimary(stored) {
		return stored, false, nil
	}
	secret, err := r.Open(kid, partition, stored)
	if err != nil {
		return nil, false, err
	}
	next = to.Seal(kid, partition, secret)
	clear(secret)
	return next, true, nil
}

// OpenRecord returns a copy of rec (nil: nil) holding the secret its stored
// form holds.
func OpenRecord(r *kek.Keyring, partition int, rec *KidRecord) (*KidRecord, error) {
	if rec == nil {
		return nil, nil
	}
	if rec.Revoked { // no secret to open
		c := *rec
		c.Secret = nil
		return &c, nil
	}
	secret, err := r.Open(rec.Kid, partition, rec.Secret)
	if err != nil {
		return nil, err
	}
	c := *rec
	c.Secret = secret
	if rec.ExpiresAtMs != nil {
		exp := *rec.ExpiresAtMs
		c.ExpiresAtMs = &exp
	}
	return &c, nil
}

// OpenForCheck is OpenRecord for a token check at nowMs
// (driver.CheckToken) that reaches the MAC only for a known kid that is
// usable at nowMs: an uninitialized keystore, an unknown kid and an expired
// kid are answered without a secret, so without a KEK, and rec is returned
// as it is.
func OpenForCheck(r *kek.Keyring, partition int, initialized bool, rec *KidRecord, nowMs int64) (*KidRecord, error) {
	if !initialized || rec == nil || !rec.Usable(nowMs) {
		return rec, nil
	}
	return OpenRecord(r, partition, rec)
}

// OpenKeys returns a copy of k with every secret opened (for a keystore
// snapshot); the first secret that does not open fails it.
func OpenKeys(r *kek.Keyring, partition int, k PartitionKeys) (PartitionKeys, error) {
	var out PartitionKeys
	var err error
	if out.Current, err = OpenRecord(r, partition, k.Current); err != nil {
		return PartitionKeys{}, err
	}
	for i := range k.Verifying {
		v, err := OpenRecord(r, partition, &k.Verifying[i])
		if err != nil {
			return PartitionKeys{}, err
		}
		out.Verifying = append(out.Verifying, *v)
	}
	return out, nil
}

// OpenKid returns k with the record of kid (if any) replaced by an opened
// copy, for the plans that compare that kid's secret (driver.PlanSeed,
// driver.PlanRotate); the other records keep their stored forms.
func OpenKid(r *kek.Keyring, partition int, k PartitionKeys, kid string) (PartitionKeys, error) {
	rec := k.Find(kid)
	if rec == nil {
		return k, nil
	}
	o, err := OpenRecord(r, partition, rec)
	if err != nil {
		return k, err
	}
	if k.Current == rec {
		k.Current = o
		return k, nil
	}
	out := PartitionKeys{Current: k.Current}
	for _, v := range k.Verifying {
		if v.Kid == kid {
			v = *o
		}
		out.Verifying = append(out.Verifying, v)
	}
	return out, nil
}

// SealNew turns a plan's next keystore into the one to store: every kid
// that prev (as stored) holds keeps its stored secret, and every kid the
// plan inserts is sealed with r (a copy in plain for a nil keyring), so no
// caller's slice is kept. A kid's stored form thus changes only in a rewrap.
func SealNew(r *kek.Keyring, partition int, prev, next PartitionKeys) PartitionKeys {
	keep := func(rec KidRecord) KidRecord {
		if rec.Revoked {
			rec.Secret = nil // destroyed with the revocation
			return rec
		}
		if old := prev.Find(rec.Kid); old != nil {
			rec.Secret = old.Secret
		} else {
			rec.Secret = r.Seal(rec.Kid, partition, rec.Secret)
		}
		return rec
	}
	var out PartitionKeys
	if next.Current != nil {
		c := keep(*next.Current)
		out.Current = &c
	}
	for _, v := range next.Verifying {
		out.Verifying = append(out.Verifying, keep(v))
	}
	return out
}

// RewrapKeys returns k with every secret re-sealed under to (see Rewrap),
// and how many were rewrapped and already in to's form; the first secret
// that does not open fails it.
func RewrapKeys(r, to *kek.Keyring, partition int, k PartitionKeys) (next PartitionKeys, rewrapped, unchanged int, err error) {
	one := func(rec KidRecord) (KidRecord, error) {
		if rec.Revoked {
			return rec, nil // no secret
		}
		s, changed, err := RewrapSecret(r, to, rec.Kid, partition, rec.Secret)
		if err != nil {
			return rec, err
		}
		if changed {
			rewrapped++
		} else {
			unchanged++
		}
		rec.Secret = s
		return rec, nil
	}
	if k.Current != nil {
		c, err := one(*k.Current)
		if err != nil {
			return PartitionKeys{}, 0, 0, err
		}
		next.Current = &c
	}
	for _, v := range k.Verifying {
		v, err := one(v)
		if err != nil {
			return PartitionKeys{}, 0, 0, err
		}
		next.Verifying = append(next.Verifying, v)
	}
	return next, rewrapped, unchanged, nil
}

// AddRewrapped adds one partition's counts to a RewrapSecrets result.
func AddRewrapped(r *contracts.RewrapResult, rewrapped, unchanged int) {
	r.Partitions++
	r.Rewrapped += rewrapped
	r.Unchanged += unchanged
}
