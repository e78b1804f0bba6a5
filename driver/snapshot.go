package driver

import (
	"context"
)

// KeystoreSnapshotter is an optional driver interface, found by type
// assertion: a backend that implements it lets the Engine serve sign and
// verify in-process from a cached snapshot of each partition's keystore
// (see WithKeystoreCache), instead of one round trip per call.
//
// A driver that embeds another driver's *Backend inherits its
// KeystoreSnapshot; the Engine notices through KeystoreSnapshot.Partitions
// when that snapshot does not describe the embedding backend and then stops
// using the cache.
type KeystoreSnapshotter interface {
	// KeystoreSnapshot reads partition's keystore (0 ≤ partition <
	// Capabilities().Partitions) in one round trip: the current kid and
	// every remembered verifying kid with their secrets, and the backend's
	// clock at the moment of the read. The returned value is the caller's:
	// the driver keeps no reference to it. A partition without a keystore
	// is not an error: Keys.Current is nil.
	KeystoreSnapshot(ctx context.Context, partition int) (KeystoreSnapshot, error)
}

// KeystoreSnapshot is one partition's keystore as read at NowMs.
type KeystoreSnapshot struct {
	// Keys is the partition's keystore: its current kid (nil when the
	// partition has none) and its verifying kids, expired or not.
	Keys PartitionKeys
	// NowMs is the backend's clock when Keys was read (milliseconds since
	// the Unix epoch). The cache adds the monotonic time elapsed since the
	// read, so expiry decisions follow the backend's clock, not the
	// process's.
	NowMs int64
	// Partitions is the number of partitions of the store that answered.
	// The Engine uses the cache only while it equals the backend's
	// Capabilities().Partitions.
	Partitions int
	// Clock, when set, reads the backend's clock directly; in-process
	// drivers (memory, SQLite) whose clock is the process clock, or an
	// injected one, set it so that the cache decides with exactly the time
	// an uncached call would read. Nil for servers (Postgres, Valkey).
	Clock func() int64
}
