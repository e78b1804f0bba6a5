package engine

import (
	"context"
	"github.com/flowfabric/flowfabric-go/driver"
)

// watcher is the Engine's running KeystoreWatcher.
type watcher struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when WatchKeystore has returned
}

// startWatch watches b for keystore changes, invalidating c on each, when
// b implements KeystoreWatcher; nil otherwise. It does no I/O itself, so New
// never waits for the network: until the listener is up (its first changed
// call), the TTL bounds staleness as without a watcher.
func startWatch(b driver.Backend, c *keystoreCache) *watcher {
	src, ok := b.(driver.KeystoreWatcher)
	if !ok || c == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		// An error means no push for this Engine: the TTL remains the bound.
		_ = src.WatchKeystore(ctx, c.invalidate)
	}()
	return w
}

// stop ends the watch and waits until the driver has released its listener.
func (w *watcher) stop() {
	if w == nil {
		return
	}
	w.cancel()
	<-w.done
}
