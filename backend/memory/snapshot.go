package memory

import (
	"bytes"
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

var _ engine.KeystoreSnapshotter = (*Backend)(nil)

// KeystoreSnapshot returns a copy of the keystore and the clock, under the
// backend's lock, for the Engine's keystore cache. The memory backend has
// one partition; its clock is in-process, so the snapshot hands it over and
// the cache decides expiry with exactly the time an uncached call reads.
// Whatever partition is asked for, the snapshot is of the one partition and
// says Partitions: 1, so an Engine over a wrapper that embeds this Backend
// and declares more partitions stops using its cache.
func (b *Backend) KeystoreSnapshot(ctx context.Context, _ int) (engine.KeystoreSnapshot, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return engine.KeystoreSnapshot{}, err
	}
	defer unlock()
	return engine.KeystoreSnapshot{
		Keys:       cloneKeys(b.keys),
		NowMs:      nowMs,
		Partitions: 1,
		Clock:      func() int64 { return b.now().UnixMilli() },
	}, nil
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
