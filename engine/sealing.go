package engine

import (
	"context"
	"fmt"
	"net/url"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/kek"
)

// URL query parameters that OpenBackend reads and removes before the
// driver sees the URL: secrets at rest (package kek).
const (
	// ParamKEKFile names the file holding the key-encryption key that seals
	// every secret the backend writes (64 hex digits or 32 raw bytes).
	ParamKEKFile = "kek_file"
	// ParamKEKPreviousFile names a file holding an earlier KEK, used only to
	// open secrets sealed under it, while `ff rewrap` moves them to
	// kek_file. It may be given more than once.
	ParamKEKPreviousFile = "kek_previous_file"
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
	RewrapSecrets(ctx context.Context, to *kek.Keyring) (RewrapResult, error)
}

// RewrapResult reports a RewrapSecrets: how many stored secrets it re-sealed
// and how many were already in the target form.
type RewrapResult struct {
	Partitions int `json:"partitions"`
	Rewrapped  int `json:"rewrapped"`
	Unchanged  int `json:"unchanged"`
}

// Add adds another partition's counts to r.
func (r *RewrapResult) Add(rewrapped, unchanged int) {
	r.Partitions++
	r.Rewrapped += rewrapped
	r.Unchanged += unchanged
}

// keyringFromURL loads the keyring the URL's kek_file and kek_previous_file
// name (nil when there is no kek_file) and removes both from u, so drivers
// never see them.
func keyringFromURL(u *url.URL) (*kek.Keyring, error) {
	q := u.Query()
	files, previous := q[ParamKEKFile], q[ParamKEKPreviousFile]
	if len(files) == 0 && len(previous) == 0 {
		return nil, nil
	}
	q.Del(ParamKEKFile)
	q.Del(ParamKEKPreviousFile)
	u.RawQuery = q.Encode()
	if len(files) != 1 {
		return nil, contracts.Invalid("backend_url", fmt.Sprintf(
			"%s must be given exactly once when %s is given (it names the KEK that seals)", ParamKEKFile, ParamKEKPreviousFile))
	}
	primary, err := kek.LoadFile(ParamKEKFile, files[0])
	if err != nil {
		return nil, err
	}
	var older []*kek.Key
	for _, f := range previous {
		k, err := kek.LoadFile(ParamKEKPreviousFile, f)
		if err != nil {
			return nil, err
		}
		older = append(older, k)
	}
	return kek.NewKeyring(primary, older...), nil
}

// installKeyring gives b the keyring, refusing backends that cannot seal.
func installKeyring(b Backend, r *kek.Keyring, scheme string) error {
	if r == nil {
		return nil
	}
	s, ok := b.(SecretSealer)
	if !ok {
		return contracts.Invalid("backend_url", fmt.Sprintf(
			"%s: the %s driver cannot seal secrets at rest (it does not implement engine.SecretSealer)", ParamKEKFile, scheme))
	}
	s.SetKeyring(r)
	return nil
}

// RewrapSecrets re-seals every stored secret under to (nil: in plain) and
// then installs to, so the Engine goes on reading what it wrote. The
// backend must implement SecretSealer.
func (e *Engine) RewrapSecrets(ctx context.Context, to *kek.Keyring) (RewrapResult, error) {
	s, ok := e.b.(SecretSealer)
	if !ok {
		return RewrapResult{}, contracts.Invalid("backend_url", "this backend cannot seal secrets at rest (it does not implement engine.SecretSealer)")
	}
	if err := ctx.Err(); err != nil {
		return RewrapResult{}, contracts.AsError(err)
	}
	r, err := s.RewrapSecrets(ctx, to)
	if err != nil {
		return r, contracts.AsError(err)
	}
	s.SetKeyring(to)
	return r, nil
}
