package valkey

import (
	"context"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// The store marker (docs/spec.md §6.1).
//
// A Valkey server restarted without persistence comes back empty, and so
// does a cluster master replaced by an empty node; without a sign of it, a
// running process would go on as if nothing had happened: its secrets gone
// (hmac_secret_not_initialized, or a seed from configuration putting
// another secret in place), its waits gone (execution_not_found), its
// tokens suddenly unknown. So each partition N holds a marker,
// <prefix>ff:{p:N}:store (in N's slot), whose value is a random id:
//
//   - Open (and AdoptStore) creates the markers that are missing (SET NX
//     GET, one pipeline: one round trip per node) and remembers every
//     partition's value, its own or the one another process created first;
//   - every script call carries its partition's marker key and the value
//     this backend remembered (scriptKeys, scriptArgs), and the prelude
//     compares them before the script's body (one GET): a marker missing,
//     or holding another value, answers unavailable / store_reset and
//     changes nothing;
//   - Ping reads every partition's marker (one pipeline) and answers
//     store_reset the same way, so /readyz fails.
//
// The comparison is by value, so that a store emptied and then taken by
// another process (which created new markers at its Open) still answers
// store_reset here until this backend adopts it. A store written before
// markers existed gets them at Open, like a fresh one.

var _ driver.StoreAdopter = (*Backend)(nil)

// markerKey is partition p's store marker, in p's slot.
func (b *Backend) markerKey(p int) string { return b.key(p, "store") }

// marker is the value of partition p's store marker that this backend
// expects.
func (b *Backend) marker(p int) string { return (*b.markers.Load())[p].(string) }

// ensureMarkers creates the store markers that are missing with a fresh
// id, in one pipeline (one round trip per node), and remembers every
// partition's value. SET NX GET (Redis 7.0+) answers the value already
// there, or nil when it set this call's. With wait_replicas the markers
// are not waited for, so that Open works (and reads answer) while replicas
// are missing: the first write acknowledged afterwards covers them (WAIT
// confirms the replication stream up to that write); a failover before it
// may lose them, and the promoted node then answers store_reset until the
// store is adopted.
func (b *Backend) ensureMarkers(ctx context.Context) error {
	if err := b.usable(); err != nil {
		return err
	}
	id := driver.NewID()
	pipe := b.client.Pipeline()
	cmds := make([]*redis.Cmd, b.parts)
	for p := range cmds {
		cmds[p] = pipe.Do(ctx, "SET", b.markerKey(p), id, "NX", "GET")
	}
	_, _ = pipe.Exec(ctx) // errors are read per command
	values := make([]any, b.parts)
	for p, c := range cmds {
		v, err := c.Text()
		switch {
		case errors.Is(err, redis.Nil):
			values[p] = id
		case err != nil:
			return interpretError(err)
		default:
			values[p] = v
		}
	}
	b.markers.Store(&values)
	return nil
}

// checkMarkers reads every partition's store marker in one pipeline (one
// round trip per node) and answers store_reset for the first one that is
// missing or holds another value than this backend remembered.
func (b *Backend) checkMarkers(ctx context.Context) error {
	if err := b.usable(); err != nil {
		return err
	}
	pipe := b.client.Pipeline()
	cmds := make([]*redis.StringCmd, b.parts)
	for p := range cmds {
		cmds[p] = pipe.Get(ctx, b.markerKey(p))
	}
	_, _ = pipe.Exec(ctx) // errors are read per command
	if err := ctx.Err(); err != nil {
		return interpretError(err)
	}
	for p, c := range cmds {
		v, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
			return storeReset(p, "gone")
		case err != nil:
			return interpretError(err)
		case v != b.marker(p):
			return storeReset(p, "changed")
		}
	}
	return nil
}

// storeReset is the store_reset of partition p (-1: not known), whose
// marker is gone or changed (how, as the prelude reports it).
func storeReset(p int, how string) *contracts.Error {
	which := "a partition"
	if p >= 0 {
		which = "partition " + strconv.Itoa(p)
	}
	if how == "changed" {
		return contracts.ErrStoreReset.With(
			"the store's marker for %s changed: the store lost its data (restarted without persistence?) and another process took the emptied store since this backend opened it; "+
				"every secret and wait of it is gone. Adopt the store (Engine.AdoptStore, ff serve --reseed-on-reset) and seed it again, or restart", which)
	}
	return contracts.ErrStoreReset.With(
		"the store's marker for %s is gone: the server lost its data (restarted without persistence?) since this backend opened it; "+
			"every secret and wait of it is gone. Adopt the store (Engine.AdoptStore, ff serve --reseed-on-reset) and seed it again, or restart", which)
}

// scriptStoreReset is the store_reset a script raised: "FF store_reset
// <partition> gone|changed". A partition that is not a number is not
// quoted.
func scriptStoreReset(partition, how string) *contracts.Error {
	p, err := strconv.Atoi(partition)
	if err != nil || p < 0 || p >= MaxPartitions {
		p = -1
	}
	return storeReset(p, how)
}

// AdoptStore takes the store as it is now as this backend's own, after
// calls answered store_reset (driver.StoreAdopter, docs/spec.md §6.1): it
// checks the partition count the store records, if any, creates the store
// markers that are missing and reads every partition's value again, in two
// round trips (the second one per node). Calls after it work on the
// adopted store, whose keystore answers hmac_secret_not_initialized until
// it is seeded. Adopting a store that was never lost changes nothing.
func (b *Backend) AdoptStore(ctx context.Context) error {
	if err := b.checkPartitions(ctx); err != nil {
		return err
	}
	return b.ensureMarkers(ctx)
}
