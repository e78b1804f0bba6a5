package sqlite

import (
	"context"

	"github.com/flowfabric/flowfabric-go/driver"
)

var _ driver.KeystoreSnapshotter = (*Backend)(nil)

// KeystoreSnapshot reads the keystore in one read transaction for the
// Engine's keystore cache. SQLite has one partition and no clock of its
// own: the snapshot hands over the process clock (or the injected one), so
// the cache decides expiry with exactly the time an uncached call reads.
// Every secret is opened with the installed keyring; one that does not open
// fails the snapshot with kek_mismatch, and the cache then asks the driver
// (which opens only what each call needs).
func (b *Backend) KeystoreSnapshot(ctx context.Context, _ int) (driver.KeystoreSnapshot, error) {
	snap := driver.KeystoreSnapshot{Partitions: 1, Clock: b.nowMs}
	err := b.read(ctx, func(q txn, nowMs int64) error {
		k, err := loadKeys(q)
		if err != nil {
			return err
		}
		if k, err = driver.OpenKeys(q.ring, keyPartition, k); err != nil {
			return err
		}
		snap.Keys, snap.NowMs = k, nowMs
		return nil
	})
	if err != nil {
		return driver.KeystoreSnapshot{}, err
	}
	return snap, nil
}
