package valkey

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/driver"
)

var (
	_ driver.KeystoreWatcher  = (*Backend)(nil)
	_ driver.ClaimableWatcher = (*Backend)(nil)
)

// keystoreChannelSuffix follows the prefix in the name of the channel that
// the keystore write scripts publish to: <prefix>ff:keystore. Pub/Sub is
// not scoped to a database number, nor to a slot: on a cluster, PUBLISH
// reaches the subscribers of every node.
const keystoreChannelSuffix = "ff:keystore"

// keystoreChannel is the store's keystore change channel.
func (b *Backend) keystoreChannel() string { return b.prefix + keystoreChannelSuffix }

// claimableChannelSuffix follows the prefix in the name of the channel
// that resuming deliveries, cancels and releases publish to (ff_claimable
// in lua/prelude.lua), with the partition's number as the message:
// <prefix>ff:claimable (docs/spec.md §8.8).
//
// One channel for the store, published with PUBLISH from inside the
// write's script, rather than a shard channel per partition (SPUBLISH,
// which a script may only address in its own slot): a watcher then holds
// one subscription on one connection, where P shard channels would need a
// subscription per slot (go-redis opens a connection for each) and as many
// resubscriptions after a failover. The price is the cluster bus: a cluster
// relays each PUBLISH to every node, one small message per execution made
// claimable, and a watcher on another node than the partition's master
// hears it one hop later (measured on a 3-master cluster: a wake-up in
// about 135 µs after the call's start at p50, 90 µs with SPUBLISH; the
// call itself costs the same within noise).
const claimableChannelSuffix = "ff:claimable"

// claimableChannel is the store's claimable channel.
func (b *Backend) claimableChannel() string { return b.prefix + claimableChannelSuffix }

// The subscriber's timing. It waits for messages in slices of watchPoll so
// that it notices the end of ctx, pings the server every watchPing to find
// a connection that died silently, and after a failure retries with a
// backoff doubling from watchBackoffMin to watchBackoffMax.
var (
	watchPoll       = time.Second
	watchPing       = 30 * time.Second
	watchBackoffMin = 50 * time.Millisecond
	watchBackoffMax = 5 * time.Second
)

// WatchKeystore subscribes, on a connection of its own, to the channel that
// every keystore write script publishes to (by any process), and calls
// changed for each message and once after each (re)subscription: go-redis
// reconnects a lost connection and subscribes again, and the server's
// confirmation is the sign that the subscriber is back. It returns nil when
// ctx ends or the backend is closed, and unavailable / backend_closed when
// called after Close.
//
// Messages are at most once: one published while the subscriber was
// reconnecting is lost, which the call after the resubscription covers. A
// message may be spurious (another database number of the same server
// with the same prefix).
func (b *Backend) WatchKeystore(ctx context.Context, changed func()) error {
	return b.watch(ctx, b.keystoreChannel(), changed)
}

// WatchClaimable subscribes, on a connection of its own, to the channel
// that resuming deliveries, cancels and releases of every process publish
// to from inside their scripts (driver.ClaimableWatcher, docs/spec.md
// §8.8), and calls wake (never concurrently) for each message and once
// after each (re)subscription, as WatchKeystore does. A change is published
// in the script that makes it, so a claim that follows the wake-up finds
// it. Wake-ups are at most once and may be spurious (another database
// number with the same prefix); an execution that becomes claimable with
// time (a timeout, an expired lease) publishes nothing. It returns nil when
// ctx ends or the backend is closed, and unavailable / backend_closed when
// called after Close.
func (b *Backend) WatchClaimable(ctx context.Context, wake func()) error {
	return b.watch(ctx, b.claimableChannel(), wake)
}

// watch subscribes to channel until ctx ends or the backend is closed,
// calling notify for each message and after each (re)subscription.
func (b *Backend) watch(ctx context.Context, channel string, notify func()) error {
	if err := b.usable(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Close ends the watch even when the client (New's) stays open.
	stopLife := context.AfterFunc(b.life, cancel)
	defer stopLife()
	ps := b.client.Subscribe(ctx, channel)
	defer ps.Close()
	// Closing the subscriber ends a ReceiveTimeout in progress, so the
	// caller does not wait for watchPoll when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	backoff := watchBackoffMin
	lastPing := time.Now()
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, watchPoll)
		switch {
		case err == nil:
			backoff = watchBackoffMin
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					notify() // changes published while unsubscribed were lost
				}
			case *redis.Message:
				notify()
			}
		case errors.Is(err, redis.ErrClosed) || ctx.Err() != nil:
			return nil // the backend (or the subscriber) is closed
		case isTimeout(err):
			if time.Since(lastPing) >= watchPing {
				// The reply comes back through ReceiveTimeout as a Pong; a
				// failed write makes go-redis reconnect.
				_ = ps.Ping(ctx)
				lastPing = time.Now()
			}
		default:
			// go-redis reconnects on the next ReceiveTimeout.
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			backoff = min(2*backoff, watchBackoffMax)
		}
	}
	return nil
}

// isTimeout reports a read that found no message within its timeout.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
