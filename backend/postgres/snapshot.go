package postgres

import (
	"context"

	"github.com/flowfabric/flowfabric-go/driver"
)

var _ driver.KeystoreSnapshotter = (*Backend)(nil)

// KeystoreSnapshot reads the keystore and the server's clock
// (clock_timestamp()) in one statement, for the Engine's keystore cache,
// which adds the monotonic time elapsed since to decide expiry at the
// server's clock. Postgres has one partition. Every secret is opened with
// the installed keyring, since the cache signs and verifies with them.
func (b *Backend) KeystoreSnapshot(ctx context.Context, _ int) (driver.KeystoreSnapshot, error) {
	if err := b.usable(); err != nil {
		return driver.KeystoreSnapshot{}, err
	}
	nowMs, keys, err := loadKeys(ctx, b.pool)
	if err != nil {
		return driver.KeystoreSnapshot{}, interpretError(err)
	}
	ring := b.keyring.Load()
	if keys.Current != nil {
		if err := openRecord(ring, keys.Current); err != nil {
			return driver.KeystoreSnapshot{}, err
		}
	}
	for i := range keys.Verifying {
		if err := openRecord(ring, &keys.Verifying[i]); err != nil {
			return driver.KeystoreSnapshot{}, err
		}
	}
	return driver.KeystoreSnapshot{Keys: keys, NowMs: nowMs, Partitions: 1}, nil
}
