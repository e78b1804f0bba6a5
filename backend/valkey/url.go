package valkey

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

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
)

// Partition limits and default (docs/spec.md §4).
const (
	DefaultPartitions = 256
	MaxPartitions     = 1024
)

// config is a parsed backend URL.
type config struct {
	cluster    bool
	partitions int
	prefix     string
	redacted   string // the URL without its password, for messages
	standalone *redis.Options
	clustered  *redis.ClusterOptions
}

// parseConfig reads a valkey:// (or redis://, TLS, cluster) URL. Errors are
// validation / invalid_input naming the option, and show the URL redacted.
func parseConfig(u *url.URL) (config, error) {
	c := config{partitions: DefaultPartitions, redacted: driver.RedactedURL(u)}
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
	return c, c.clientOptions(u, tls, hosts, q)
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
	q.Del(OptionPartitions)
	q.Del(OptionPrefix)
	q.Del(OptionCluster)
	return nil
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
