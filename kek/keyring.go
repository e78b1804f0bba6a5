package kek

import (
	"bytes"
	"encoding/hex"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Keyring is what a backend seals and opens stored secrets with: a primary
// KEK that seals, and previous KEKs that only open. A nil *Keyring is valid
// and means "no KEK": secrets are stored in plain, and a sealed one fails
// with kek_mismatch. A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	primary  *Key
	previous []*Key
}

// NewKeyring returns a keyring sealing with primary and opening secrets
// sealed under primary or any of previous. primary must not be nil.
func NewKeyring(primary *Key, previous ...*Key) *Keyring {
	if primary == nil {
		panic("kek: NewKeyring primary is nil")
	}
	r := &Keyring{primary: primary}
	for _, k := range previous {
		if k != nil && k.fp != primary.fp {
			r.previous = append(r.previous, k)
		}
	}
	return r
}

// Primary returns the KEK that seals, nil for a nil keyring.
func (r *Keyring) Primary() *Key {
	if r == nil {
		return nil
	}
	return r.primary
}

// Fingerprint returns the primary KEK's fingerprint, "" for a nil keyring.
func (r *Keyring) Fingerprint() string {
	if r == nil {
		return ""
	}
	return r.primary.Fingerprint()
}

// String names the keyring's KEKs by fingerprint, primary first.
func (r *Keyring) String() string {
	if r == nil {
		return "no kek"
	}
	names := []string{r.primary.Fingerprint()}
	for _, k := range r.previous {
		names = append(names, k.Fingerprint())
	}
	return "kek " + strings.Join(names, ", ")
}

// Seal returns the stored form of secret for kid on partition: sealed under
// the primary KEK, or a copy of secret for a nil keyring. The result never
// aliases secret.
func (r *Keyring) Seal(kid string, partition int, secret []byte) []byte {
	if r == nil {
		return bytes.Clone(secret)
	}
	return r.primary.seal(kid, partition, secret)
}

// Open returns the secret a stored form holds for kid on partition. A
// secret stored in plain is returned as is (a copy); a sealed one must
// authenticate under one of the keyring's KEKs for exactly this kid and
// partition. Errors are kek_mismatch (the KEK is not configured, or the
// stored form was altered or moved) or internal_error (not a stored secret
// at all); their detail names the kid, the partition and fingerprints,
// never secret bytes.
func (r *Keyring) Open(kid string, partition int, stored []byte) (contracts.Secret, error) {
	if !IsSealed(stored) {
		if len(stored) < contracts.MinSecretBytes || len(stored) > contracts.MaxSecretBytes {
			return nil, contracts.ErrInternal.With("kek: kid %q on partition %d: the stored secret is %d bytes, neither a plain secret (%d-%d) nor a sealed one (%d-%d)",
				kid, partition, len(stored), contracts.MinSecretBytes, contracts.MaxSecretBytes, minSealed, maxSealed)
		}
		return contracts.Secret(bytes.Clone(stored)), nil
	}
	fp := sealedFingerprint(stored)
	if r == nil {
		return nil, contracts.ErrKEKMismatch.With("kid %q on partition %d: the stored secret is sealed under kek %s and no kek_file is configured", kid, partition, fp)
	}
	k := r.key(stored)
	if k == nil {
		return nil, contracts.ErrKEKMismatch.With("kid %q on partition %d: the stored secret is sealed under kek %s, not under the configured %s (add it as kek_previous_file, or rewrap the store)", kid, partition, fp, r)
	}
	b, ok := k.open(kid, partition, stored)
	if !ok {
		return nil, contracts.ErrKEKMismatch.With("kid %q on partition %d: the stored secret does not open under kek %s: it was altered, or sealed for another kid or partition", kid, partition, fp)
	}
	return contracts.Secret(b), nil
}

// SealedUnderPrimary reports whether stored is already in the form Seal
// writes: sealed under the primary KEK, or in plain for a nil keyring.
// Rewrapping leaves such secrets as they are.
func (r *Keyring) SealedUnderPrimary(stored []byte) bool {
	if r == nil {
		return !IsSealed(stored)
	}
	return IsSealed(stored) && bytes.Equal(stored[len(magic):len(magic)+fpLen], r.primary.fp[:])
}

// key returns the keyring's KEK whose fingerprint stored carries.
func (r *Keyring) key(stored []byte) *Key {
	fp := stored[len(magic) : len(magic)+fpLen]
	if bytes.Equal(fp, r.primary.fp[:]) {
		return r.primary
	}
	for _, k := range r.previous {
		if bytes.Equal(fp, k.fp[:]) {
			return k
		}
	}
	return nil
}

// IsSealed reports whether stored is a sealed secret rather than one stored
// in plain (which is at most contracts.MaxSecretBytes long).
func IsSealed(stored []byte) bool {
	return len(stored) >= minSealed && len(stored) <= maxSealed && string(stored[:len(magic)]) == magic
}

// SealedFingerprint returns the fingerprint of the KEK that sealed stored,
// "" when stored is not sealed.
func SealedFingerprint(stored []byte) string {
	if !IsSealed(stored) {
		return ""
	}
	return sealedFingerprint(stored)
}

func sealedFingerprint(stored []byte) string {
	return hex.EncodeToString(stored[len(magic) : len(magic)+fpLen])
}
