package engine

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Opener opens a backend for a parsed URL whose scheme it was registered for.
// It must not put u's secrets in logs or errors: not its password, nor a
// query parameter such as ?password= or ?sslpassword=, which u.Redacted()
// keeps; quote the scheme, host and path only. OpenBackend passes every
// error an Opener returns through RedactError as a second line of defence.
type Opener func(ctx context.Context, u *url.URL) (driver.Backend, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Opener{}
)

// Register makes a driver available under a URL scheme, in the manner of
// database/sql.Register. Drivers call it from init. It panics if opener is
// nil, the scheme is empty or not lowercase, or the scheme is already
// registered.
func Register(scheme string, opener Opener) {
	if opener == nil {
		panic("engine: Register opener is nil")
	}
	if scheme == "" || scheme != strings.ToLower(scheme) {
		panic(fmt.Sprintf("engine: Register scheme %q must be non-empty lowercase", scheme))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[scheme]; dup {
		panic(fmt.Sprintf("engine: Register called twice for scheme %q", scheme))
	}
	registry[scheme] = opener
}

// Schemes returns the registered URL schemes, sorted.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	s := make([]string, 0, len(registry))
	for k := range registry {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// OpenBackend parses rawURL and opens a backend through the opener
// registered for its scheme, without wrapping it in an Engine. The query
// parameters kek_file and kek_previous_file (ParamKEKFile) are the Engine's,
// not the driver's: they are removed from the URL the opener sees and the
// keyring they name is installed through SecretSealer.
func OpenBackend(ctx context.Context, rawURL string) (driver.Backend, error) {
	b, err := openBackend(ctx, rawURL)
	if err != nil {
		// Errors name the URL only redacted, and never quote its secrets
		// (a password, a kek_file path), whoever wrote the message.
		return nil, RedactError(err, rawURL)
	}
	return b, nil
}

func openBackend(ctx context.Context, rawURL string) (driver.Backend, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	scheme := strings.ToLower(u.Scheme)
	registryMu.RLock()
	opener, ok := registry[scheme]
	registryMu.RUnlock()
	if !ok {
		return nil, unknownScheme(u)
	}
	ring, err := keyringFromURL(u)
	if err != nil {
		return nil, err
	}
	b, err := opener(ctx, u)
	if err != nil {
		return nil, contracts.AsError(err)
	}
	if err := installKeyring(b, ring, scheme); err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

// Open opens the backend for rawURL (for example "sqlite://./ff.db",
// "postgres://...", "valkey://...") and returns an Engine over it. The
// scheme's driver must be registered, usually by blank-importing its package.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Engine, error) {
	b, err := OpenBackend(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	return New(b, opts...), nil
}

func unknownScheme(u *url.URL) error {
	if u.Scheme == "" && u.Opaque == "" && u.Host == "" {
		// A path or a key/value DSN ("host=db password=..."), which
		// url.Parse takes for a path: show it as written, redacted.
		raw := u.Path
		if u.RawQuery != "" || u.ForceQuery {
			raw += "?" + u.RawQuery
		}
		if u.Fragment != "" {
			raw += "#" + u.Fragment
		}
		hint := "a URL with a scheme"
		if isKeyValueDSN(raw) {
			hint = "a URL, not a key/value DSN (postgres://user:password@host/db)"
		}
		return contracts.Invalid("backend_url", fmt.Sprintf(
			"%s has no scheme: want %s; registered schemes: %s", RedactURL(raw), hint, strings.Join(Schemes(), ", ")))
	}
	return contracts.Invalid("backend_url", fmt.Sprintf(
		"unknown scheme %q in %s; registered schemes: %s (is the driver's package blank-imported?)",
		u.Scheme, RedactURL(u.String()), strings.Join(Schemes(), ", ")))
}

func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse quotes the input, which may hold a password: say only what failed.
		return nil, contracts.Invalid("backend_url", "must be a URL such as sqlite://./ff.db")
	}
	return u, nil
}
