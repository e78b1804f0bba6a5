package valkey

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// forEachMaster runs fn on the server, or on every master of a cluster.
func forEachMaster(t *testing.T, b *Backend, fn func(context.Context, *redis.Client) error) {
	t.Helper()
	ctx := context.Background()
	var err error
	if cc, ok := b.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, fn)
	} else {
		err = fn(ctx, b.client.(*redis.Client))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// subscribers counts the subscribers of b's keystore channel, on every
// node.
func subscribers(t *testing.T, b *Backend) int64 {
	t.Helper()
	var n atomic.Int64
	forEachMaster(t, b, func(ctx context.Context, c *redis.Client) error {
		m, err := c.PubSubNumSub(ctx, b.keystoreChannel()).Result()
		n.Add(m[b.keystoreChannel()])
		return err
	})
	return n.Load()
}

// waitSubscribers waits until b's keystore channel has n subscribers.
func waitSubscribers(t *testing.T, b *Backend, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for subscribers(t, b) != n {
		if time.Now().After(deadline) {
			t.Fatalf("the keystore channel has %d subscribers, want %d", subscribers(t, b), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Given a subscriber, every message on the keystore channel and every
// (re)subscription calls changed; closing the backend ends WatchKeystore
// (conformance harnesses close backends, not Engines), and so does the end
// of its context.
func TestKeystoreWatchCallsAndStops(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			for _, byClose := range []bool{true, false} {
				b, _ := openFresh(t, s, 1)
				var calls atomic.Int64
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan error, 1)
				go func() { done <- b.WatchKeystore(ctx, func() { calls.Add(1) }) }()
				waitSubscribers(t, b, 1)
				eventually(t, "the call after subscribing", func() bool { return calls.Load() == 1 })
				if err := b.client.Publish(ctx, b.keystoreChannel(), "x").Err(); err != nil {
					t.Fatal(err)
				}
				eventually(t, "the call for a message", func() bool { return calls.Load() == 2 })
				if byClose {
					_ = b.Close()
				} else {
					cancel()
				}
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("WatchKeystore: %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("WatchKeystore still runs (stopped by close: %v)", byClose)
				}
			}
		})
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
