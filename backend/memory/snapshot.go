package memory

import (
	"bytes"
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

var _ engine.KeystoreSnapshotter = (*Backend)(nil)

// KeystoreSnapshot returns a copy of the keystore, every secret opened with
// the installed keyring, and the clock, under the backend's lock, for the
// Engine's keystore cache. The memory backend has one partition; its clock
// is in-process, so the snapshot hands it over and the cache decides
// expiry with exactly the time an uncached call reads.
// Whatever partition is asked for, the snapshot is of the one partition and
// says Partitions: 1, so an Engine over a wrapper that embeds this Backend
// and declares more partitions stops using its cache.
func (b *Backend) KeystoreSnapshot(ctx context.Context, _ int) (engine.KeystoreSnapshot, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return engine.KeystoreSnapshot{}, err
	}
	defer unlock()
	keys, err := openKeys(b.ring.Load(), b.keys)
	if err != nil {
		return engine.KeystoreSnapshot{}, err
	}
	return engine.KeystoreSnapshot{
		Keys:       keys,
		NowMs:      nowMs,
		Partitions: 1,
		Clock:      func() int64 { return b.now().UnixMilli() },
	}, nil
}

// openKeys returns a copy of k with every secret opened with ring; the
// first secret that does not open fails it (kek_mismatch).
func openKeys(ring *kek.Keyring, k contracts.PartitionKeys) (contracts.PartitionKeys, error) {
	var out contracts.PartitionKeys
	var err error
	if out.Current, err = opened(ring, k.Current); err != nil {
		return contracts.PartitionKeys{}, err
	}
	for i := range k.Verifying {
		v, err := opened(ring, &k.Verifying[i])
		if err != nil {
			return contracts.PartitionKeys{}, err
		}
		out.Verifying = append(out.Verifying, *v)
	}
	return out, nil
}

// cloneKeys deep-copies a keystore, so that the caller owns what it holds.
func cloneKeys(k contracts.PartitionKeys) contracts.PartitionKeys {
	var out contracts.PartitionKeys
	if k.Current != nil {
		c := cloneRecord(*k.Current)
		out.Current = &c
	}
	for _, v := range k.Verifying {
		out.Verifying = append(out.Verifying, cloneRecord(v))
	}
	return out
}

func cloneRecord(r contracts.KidRecord) contracts.KidRecord {
	r.Secret = bytes.Clone(r.Secret)
	if r.ExpiresAtMs != nil {
		exp := *r.ExpiresAtMs
		r.ExpiresAtMs = &exp
	}
	return r
}
