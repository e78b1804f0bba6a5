package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Secrets at rest (package kek): the optional interface that lets
// engine.OpenBackend honour ?kek_file= and `ff rewrap` re-seal the store.
//
// The keystore document holds every secret in its stored form: sealed
// under the keyring installed when the kid was inserted, or in plain
// without one. loadKeys and saveKeys move stored forms; each operation
// opens only the secrets it uses (the kid it signs or verifies with, the
// kid a seed or rotation compares), so a missing or wrong KEK fails exactly
// the calls that need a secret, with kek_mismatch, and list_kids still
// answers. Writes seal only the kids they insert: a kid's stored form
// changes only through RewrapSecrets.
var _ engine.SecretSealer = (*Backend)(nil)

// SetKeyring installs the keyring every later call of this Backend seals
// and opens with; nil stores secrets in plain. It is safe to call at any
// time: each operation reads the keyring once. Backends of one process on
// the same file share the file, not the keyring: give them the same one.
func (b *Backend) SetKeyring(r *kek.Keyring) { b.ring.Store(r) }

// RewrapSecrets re-seals every stored secret under to (nil: in plain) in
// one write transaction: kids, expiries and the current kid stay as they
// are. Secrets already in to's form are left alone and counted unchanged;
// the others are opened with the installed keyring, and a secret that does
// not open (kek_mismatch) rolls the transaction back. It does not install
// to.
//
// bbolt does not erase the pages a transaction frees: after rewrapping a
// store that held secrets in plain (or under a KEK being retired), the old
// forms stay in the file's free pages until bbolt reuses them. Compact the
// file (`bbolt compact`) to drop them.
func (b *Backend) RewrapSecrets(ctx context.Context, to *kek.Keyring) (engine.RewrapResult, error) {
	return write(ctx, b, func(tx *bolt.Tx, _ int64) (engine.RewrapResult, error) {
		var res engine.RewrapResult
		ring := b.ring.Load()
		k, err := loadKeys(tx)
		if err != nil {
			return res, err
		}
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
		if k.Current != nil {
			if err := rewrap(k.Current); err != nil {
				return res, err
			}
		}
		for i := range k.Verifying {
			if err := rewrap(&k.Verifying[i]); err != nil {
				return res, err
			}
		}
		res.Add(rewrapped, unchanged)
		return res, saveKeysIf(tx, rewrapped > 0, k)
	})
}

// partition is the keystore partition every secret is sealed for: the
// store has one (partitions).
const partition = 0

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
	c := *rec
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

// openKeys returns k with every secret opened with ring, for the Engine's
// keystore cache; the first secret that does not open fails it.
func openKeys(ring *kek.Keyring, k contracts.PartitionKeys) (contracts.PartitionKeys, error) {
	var out contracts.PartitionKeys
	var err error
	if out.Current, err = opened(ring, k.Current); err != nil {
		return contracts.PartitionKeys{}, err
	}
	for i := range k.Verifying {
		v, err := opened(ring, &k.Verifying[i])
		if err != nil {
			return contracts.PartitionKeys{}, err
		}
		out.Verifying = append(out.Verifying, *v)
	}
	return out, nil
}

// withOpened returns k with the record of kid (if any) replaced by an
// opened copy, for the plans that compare that kid's secret (PlanSeed,
// PlanRotate). k itself keeps the stored forms, for stored.
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

// stored turns a plan's next keystore into the one to save: every kid that
// prev (as loaded) holds keeps its stored secret, and every kid the plan
// inserts is sealed with ring (in plain for a nil ring).
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
