package driver

import "context"

// KeystoreWatcher is an optional driver interface, found by type assertion:
// a backend that can push keystore changes (Postgres LISTEN/NOTIFY, Valkey
// pub/sub) lets the Engine's keystore cache see a Seed, RotateAll or
// RewrapSecrets made by another Engine or process at once, instead of
// within the cache's TTL (see WithKeystoreCache).
//
// Notifications are an optimisation, never needed for correctness: while the
// listener is down, the TTL remains the bound on staleness.
type KeystoreWatcher interface {
	// WatchKeystore listens for keystore changes until ctx ends or the
	// backend is closed, then releases its listener and returns: it blocks,
	// and the Engine runs it on a goroutine of its own.
	//
	// It calls changed (never concurrently) after every keystore change
	// committed by any process, at least once and no sooner than the change
	// is visible to reads, and also each time its listener has been
	// (re)established, because changes committed while it was not listening
	// are lost. Calls may be spurious (a change of another store, a write
	// that changed nothing). A listener that cannot connect or loses its
	// connection retries with backoff; WatchKeystore returns an error only
	// when the backend cannot watch at all (closed, or not configured to
	// notify), and nil when ctx ends.
	WatchKeystore(ctx context.Context, changed func()) error
}
