package memory

import (
	"bytes"
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Seed installs args.Kid as the current kid when the keystore is empty and
// otherwise reports already_seeded or already_initialized without writing
// (CONTRACT.md §4). With one partition an interrupted seed cannot happen.
func (b *Backend) Seed(ctx context.Context, args contracts.SeedArgs) (contracts.SeedOutcome, error) {
	_, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.SeedOutcome{}, err
	}
	defer unlock()
	args.Secret = bytes.Clone(args.Secret) // the caller keeps its slice
	next, out, changed := contracts.PlanSeed(b.keys, args)
	if changed {
		b.keys = next
	}
	return out, nil
}

// RotateAll rotates the single partition atomically (CONTRACT.md §4). A
// rotation_conflict is reported in the partition's entry, not as the error.
func (b *Backend) RotateAll(ctx context.Context, args contracts.RotateArgs) (contracts.RotateAllResult, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.RotateAllResult{}, err
	}
	defer unlock()
	args.NewSecret = bytes.Clone(args.NewSecret)
	entry, next, changed := contracts.RotatePartition(0, b.keys, args, nowMs)
	if changed {
		b.keys = next
	}
	return contracts.RotateAllResult{Entries: []contracts.RotateEntry{entry}}, nil
}

// ListKids lists the current kid and the verifying kids that have not
// expired at the backend's clock.
func (b *Backend) ListKids(ctx context.Context, _ contracts.ListKidsArgs) (contracts.ListKidsResult, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.ListKidsResult{}, err
	}
	defer unlock()
	p := contracts.ListPartition(0, b.keys, nowMs)
	if p.CurrentKid != nil { // do not hand out a pointer into the store
		kid := *p.CurrentKid
		p.CurrentKid = &kid
	}
	return contracts.ListKidsResult{Partitions: []contracts.PartitionKids{p}}, nil
}

// Sign signs args.Message with the current kid; every scope routes to the
// one partition.
func (b *Backend) Sign(ctx context.Context, args contracts.SignArgs) (contracts.SignResult, error) {
	_, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.SignResult{}, err
	}
	defer unlock()
	return contracts.SignWith(b.keys, args)
}

// Verify checks args.Token for args.Message at the backend's clock
// (CONTRACT.md §3).
func (b *Backend) Verify(ctx context.Context, args contracts.VerifyArgs) (contracts.VerifyResult, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.VerifyResult{}, err
	}
	defer unlock()
	return contracts.VerifyWith(b.keys, args, nowMs)
}
