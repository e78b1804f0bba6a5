package driver

import (
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/kek"
)

// SecretSealer is an optional driver interface, found by type assertion: a
// backend that implements it can keep the HMAC secrets it stores sealed
// under a key-encryption key (package kek). OpenBackend installs the keyring
// named by the URL's kek_file; a backend that does not implement it refuses
// a kek_file instead of storing secrets in plain.
//
// A driver seals every secret it writes with the keyring's Seal, opens every
// secret it reads with Open, and compares secrets only after opening them
// (or compares stored forms, which are deterministic, and falls back to
// opening them when they differ), so that a seed or rotation re-run under
// another KEK is still a noop.
type SecretSealer interface {
	// SetKeyring installs the keyring for every later call; nil (the
	// default) stores secrets in plain and refuses sealed ones with
	// kek_mismatch. It is safe to call at any time.
	SetKeyring(r *kek.Keyring)
	// RewrapSecrets re-seals every stored secret of every partition under
	// to (nil: stores them in plain), each partition atomically, without
	// changing any kid, expiry or current kid. It opens them with the
	// installed keyring and leaves secrets already in to's form as they
	// are, so it is safe to re-run after a failure. It does not install to.
	RewrapSecrets(ctx context.Context, to *kek.Keyring) (contracts.RewrapResult, error)
}
