package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// The keystore holds one partition as one document; each operation loads
// it, lets contracts decide (PlanSeed, PlanRotate, ListPartition, CheckToken)
// and, for seed and rotate, writes the result back in the same transaction.

// Seed installs args.Kid as the current kid when the keystore is empty and
// otherwise reports already_seeded or already_initialized without writing
// (CONTRACT.md §4).
func (b *Backend) Seed(ctx context.Context, args contracts.SeedArgs) (contracts.SeedOutcome, error) {
	var out contracts.SeedOutcome
	err := b.update(ctx, func(tx *bolt.Tx, _ int64) error {
		k, err := loadKeys(tx)
		if err != nil {
			return err
		}
		next, o, changed := contracts.PlanSeed(k, args)
		out = o
		if changed {
			return saveKeys(tx, next)
		}
		return nil
	})
	return out, err
}

// RotateAll rotates the single partition in one transaction. A
// rotation_conflict is reported in the partition's entry, not as the error.
func (b *Backend) RotateAll(ctx context.Context, args contracts.RotateArgs) (contracts.RotateAllResult, error) {
	entry := contracts.RotateEntry{Partition: 0}
	err := b.update(ctx, func(tx *bolt.Tx, nowMs int64) error {
		k, err := loadKeys(tx)
		if err != nil {
			return err
		}
		next, out, changed, err := contracts.PlanRotate(k, args, nowMs)
		if err != nil {
			entry.Error = contracts.AsError(err)
			return nil
		}
		entry.Outcome = &out
		if changed {
			return saveKeys(tx, next)
		}
		return nil
	})
	if err != nil {
		return contracts.RotateAllResult{}, err
	}
	return contracts.RotateAllResult{Entries: []contracts.RotateEntry{entry}}, nil
}

// ListKids lists the current kid and the verifying kids that have not
// expired at the backend's clock.
func (b *Backend) ListKids(ctx context.Context, _ contracts.ListKidsArgs) (contracts.ListKidsResult, error) {
	var res contracts.ListKidsResult
	err := b.view(ctx, func(tx *bolt.Tx, nowMs int64) error {
		k, err := loadKeys(tx)
		res.Partitions = []contracts.PartitionKids{contracts.ListPartition(0, k, nowMs)}
		return err
	})
	return res, err
}

// Sign signs args.Message with the current kid; every scope routes to the
// one partition.
func (b *Backend) Sign(ctx context.Context, args contracts.SignArgs) (contracts.SignResult, error) {
	var res contracts.SignResult
	err := b.view(ctx, func(tx *bolt.Tx, _ int64) error {
		k, err := loadKeys(tx)
		switch {
		case err != nil:
			return err
		case k.Current == nil:
			return contracts.NotInitialized()
		}
		res = contracts.SignResult{Kid: k.Current.Kid, Token: contracts.SignToken(k.Current.Kid, k.Current.Secret, args.Message)}
		return nil
	})
	return res, err
}

// Verify checks args.Token for args.Message at the backend's clock
// (CONTRACT.md §3).
func (b *Backend) Verify(ctx context.Context, args contracts.VerifyArgs) (contracts.VerifyResult, error) {
	t, err := contracts.ParseToken("token", args.Token)
	if err != nil {
		return contracts.VerifyResult{}, err
	}
	err = b.view(ctx, func(tx *bolt.Tx, nowMs int64) error {
		k, err := loadKeys(tx)
		if err != nil {
			return err
		}
		return contracts.CheckToken(t, args.Message, k.Current != nil, k.Find(t.Kid), nowMs)
	})
	if err != nil {
		return contracts.VerifyResult{}, err
	}
	return contracts.VerifyResult{Valid: true, Kid: t.Kid}, nil
}
