package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
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
var _ driver.SecretSealer = (*Backend)(nil)

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
func (b *Backend) RewrapSecrets(ctx context.Context, to *kek.Keyring) (contracts.RewrapResult, error) {
	return write(ctx, b, func(tx *bolt.Tx, _ int64) (contracts.RewrapResult, error) {
		var res contracts.RewrapResult
		k, err := loadKeys(tx)
		if err != nil {
			return res, err
		}
		next, rewrapped, unchanged, err := driver.RewrapKeys(b.ring.Load(), to, partition, k)
		if err != nil {
			return res, err
		}
		driver.AddRewrapped(&res, rewrapped, unchanged)
		return res, saveKeysIf(tx, rewrapped > 0, next)
	})
}

// partition is the keystore partition every secret is sealed for: the
// store has one (partitions).
const partition = 0
