package sqlite

import (
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

var _ driver.KidRevoker = (*Backend)(nil)

// RevokeKid revokes a verifying kid of the single partition in one write
// transaction (docs/spec.md §8.7; driver.RevokePartition decides): its row
// keeps the kid, revoked = 1 and an expiry of now − 1, and its secret is
// deleted from the row. Unknown, expired and already revoked kids are noop
// and write nothing; the current kid is kid_is_current in the partition's
// entry. A storage failure is the call's error and changes nothing.
//
// The secret must not outlive the revocation in the file: secure_delete
// zeroes the row's old cell, and once the partition holds the kid revoked
// (now, or by an earlier call) the write-ahead log, whose older frames
// still hold the secret, is checkpointed and truncated (truncateWAL). When
// readers keep the log from being truncated, the revocation is committed
// but the call answers retryable contention; re-running it (noop) truncates
// the log again. No secret is opened: the decision reads none.
func (b *Backend) RevokeKid(ctx context.Context, args contracts.RevokeKidArgs) (contracts.RevokeKidResult, error) {
	var entry contracts.RevokeEntry
	var revoked bool
	err := b.write(ctx, func(q txn, nowMs int64) error {
		k, err := loadKeys(q)
		if err != nil {
			return err
		}
		var next driver.PartitionKeys
		var changed bool
		entry, next, changed = driver.RevokePartition(0, k, args, nowMs)
		rec := next.Find(args.Kid)
		revoked = rec != nil && rec.Revoked
		if !changed {
			return nil
		}
		return storeKeys(q, k, next, nowMs)
	})
	if err != nil {
		return contracts.RevokeKidResult{}, err
	}
	if revoked {
		if err := b.truncateWAL(ctx, "the kid is revoked, but readers kept the write-ahead log, which may still hold its secret, from being truncated; re-run the revocation"); err != nil {
			return contracts.RevokeKidResult{}, err
		}
	}
	return contracts.RevokeKidResult{Entries: []contracts.RevokeEntry{entry}}, nil
}
