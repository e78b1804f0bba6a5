package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// The keystore holds one partition as one document; each operation loads
// it, opens the secrets it uses (sealing.go), lets contracts decide, and
// (seed, rotate) writes the result back in the same transaction.

// Seed installs args.Kid as the current kid when the keystore is empty and
// otherwise reports already_seeded or already_initialized without writing
// (docs/spec.md §4).
func (b *Backend) Seed(ctx context.Context, args contracts.SeedArgs) (contracts.SeedOutcome, error) {
	return write(ctx, b, func(tx *bolt.Tx, _ int64) (contracts.SeedOutcome, error) {
		ring := b.ring.Load()
		k, err := loadKeys(tx)
		if err != nil {
			return contracts.SeedOutcome{}, err
		}
		keys, err := driver.OpenKid(ring, partition, k, args.Kid) // same_secret compares the opened secret
		if err != nil {
			return contracts.SeedOutcome{}, err
		}
		next, out, changed := driver.PlanSeed(keys, args)
		return out, saveKeysIf(tx, changed, driver.SealNew(ring, partition, k, next))
	})
}

// RotateAll rotates the single partition in one transaction. A
// rotation_conflict is reported in the partition's entry, not as the error.
func (b *Backend) RotateAll(ctx context.Context, args contracts.RotateArgs) (contracts.RotateAllResult, error) {
	return write(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.RotateAllResult, error) {
		ring := b.ring.Load()
		k, err := loadKeys(tx)
		if err != nil {
			return contracts.RotateAllResult{}, err
		}
		keys := k
		if k.Current != nil && k.Current.Kid == args.NewKid { // noop or rotation_conflict compares the opened secret
			if keys, err = driver.OpenKid(ring, partition, k, args.NewKid); err != nil {
				return contracts.RotateAllResult{}, err
			}
		}
		entry, next, changed := driver.RotatePartition(partition, keys, args, nowMs)
		return contracts.RotateAllResult{Entries: []contracts.RotateEntry{entry}}, saveKeysIf(tx, changed, driver.SealNew(ring, partition, k, next))
	})
}

// The optional part of the keystore for revoke_kid (docs/spec.md §8.7).
var _ driver.KidRevoker = (*Backend)(nil)

// RevokeKid revokes args.Kid on the single partition in one transaction, as
// RotateAll rotates it (docs/spec.md §8.7): a verifying kid that still
// verifies keeps its name and an expiry of now − 1, is marked revoked and
// loses its secret (the document rewritten without it, so its tokens answer
// token_expired from the commit on); an unknown, expired or already revoked
// kid is noop and writes nothing. A kid_is_current is reported in the
// partition's entry, not as the error. It opens no secret, so it answers
// whatever the keyring. bbolt does not erase the page the previous document
// occupied: compact the file (`bbolt compact`) to drop the revoked secret's
// stored form from the free pages.
func (b *Backend) RevokeKid(ctx context.Context, args contracts.RevokeKidArgs) (contracts.RevokeKidResult, error) {
	return write(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.RevokeKidResult, error) {
		k, err := loadKeys(tx)
		if err != nil {
			return contracts.RevokeKidResult{}, err
		}
		entry, next, changed := driver.RevokePartition(partition, k, args, nowMs)
		return contracts.RevokeKidResult{Entries: []contracts.RevokeEntry{entry}}, saveKeysIf(tx, changed, driver.SealNew(b.ring.Load(), partition, k, next))
	})
}

// ListKids lists the current kid and the verifying kids that have not
// expired at the backend's clock. It opens no secret, so it answers
// whatever the keyring.
func (b *Backend) ListKids(ctx context.Context, _ contracts.ListKidsArgs) (contracts.ListKidsResult, error) {
	return read(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.ListKidsResult, error) {
		k, err := loadKeys(tx)
		return contracts.ListKidsResult{Partitions: []contracts.PartitionKids{driver.ListPartition(partition, k, nowMs)}}, err
	})
}

// Sign signs args.Message with the current kid; every scope routes to the
// one partition.
func (b *Backend) Sign(ctx context.Context, args contracts.SignArgs) (contracts.SignResult, error) {
	return read(ctx, b, func(tx *bolt.Tx, _ int64) (contracts.SignResult, error) {
		k, err := loadKeys(tx)
		if err != nil {
			return contracts.SignResult{}, err
		}
		current, err := driver.OpenRecord(b.ring.Load(), partition, k.Current)
		if err != nil {
			return contracts.SignResult{}, err
		}
		return driver.SignWith(driver.PartitionKeys{Current: current}, args)
	})
}

// Verify checks args.Token for args.Message at the backend's clock
// (docs/spec.md §3).
func (b *Backend) Verify(ctx context.Context, args contracts.VerifyArgs) (contracts.VerifyResult, error) {
	return read(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.VerifyResult, error) {
		t, err := contracts.ParseToken("token", args.Token)
		if err != nil {
			return contracts.VerifyResult{}, err
		}
		k, err := loadKeys(tx)
		if err != nil {
			return contracts.VerifyResult{}, err
		}
		initialized := k.Current != nil
		rec, err := driver.OpenForCheck(b.ring.Load(), partition, initialized, k.Find(t.Kid), nowMs)
		if err != nil {
			return contracts.VerifyResult{}, err
		}
		if err := driver.CheckToken(t, driver.SignatureInput(t.Kid, args.Scope, args.Message), initialized, rec, nowMs); err != nil {
			return contracts.VerifyResult{}, err
		}
		return contracts.VerifyResult{Valid: true, Kid: t.Kid}, nil
	})
}

// saveKeysIf writes the keystore when a plan changed it.
func saveKeysIf(tx *bolt.Tx, changed bool, k driver.PartitionKeys) error {
	if !changed {
		return nil
	}
	return saveKeys(tx, k)
}
