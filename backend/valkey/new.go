package valkey

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Option configures New, as the URL's options configure Open.
type Option func(*config)

// WithPartitions sets the number of partitions P, 1 to MaxPartitions
// (default DefaultPartitions), as the URL's partitions option does. A store
// keeps the count it was created with: another one answers conflict /
// partition_count_mismatch.
func WithPartitions(n int) Option { return func(c *config) { c.partitions = n } }

// WithPrefix sets a key namespace prepended to every key and channel, as the
// URL's prefix option does; it must not hold '{' or '}'.
func WithPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithWaitReplicas makes every write wait for n replicas' confirmation, 0
// (the default: none) to MaxWaitReplicas, as the URL's wait_replicas option
// does (see Replicas and failover in the package documentation).
func WithWaitReplicas(n int) Option { return func(c *config) { c.waitReplicas = n } }

// WithWaitTimeout sets how long a write waits for its replicas, 1ms to
// MaxWaitTimeout (default DefaultWaitTimeout), as the URL's wait_timeout
// option does; with replicas to wait for, it must be at least 500ms shorter
// than the client's ReadTimeout when that is positive.
func WithWaitTimeout(d time.Duration) Option { return func(c *config) { c.waitTimeout = d } }

// New returns a Backend over the application's own go-redis client, so that
// the store shares the application's connections, settings, credentials,
// TLS configuration and hooks (tracing, metrics). The client must be a
// *redis.Client (redis.NewClient, NewFailoverClient, or NewUniversalClient
// with one address) or a *redis.ClusterClient (NewClusterClient,
// NewFailoverClusterClient, NewUniversalClient with several), which makes
// the Backend a cluster one; any other type, a *redis.Ring included,
// answers validation / invalid_input naming client. opts are the URL's
// options (WithPartitions, WithPrefix, WithWaitReplicas, WithWaitTimeout);
// an invalid one answers invalid_input naming it, before any I/O.
//
// New then does what Open does after connecting (three round trips, the
// last two per node): it checks the partition count, creates the missing
// store markers and remembers every partition's, and reads whether the
// servers persist. The Backend never closes client: its Close stops its own
// use (later calls answer unavailable / backend_closed) and its watchers,
// which subscribe on connections of the client's Pub/Sub pool.
//
// On a *redis.ClusterClient New adds hooks (AddHook on the client and on
// each node client it has or creates later, OnNewNode) that ask the client
// to reload its slot map, at most once every 250 ms, when a call meets a
// sign that the map is stale (see Replicas and failover); go-redis cannot
// remove a hook, so they stay on the client after Close, doing nothing.
//
// Open sets go-redis' ContextTimeoutEnabled so that a call's context
// deadline bounds its socket reads and writes; New does not change the
// client's options: set it on the client for the same behaviour. Install a
// keyring with SetKeyring to seal secrets at rest.
func New(ctx context.Context, client redis.UniversalClient, opts ...Option) (*Backend, error) {
	c := config{partitions: DefaultPartitions, waitTimeout: DefaultWaitTimeout}
	for _, opt := range opts {
		opt(&c)
	}
	if err := c.checkOptions(); err != nil {
		return nil, err
	}
	var read time.Duration
	switch cl := client.(type) {
	case *redis.ClusterClient:
		if cl == nil {
			return nil, contracts.Invalid("client", "must not be nil")
		}
		o := cl.Options()
		c.cluster, read = true, o.ReadTimeout
		c.redacted = clientURL(o.TLSConfig != nil, true, o.Addrs, 0)
	case *redis.Client:
		if cl == nil {
			return nil, contracts.Invalid("client", "must not be nil")
		}
		o := cl.Options()
		read = o.ReadTimeout
		c.redacted = clientURL(o.TLSConfig != nil, false, []string{o.Addr}, o.DB)
	case nil:
		return nil, contracts.Invalid("client", "must not be nil")
	default:
		return nil, contracts.Invalid("client", fmt.Sprintf("a %T is not supported: pass a *redis.Client or a *redis.ClusterClient (redis.NewClient, NewFailoverClient, NewClusterClient or NewUniversalClient)", client))
	}
	// The client's options are initialised: a ReadTimeout of 0 or less
	// means none.
	if c.waitReplicas > 0 && read > 0 && c.waitTimeout+waitReplyMargin > read {
		return nil, contracts.Invalid(OptionWaitTimeout, fmt.Sprintf("%v must be at least %v shorter than the client's ReadTimeout (%v)", c.waitTimeout, waitReplyMargin, read))
	}
	b := newBackend(c)
	b.shared = true
	if cc, ok := client.(*redis.ClusterClient); ok {
		b.client, b.topo = cc, watchTopology(cc)
		b.topo.hookNodes(ctx)
	} else {
		b.client = client
		b.hint = b.prefix + "ff:claim-hint"
	}
	if err := b.start(ctx); err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

// checkOptions checks the options New was given, as parseConfig checks the
// URL's.
func (c *config) checkOptions() error {
	switch {
	case c.partitions < 1 || c.partitions > MaxPartitions:
		return contracts.Invalid(OptionPartitions, fmt.Sprintf("must be from 1 to %d", MaxPartitions))
	case strings.ContainsAny(c.prefix, "{}"):
		return contracts.Invalid(OptionPrefix, "must hold no '{' or '}' (they would change the keys' hash slots)")
	case c.waitReplicas < 0 || c.waitReplicas > MaxWaitReplicas:
		return contracts.Invalid(OptionWaitReplicas, fmt.Sprintf("must be from 0 to %d", MaxWaitReplicas))
	case c.waitTimeout < time.Millisecond || c.waitTimeout > MaxWaitTimeout:
		return contracts.Invalid(OptionWaitTimeout, fmt.Sprintf("must be from 1ms to %v", MaxWaitTimeout))
	}
	return nil
}

// clientURL names a client's servers for messages, without user name or
// password: valkey://host:port/db, valkeys://..., valkey+cluster://h1,h2.
func clientURL(tls, cluster bool, addrs []string, db int) string {
	scheme := "valkey"
	if tls {
		scheme += "s"
	}
	if cluster {
		scheme += "+cluster"
	}
	u := url.URL{Scheme: scheme, Host: strings.Join(addrs, ",")}
	if !cluster {
		u.Path = "/" + strconv.Itoa(db)
	}
	return u.String()
}
