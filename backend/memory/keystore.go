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
	entry := contracts.RotateEntry{Partition: 0}
	next, out, changed, err := contracts.PlanRotate(b.keys, args, nowMs)
	switch {
	case err != nil:
		entry.Error = contracts.AsError(err)
	case changed:
		b.keys = next
		entry.Outcome = &out
	default:
		entry.Outcome = &out
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
	cur := b.keys.Current
	if cur == nil {
		return contracts.SignResult{}, errNotInitialized()
	}
	return contracts.SignResult{Kid: cur.Kid, Token: contracts.SignToken(cur.Kid, cur.Secret, args.Message)}, nil
}

// Verify checks args.Token for args.Message at the backend's clock
// (CONTRACT.md §3).
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
	if err := contracts.CheckToken(t, args.Message, b.keys.Current != nil, b.keys.Find(t.Kid), nowMs); err != nil {
		return contracts.VerifyResult{}, err
	}
	return contracts.VerifyResult{Valid: true, Kid: t.Kid}, nil
}

// errNotInitialized is state / hmac_secret_not_initialized, worded as
// contracts.CheckToken words it.
func errNotInitialized() error {
	return contracts.NotInitialized()
}
