package memory

import (
	"context"

	"github.com/flowfabric/flowfabric-go/driver"
)

var _ driver.KeystoreSnapshotter = (*Backend)(nil)

// KeystoreSnapshot returns a copy of the keystore, every secret opened with
// the installed keyring, and the clock, under the backend's lock, for the
// Engine's keystore cache. The memory backend has one partition; its clock
// is in-process, so the snapshot hands it over and the cache decides
// expiry with exactly the time an uncached call reads.
// Whatever partition is asked for, the snapshot is of the one partition and
// says Partitions: 1, so an Engine over a wrapper that embeds this Backend
// and declares more partitions stops using its cache.
func (b *Backend) KeystoreSnapshot(ctx context.Context, _ int) (driver.KeystoreSnapshot, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return driver.KeystoreSnapshot{}, err
	}
	defer unlock()
	keys, err := driver.OpenKeys(b.ring.Load(), partition, b.keys)
	if err != nil {
		return driver.KeystoreSnapshot{}, err
	}
	return driver.KeystoreSnapshot{
		Keys:       keys,
		NowMs:      nowMs,
		Partitions: 1,
		Clock:      func() int64 { return b.now().UnixMilli() },
	}, nil
}
