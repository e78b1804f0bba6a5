package memory

import (
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Seed installs args.Kid as the current kid when the keystore is empty and
// otherwise reports already_seeded or already_initialized without writing
// (docs/spec.md §4). With one partition an interrupted seed cannot happen.
func (b *Backend) Seed(ctx context.Context, args contracts.SeedArgs) (contracts.SeedOutcome, error) {
	_, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.SeedOutcome{}, err
	}
	defer unlock()
	ring := b.ring.Load()
	keys, err := driver.OpenKid(ring, partition, b.keys, args.Kid) // same_secret compares the opened secret
	if err != nil {
		return contracts.SeedOutcome{}, err
	}
	next, out, changed := driver.PlanSeed(keys, args)
	if changed {
		b.keys = driver.SealNew(ring, partition, b.keys, next) // seals args.Secret; the caller keeps its slice
	}
	return out, nil
}

// RotateAll rotates the single partition atomically (docs/spec.md §4). A
// rotation_conflict is reported in the partition's entry, not as the error.
func (b *Backend) RotateAll(ctx context.Context, args contracts.RotateArgs) (contracts.RotateAllResult, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.RotateAllResult{}, err
	}
	defer unlock()
	ring := b.ring.Load()
	keys := b.keys
	if keys.Current != nil && keys.Current.Kid == args.NewKid { // noop or rotation_conflict compares the opened secret
		if keys, err = driver.OpenKid(ring, partition, keys, args.NewKid); err != nil {
			return contracts.RotateAllResult{}, err
		}
	}
	entry, next, changed := driver.RotatePartition(partition, keys, args, nowMs)
	if changed {
		b.keys = driver.SealNew(ring, partition, b.keys, next) // seals args.NewSecret; the caller keeps its slice
	}
	return contracts.RotateAllResult{Entries: []contracts.RotateEntry{entry}}, nil
}

// ListKids lists the current kid and the verifying kids that have not
// expired at the backend's clock. It opens no secret, so it answers
// whatever the keyring.
func (b *Backend) ListKids(ctx context.Context, _ contracts.ListKidsArgs) (contracts.ListKidsResult, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.ListKidsResult{}, err
	}
	defer unlock()
	p := driver.ListPartition(partition, b.keys, nowMs)
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
	current, err := driver.OpenRecord(b.ring.Load(), partition, b.keys.Current)
	if err != nil {
		return contracts.SignResult{}, err
	}
	return driver.SignWith(driver.PartitionKeys{Current: current}, args)
}

// Verify checks args.Token for args.Message at the backend's clock
// (docs/spec.md §3).
func (b *Backend) Verify(ctx context.Context, args contracts.VerifyArgs) (contracts.VerifyResult, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.VerifyResult{}, err
	}
	defer unlock()
	t, err := contracts.ParseToken("token", args.Token)
	if err != nil {
		return contracts.VerifyResult{}, err
	}
	initialized := b.keys.Current != nil
	rec, err := driver.OpenForCheck(b.ring.Load(), partition, initialized, b.keys.Find(t.Kid), nowMs)
	if err != nil {
		return contracts.VerifyResult{}, err
	}
	if err := driver.CheckToken(t, driver.SignatureInput(t.Kid, args.Scope, args.Message), initialized, rec, nowMs); err != nil {
		return contracts.VerifyResult{}, err
	}
	return contracts.VerifyResult{Valid: true, Kid: t.Kid}, nil
}

var _ driver.KidRevoker = (*Backend)(nil)

// RevokeKid revokes a verifying kid of the single partition atomically
// (docs/spec.md §8.7): its secret is dropped and its name kept for good. A
// kid_is_current is reported in the partition's entry, not as the error.
func (b *Backend) RevokeKid(ctx context.Context, args contracts.RevokeKidArgs) (contracts.RevokeKidResult, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.RevokeKidResult{}, err
	}
	defer unlock()
	entry, next, changed := driver.RevokePartition(partition, b.keys, args, nowMs)
	if changed {
		b.keys = driver.SealNew(b.ring.Load(), partition, b.keys, next)
	}
	return contracts.RevokeKidResult{Entries: []contracts.RevokeEntry{entry}}, nil
}
