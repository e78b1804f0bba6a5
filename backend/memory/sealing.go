package memory

import (
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Secrets at rest (package kek). b.keys holds every secret in its stored
// form: sealed under the installed keyring, or in plain without one. Each
// operation opens only the secrets it uses (the kid it signs or verifies
// with, the kid a seed or rotation compares), so a missing or wrong KEK
// fails exactly the calls that need a secret, with kek_mismatch, and
// list_kids still answers. Writes seal only the kids they insert: a kid's
// stored form never changes except through RewrapSecrets.

var _ engine.SecretSealer = (*Backend)(nil)

// partition is the keystore partition every secret is sealed for: the
// memory backend has one.
const partition = 0

// SetKeyring installs the keyring every later call seals and opens with;
// nil stores secrets in plain. It is safe to call at any time: each
// operation reads the keyring once, under the backend's lock.
func (b *Backend) SetKeyring(r *kek.Keyring) { b.ring.Store(r) }

// RewrapSecrets re-seals every stored secret under to (nil: in plain), in
// one step under the backend's lock: kids, expiries and the current kid
// stay as they are. Secrets already in to's form are left alone and
// counted unchanged; the others are opened with the installed keyring, and
// a secret that does not open fails the call with kek_mismatch, writing
// nothing. It does not install to.
func (b *Backend) RewrapSecrets(ctx context.Context, to *kek.Keyring) (engine.RewrapResult, error) {
	_, unlock, err := b.begin(ctx)
	if err != nil {
		return engine.RewrapResult{}, err
	}
	defer unlock()
	ring := b.ring.Load()
	next := cloneKeys(b.keys)
	var rewrapped, unchanged int
	rewrap := func(rec *contracts.KidRecord) error {
		if to.SealedUnderPrimary(rec.Secret) {
			unchanged++
			return nil
		}
		secret, err := ring.Open(rec.Kid, partition, rec.Secret)
		if err != nil {
			return err
		}
		rec.Secret = to.Seal(rec.Kid, partition, secret)
		clear(secret)
		rewrapped++
		return nil
	}
	if next.Current != nil {
		if err := rewrap(next.Current); err != nil {
			return engine.RewrapResult{}, err
		}
	}
	for i := range next.Verifying {
		if err := rewrap(&next.Verifying[i]); err != nil {
			return engine.RewrapResult{}, err
		}
	}
	b.keys = next
	var res engine.RewrapResult
	res.Add(rewrapped, unchanged)
	return res, nil
}

// opened returns a copy of rec (nil: nil) holding the secret its stored
// form holds, opened with ring. Errors are kek_mismatch or internal_error,
// returned as they are; they never quote secret bytes.
func opened(ring *kek.Keyring, rec *contracts.KidRecord) (*contracts.KidRecord, error) {
	if rec == nil {
		return nil, nil
	}
	secret, err := ring.Open(rec.Kid, partition, rec.Secret)
	if err != nil {
		return nil, err
	}
	c := cloneRecord(*rec)
	c.Secret = secret
	return &c, nil
}

// openedIfChecked is opened for a token check at nowMs (contracts.CheckToken)
// that gets as far as the MAC: an uninitialized keystore, an unknown kid and
// an expired kid answer without a secret, and so without a KEK.
func openedIfChecked(ring *kek.Keyring, initialized bool, rec *contracts.KidRecord, nowMs int64) (*contracts.KidRecord, error) {
	if !initialized || rec == nil || !rec.Usable(nowMs) {
		return rec, nil
	}
	return opened(ring, rec)
}

// withOpened returns k with the record of kid (if any) replaced by an
// opened copy, for the plans that compare that kid's secret (PlanSeed,
// PlanRotate). k's slices are not modified.
func withOpened(ring *kek.Keyring, k contracts.PartitionKeys, kid string) (contracts.PartitionKeys, error) {
	rec := k.Find(kid)
	if rec == nil {
		return k, nil
	}
	o, err := opened(ring, rec)
	if err != nil {
		return k, err
	}
	if k.Current == rec {
		k.Current = o
		return k, nil
	}
	out := contracts.PartitionKeys{Current: k.Current}
	for _, v := range k.Verifying {
		if v.Kid == kid {
			v = *o
		}
		out.Verifying = append(out.Verifying, v)
	}
	return out, nil
}

// stored turns a plan's next keystore into the one to keep: every kid that
// prev (as stored) already holds keeps its stored secret, and every kid the
// plan inserts is sealed with ring (a copy in plain for a nil ring), so the
// caller's slice is never kept.
func stored(ring *kek.Keyring, prev, next contracts.PartitionKeys) contracts.PartitionKeys {
	keep := func(r contracts.KidRecord) contracts.KidRecord {
		if old := prev.Find(r.Kid); old != nil {
			r.Secret = old.Secret
		} else {
			r.Secret = ring.Seal(r.Kid, partition, r.Secret)
		}
		return r
	}
	var out contracts.PartitionKeys
	if next.Current != nil {
		c := keep(*next.Current)
		out.Current = &c
	}
	for _, v := range next.Verifying {
		out.Verifying = append(out.Verifying, keep(v))
	}
	return out
}
