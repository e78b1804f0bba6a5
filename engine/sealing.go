package engine

import (
	"context"
	"fmt"
	"net/url"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
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
func installKeyring(b driver.Backend, r *kek.Keyring, scheme string) error {
	if r == nil {
		return nil
	}
	s, ok := b.(driver.SecretSealer)
	if !ok {
		return contracts.Invalid("backend_url", fmt.Sprintf(
			"%s: the %s driver cannot seal secrets at rest (it does not implement driver.SecretSealer)", ParamKEKFile, scheme))
	}
	s.SetKeyring(r)
	return nil
}

// RewrapSecrets re-seals every stored secret under to (nil: in plain) and
// then installs to, so the Engine goes on reading what it wrote. The
// backend must implement SecretSealer.
func (e *Engine) RewrapSecrets(ctx context.Context, to *kek.Keyring) (contracts.RewrapResult, error) {
	s, ok := e.b.(driver.SecretSealer)
	if !ok {
		return contracts.RewrapResult{}, contracts.Invalid("backend_url", "this backend cannot seal secrets at rest (it does not implement driver.SecretSealer)")
	}
	if err := ctx.Err(); err != nil {
		return contracts.RewrapResult{}, contracts.AsError(err)
	}
	r, err := s.RewrapSecrets(ctx, to)
	if err != nil {
		return r, contracts.AsError(err)
	}
	s.SetKeyring(to)
	return r, nil
}
