package valkey

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Schemes are the URL schemes this driver registers. The "s" forms use TLS;
// the "+cluster" forms (or ?cluster=true) connect to a Redis Cluster.
var Schemes = []string{
	"valkey", "valkeys", "redis", "rediss",
	"valkey+cluster", "valkeys+cluster", "redis+cluster", "rediss+cluster",
}

// URL options this driver reads; every other query parameter is handed to
// go-redis (dial_timeout, read_timeout, pool_size, ...).
const (
	// OptionPartitions is the number of keystore partitions P, 1-1024.
	OptionPartitions = "partitions"
	// OptionPrefix is a key namespace prepended to every key, so that
	// tenants and tests can share one server.
	OptionPrefix = "prefix"
	// OptionCluster set to true selects cluster mode on a plain scheme.
	OptionCluster = "cluster"
	// OptionWaitReplicas is how many replicas must confirm each write,
	// 0-16 (default 0: none, writes are acknowledged by the primary
	// alone). With N > 0 every mutating script call is followed on its
	// node by WAIT N wait_timeout, and a call that fewer than N replicas
	// confirmed in time answers unavailable / replication_unconfirmed
	// (retryable; docs/spec.md §6.1).
	OptionWaitReplicas = "wait_replicas"
	// OptionWaitTimeout is how long a write waits for wait_replicas
	// replicas, a Go duration from 1ms to 60s (default 1s), and at least
	// 500ms shorter than go-redis' read_timeout (5s by default), which
	// bounds the wait's reply.
	OptionWaitTimeout = "wait_timeout"
)

// Partition limits and default (docs/spec.md §4).
const (
	DefaultPartitions = 256
	MaxPartitions     = 1024
)

// Limits and default of wait_replicas and wait_timeout.
const (
	MaxWaitReplicas    = 16
	DefaultWaitTimeout = time.Second
	MaxWaitTimeout     = 60 * time.Second
	// waitReplyMargin is how much longer than wait_timeout the read
	// timeout must be, so that WAIT's reply arrives before it.
	waitReplyMargin = 500 * time.Millisecond
	// defaultReadTimeout is go-redis' read timeout when the URL sets none.
	defaultReadTimeout = 5 * time.Second
)

// config is a parsed backend URL.
type config struct {
	cluster    bool
	partitions int
	prefix     string
	redacted   string // the URL without its password, for messages
	// waitReplicas > 0: each write waits for that many replicas, up to
	// waitTimeout.
	waitReplicas int
	waitTimeout  time.Duration
	standalone   *redis.Options
	clustered    *redis.ClusterOptions
}

// parseConfig reads a valkey:// (or redis://, TLS, cluster) URL. Errors are
// validation / invalid_input naming the option, and show the URL redacted.
func parseConfig(u *url.URL) (config, error) {
	c := config{partitions: DefaultPartitions, waitTimeout: DefaultWaitTimeout, redacted: driver.RedactedURL(u)}
	scheme := strings.ToLower(u.Scheme)
	base, cluster := strings.CutSuffix(scheme, "+cluster")
	var tls bool
	switch base {
	case "valkey", "redis":
	case "valkeys", "rediss":
		tls = true
	default:
		return c, contracts.Invalid("backend_url", fmt.Sprintf("scheme %q is not a Valkey scheme", u.Scheme))
	}
	q := u.Query()
	if err := c.readOptions(q, &cluster); err != nil {
		return c, err
	}
	c.cluster = cluster
	hosts := strings.Split(u.Host, ",")
	if len(hosts) > 1 && !cluster {
		return c, contracts.Invalid("backend_url", "several hosts need a +cluster scheme or cluster=true: "+c.redacted)
	}
	if err := c.clientOptions(u, tls, hosts, q); err != nil {
		return c, err
	}
	return c, c.checkWaitTimeout()
}

// readOptions takes this driver's options out of q.
func (c *config) readOptions(q url.Values, cluster *bool) error {
	if v, ok := q[OptionPartitions]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > MaxPartitions || len(v) != 1 {
			return contracts.Invalid(OptionPartitions, fmt.Sprintf("must be one integer from 1 to %d", MaxPartitions))
		}
		c.partitions = n
	}
	if v, ok := q[OptionPrefix]; ok {
		if len(v) != 1 || strings.ContainsAny(v[0], "{}") {
			return contracts.Invalid(OptionPrefix, "must be given once and hold no '{' or '}' (they would change the keys' hash slots)")
		}
		c.prefix = v[0]
	}
	if v, ok := q[OptionCluster]; ok {
		b, err := strconv.ParseBool(v[0])
		if err != nil || len(v) != 1 {
			return contracts.Invalid(OptionCluster, "must be true or false")
		}
		*cluster = *cluster || b
	}
	if v, ok := q[OptionWaitReplicas]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 0 || n > MaxWaitReplicas || len(v) != 1 {
			return contracts.Invalid(OptionWaitReplicas, fmt.Sprintf("must be one integer from 0 to %d", MaxWaitReplicas))
		}
		c.waitReplicas = n
	}
	if v, ok := q[OptionWaitTimeout]; ok {
		d, err := time.ParseDuration(v[0])
		if err != nil || d < time.Millisecond || d > MaxWaitTimeout || len(v) != 1 {
			return contracts.Invalid(OptionWaitTimeout, fmt.Sprintf("must be one Go duration from 1ms to %v (such as 500ms or 2s)", MaxWaitTimeout))
		}
		c.waitTimeout = d
	}
	for _, o := range []string{OptionPartitions, OptionPrefix, OptionCluster, OptionWaitReplicas, OptionWaitTimeout} {
		q.Del(o)
	}
	return nil
}

// checkWaitTimeout refuses a wait_timeout that go-redis' read timeout
// would cut short: WAIT answers only when its timeout ends, and its reply
// must arrive before the read timeout.
func (c *config) checkWaitTimeout() error {
	if c.waitReplicas == 0 {
		return nil
	}
	read := c.readTimeout()
	if read > 0 && c.waitTimeout+waitReplyMargin > read {
		return contracts.Invalid(OptionWaitTimeout, fmt.Sprintf("%v must be at least %v shorter than read_timeout (%v)", c.waitTimeout, waitReplyMargin, read))
	}
	return nil
}

// readTimeout is go-redis' effective read timeout; 0 or less for none.
func (c *config) readTimeout() time.Duration {
	var read time.Duration
	if c.cluster {
		read = c.clustered.ReadTimeout
	} else {
		read = c.standalone.ReadTimeout
	}
	if read == 0 {
		return defaultReadTimeout
	}
	return read
}

// clientOptions builds go-redis options from the URL: the first host is the
// URL's host, further cluster hosts become addr= parameters, and the
// remaining query parameters go to go-redis.
func (c *config) clientOptions(u *url.URL, tls bool, hosts []string, q url.Values) error {
	g := url.URL{Scheme: "redis", User: u.User, Host: hosts[0], Path: u.Path}
	if tls {
		g.Scheme = "rediss"
	}
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	g.RawQuery = q.Encode()
	var err error
	if c.cluster {
		c.clustered, err = redis.ParseClusterURL(g.String())
	} else {
		c.standalone, err = redis.ParseURL(g.String())
	}
	if err != nil {
		// go-redis errors may quote the URL; say only what is safe.
		msg := err.Error()
		if quotesURLValue(msg, u) {
			msg = "malformed URL"
		}
		return contracts.Invalid("backend_url", fmt.Sprintf("%s: %s", c.redacted, msg))
	}
	return nil
}

// quotesURLValue reports whether msg quotes u's password or the value of
// any of its query parameters (at least 4 bytes, raw or decoded), which may
// be secrets.
func quotesURLValue(msg string, u *url.URL) bool {
	var values []string
	if pw, ok := u.User.Password(); ok {
		values = append(values, pw)
	}
	for _, part := range strings.Split(u.RawQuery, "&") {
		_, v, _ := strings.Cut(part, "=")
		values = append(values, v)
		if dv, err := url.QueryUnescape(v); err == nil {
			values = append(values, dv)
		}
	}
	for _, v := range values {
		if len(v) >= 4 && strings.Contains(msg, v) {
			return true
		}
	}
	return false
}
