package valkey

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/driver"
)

var _ driver.KeystoreWatcher = (*Backend)(nil)

// keystoreChannelSuffix follows the prefix in the name of the channel that
// the keystore write scripts publish to: <prefix>ff:keystore. Pub/Sub is
// not scoped to a database number, nor to a slot: on a cluster, PUBLISH
// reaches the subscribers of every node.
const keystoreChannelSuffix = "ff:keystore"

// keystoreChannel is the store's keystore change channel.
func (b *Backend) keystoreChannel() string { return b.prefix + keystoreChannelSuffix }

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
// ctx ends or the backend is closed.
//
// Messages are at most once: one published while the subscriber was
// reconnecting is lost, which the call after the resubscription covers. A
// message may be spurious (another database number of the same server
// with the same prefix).
func (b *Backend) WatchKeystore(ctx context.Context, changed func()) error {
	ps := b.client.Subscribe(ctx, b.keystoreChannel())
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
					changed() // changes published while unsubscribed were lost
				}
			case *redis.Message:
				changed()
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
