package memory

import (
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Secrets at rest (package kek). b.keys holds every secret in its stored
// form: sealed under the installed keyring, or in plain without one. Each
// operation opens only the secrets it uses (the kid it signs or verifies
// with, the kid a seed or rotation compares), so a missing or wrong KEK
// fails exactly the calls that need a secret, with kek_mismatch, and
// list_kids still answers. Writes seal only the kids they insert: a kid's
// stored form never changes except through RewrapSecrets.

var _ driver.SecretSealer = (*Backend)(nil)

// partition is the keystore partition every secret is sealed for: the
// memory backend has one.
const partition = 0

// SetKeyring installs the keyring every later call seals and opens with;
// nil stores secrets in plain. It is safe to call at any time: each
// operation reads the keyring once, under the backend's lock.
func (b *Backend) SetKeyring(r *kek.Keyring) { b.ring.Store(r) }

// RewrapSecrets re-seals every stored secret under to (nil: in plain), in
// one step under the backend's lock: kids, expiries and the current kid
// stay as they are. Secrets already in to's form are left alone and
// counted unchanged; the others are opened with the installed keyring, and
// a secret that does not open fails the call with kek_mismatch, writing
// nothing. It does not install to.
func (b *Backend) RewrapSecrets(ctx context.Context, to *kek.Keyring) (contracts.RewrapResult, error) {
	_, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.RewrapResult{}, err
	}
	defer unlock()
	next, rewrapped, unchanged, err := driver.RewrapKeys(b.ring.Load(), to, partition, b.keys)
	if err != nil {
		return contracts.RewrapResult{}, err
	}
	b.keys = next
	var res contracts.RewrapResult
	driver.AddRewrapped(&res, rewrapped, unchanged)
	return res, nil
}
