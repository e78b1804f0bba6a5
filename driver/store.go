package driver

import "context"

// StoreAdopter is an optional driver interface, found by type assertion: a
// backend that can tell when its store lost its data under it (docs/spec.md
// §6.1: it wrote a marker at first use, and every call checks that the
// marker is still the one it saw) answers unavailable / store_reset from then
// on, and AdoptStore makes it take the store as it is now — empty, or
// re-created by another process — as its own again, writing a new marker
// where there is none. Calls after AdoptStore work on the adopted store; a
// keystore emptied by the loss answers hmac_secret_not_initialized until it
// is seeded again.
//
// AdoptStore is an operator's decision, never automatic: every secret and
// every wait of the lost store are gone, and tokens handed out before the
// loss stop verifying unless the same secrets are seeded again.
type StoreAdopter interface {
	AdoptStore(ctx context.Context) error
}
