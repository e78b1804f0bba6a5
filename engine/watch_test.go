package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/engine"
)

// pushing is a memory store that is also a KeystoreWatcher whose
// notifications the test sends by hand (push), as a server would after a
// change committed elsewhere. The real drivers are tested against real
// servers in their packages.
type pushing struct {
	*store
	fail    error         // returned by WatchKeystore at once when set
	started chan struct{} // closed when WatchKeystore is called
	up      chan struct{} // closed after the first changed call
	pushes  chan struct{}
	ended   chan struct{} // closed when WatchKeystore returns
}

func newPushing(t *testing.T) *pushing {
	return &pushing{store: newStore(t), started: make(chan struct{}), up: make(chan struct{}), pushes: make(chan struct{}), ended: make(chan struct{})}
}

func (p *pushing) WatchKeystore(ctx context.Context, changed func()) error {
	defer close(p.ended)
	close(p.started)
	if p.fail != nil {
		return p.fail
	}
	changed() // the listener is up
	close(p.up)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.pushes:
			changed()
		}
	}
}

// push delivers one notification and returns once changed has run.
func (p *pushing) push(t *testing.T) {
	t.Helper()
	select {
	case p.pushes <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatal("the Engine does not watch the keystore")
	}
	// An unbuffered send returns when the watcher took it; a second one
	// returns when the first changed() has run.
	select {
	case p.pushes <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher is stuck")
	}
}

func TestKeystoreWatchSeesExternalRotationAtOnce(t *testing.T) {
	b := newPushing(t)
	e, _ := cached(t, b, time.Hour)
	defer e.Close()
	<-b.up // its changed call would be a refresh the test does not expect
	other := engine.New(b.store.Backend, engine.WithKeystoreCache(0))
	mustSeed(t, other, "kid-a", 'a')
	wantKid(t, "first sign", mustSign(t, e, "m"), "kid-a")

	mustRotate(t, other, "kid-b", 'b', 60_000)
	wantKid(t, "before the push (the TTL is an hour)", mustSign(t, e, "m"), "kid-a")
	b.push(t)
	wantKid(t, "after the push", mustSign(t, e, "m"), "kid-b")
}

func TestKeystoreWatchStopsAtClose(t *testing.T) {
	b := newPushing(t)
	e, _ := cached(t, b, time.Hour)
	<-b.started
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.ended:
	default:
		t.Fatal("Close returned before WatchKeystore did")
	}
	_ = e.Close() // closing twice is harmless
}

func TestKeystoreWatchFailureKeepsTheTTL(t *testing.T) {
	b := newPushing(t)
	b.fail = errors.New("cannot watch")
	e, m := cached(t, b, time.Second)
	defer e.Close()
	<-b.ended
	other := engine.New(b.store.Backend, engine.WithKeystoreCache(0))
	mustSeed(t, other, "kid-a", 'a')
	wantKid(t, "first sign", mustSign(t, e, "m"), "kid-a")
	mustRotate(t, other, "kid-b", 'b', 60_000)
	wantKid(t, "within the TTL", mustSign(t, e, "m"), "kid-a")
	m.advance(time.Second)
	wantKid(t, "after the TTL", mustSign(t, e, "m"), "kid-b")
}

func TestKeystoreWatchNotStartedWithoutCache(t *testing.T) {
	b := newPushing(t)
	e := engine.New(b, engine.WithKeystoreCache(0))
	defer e.Close()
	select {
	case <-b.started:
		t.Fatal("WatchKeystore was called with the cache off")
	case <-time.After(50 * time.Millisecond):
	}
}
