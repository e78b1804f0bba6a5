package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/driver"
)

// The optional interface that lets the Engine serve sign and verify from its
// in-process keystore cache (engine.WithKeystoreCache) instead of one read
// transaction per call.
var _ driver.KeystoreSnapshotter = (*Backend)(nil)

// KeystoreSnapshot reads the one partition's keystore in one read
// transaction, every secret opened with the installed keyring. The keys are
// decoded afresh from the file, so the caller owns them. The clock is this process's (or the injected one) and is handed
// over, so the cache decides expiry with exactly the time an uncached call
// reads.
func (b *Backend) KeystoreSnapshot(ctx context.Context, _ int) (driver.KeystoreSnapshot, error) {
	return read(ctx, b, func(tx *bolt.Tx, nowMs int64) (driver.KeystoreSnapshot, error) {
		k, err := loadKeys(tx)
		if err != nil {
			return driver.KeystoreSnapshot{}, err
		}
		if k, err = driver.OpenKeys(b.ring.Load(), partition, k); err != nil {
			return driver.KeystoreSnapshot{}, err
		}
		return driver.KeystoreSnapshot{Keys: k, NowMs: nowMs, Partitions: partitions, Clock: b.nowMs}, nil
	})
}

// nowMs reads the backend's clock.
func (b *Backend) nowMs() int64 { return b.now().UnixMilli() }
