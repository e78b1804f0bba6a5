package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
)

// valkeyImage is the image used when Valkey runs in a container.
const valkeyImage = "redis:7.2-alpine"

// ValkeyURL returns the URL of a standalone Valkey server:
// FF_TEST_VALKEY_URL if set (e.g. redis://127.0.0.1:6380/0), else a container
// started once per process when a Docker engine answers. Otherwise it skips
// t, or fails it under CI=true. Tests share the server: isolate keys with
// KeyPrefix or ValkeyPrefix.
func ValkeyURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvValkeyURL)
	if u == "" {
		if err := dockerAvailable(); err != nil {
			reportMissingServer(t, EnvValkeyURL, err)
		}
		var err error
		if u, err = valkeyContainer(); err != nil {
			t.Fatalf("testenv: start Valkey container: %v", err)
		}
	}
	rememberValkey(u)
	return u
}

// valkeyContainer starts one Valkey container per process.
var valkeyContainer = sync.OnceValues(func() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := tcredis.Run(ctx, valkeyImage)
	if c != nil {
		rememberContainer(c)
	}
	if err != nil {
		return "", err
	}
	return c.ConnectionString(ctx)
})

// ValkeyClusterURL returns the URL of a Valkey cluster from
// FF_TEST_VALKEY_CLUSTER_URL, of the form
// valkey+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003. There is no
// container fallback: when the variable is unset it skips t, or fails it
// under CI=true. Tests share the cluster: isolate keys with KeyPrefix or
// ValkeyPrefix.
func ValkeyClusterURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvValkeyClusterURL)
	if u == "" {
		reportMissingServer(t, EnvValkeyClusterURL, errNoDockerFallback)
	}
	rememberValkey(u)
	return u
}

// valkeyServers holds every URL ValkeyURL and ValkeyClusterURL handed out in
// this process: the servers KeyPrefix cleans.
var valkeyServers struct {
	mu   sync.Mutex
	urls map[string]bool
}

func rememberValkey(u string) {
	valkeyServers.mu.Lock()
	defer valkeyServers.mu.Unlock()
	if valkeyServers.urls == nil {
		valkeyServers.urls = map[string]bool{}
	}
	valkeyServers.urls[u] = true
}

func knownValkeyServers() []string {
	valkeyServers.mu.Lock()
	defer valkeyServers.mu.Unlock()
	urls := make([]string, 0, len(valkeyServers.urls))
	for u := range valkeyServers.urls {
		urls = append(urls, u)
	}
	sort.Strings(urls)
	return urls
}

// KeyPrefix returns a key prefix unique to this test, "fft:<16 hex>:". It
// holds no '{' or '}', so a driver may append hash-tagged keys to it. When t
// and its subtests finish, the keys under the prefix are deleted from every
// Valkey server this process obtained through ValkeyURL or
// ValkeyClusterURL — the set is read at cleanup time, so the order of the
// calls does not matter:
//
//	prefix := testenv.KeyPrefix(t)
//	backend := open(t, testenv.ValkeyURL(t), prefix)
//
// A test that reaches a server some other way uses ValkeyPrefix.
func KeyPrefix(t testing.TB) string {
	t.Helper()
	prefix := newKeyPrefix()
	t.Cleanup(func() {
		for _, u := range knownValkeyServers() {
			deleteWithCleanupContext(t, u, prefix)
		}
	})
	return prefix
}

// ValkeyPrefix returns a fresh prefix like KeyPrefix whose keys are deleted
// from the server (standalone or cluster) at serverURL when t finishes.
func ValkeyPrefix(t testing.TB, serverURL string) string {
	t.Helper()
	prefix := newKeyPrefix()
	CleanupValkeyPrefix(t, serverURL, prefix)
	return prefix
}

// CleanupValkeyPrefix deletes, when t and its subtests finish, every key that
// starts with prefix on the server (standalone or cluster) at serverURL: it
// SCANs every master and UNLINKs the matches. Failures are reported with
// t.Errorf.
func CleanupValkeyPrefix(t testing.TB, serverURL, prefix string) {
	t.Helper()
	if prefix == "" {
		t.Fatal("testenv: CleanupValkeyPrefix with an empty prefix would delete every key")
	}
	t.Cleanup(func() { deleteWithCleanupContext(t, serverURL, prefix) })
}

func deleteWithCleanupContext(t testing.TB, serverURL, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if _, err := deleteValkeyPrefix(ctx, serverURL, prefix); err != nil {
		t.Errorf("testenv: delete keys %s* on %s: %v", prefix, redact(serverURL), err)
	}
}

func newKeyPrefix() string { return "fft:" + randomHex(8) + ":" }

// deleteValkeyPrefix deletes every key starting with prefix on every master
// of the server at serverURL and returns how many it deleted. Keys are
// unlinked one by one, so keys of different cluster slots never meet in one
// command.
func deleteValkeyPrefix(ctx context.Context, serverURL, prefix string) (int64, error) {
	if prefix == "" {
		return 0, errors.New("empty prefix")
	}
	client, err := newValkeyClient(serverURL)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	var (
		mu      sync.Mutex
		deleted int64
	)
	deleteOn := func(ctx context.Context, node *redis.Client) error {
		n, err := unlinkMatching(ctx, node, globEscape(prefix)+"*")
		mu.Lock()
		deleted += n
		mu.Unlock()
		return err
	}
	if cluster, ok := client.(*redis.ClusterClient); ok {
		err = cluster.ForEachMaster(ctx, deleteOn)
	} else {
		err = deleteOn(ctx, client.(*redis.Client))
	}
	return deleted, err
}

// unlinkMatching SCANs one node for keys matching pattern and unlinks them.
func unlinkMatching(ctx context.Context, node *redis.Client, pattern string) (int64, error) {
	var deleted int64
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return deleted, err
		}
		if len(keys) > 0 {
			pipe := node.Pipeline()
			cmds := make([]*redis.IntCmd, len(keys))
			for i, k := range keys {
				cmds[i] = pipe.Unlink(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return deleted, err
			}
			for _, c := range cmds {
				deleted += c.Val()
			}
		}
		if next == 0 {
			return deleted, nil
		}
		cursor = next
	}
}

// globEscape escapes the characters SCAN MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// valkeyTarget is a parsed Valkey URL.
type valkeyTarget struct {
	cluster  bool
	tls      bool
	addrs    []string
	username string
	password string
	db       int
}

// parseValkeyURL understands redis://, rediss://, valkey://, valkeys:// and
// their +cluster forms (valkey+cluster://h1:p1,h2:p2). Query parameters are
// ignored: they configure drivers, not the test cleanup.
func parseValkeyURL(rawURL string) (valkeyTarget, error) {
	var tgt valkeyTarget
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return tgt, fmt.Errorf("not a Valkey URL: %q", redact(rawURL))
	}
	base, isCluster := strings.CutSuffix(strings.ToLower(scheme), "+cluster")
	switch base {
	case "redis", "valkey":
	case "rediss", "valkeys":
		tgt.tls = true
	default:
		return tgt, fmt.Errorf("unsupported Valkey URL scheme %q", scheme)
	}
	tgt.cluster = isCluster
	rest, _, _ = strings.Cut(rest, "#")
	rest, _, _ = strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		info, err := url.Parse("x://" + authority[:at+1] + "h")
		if err != nil {
			return tgt, fmt.Errorf("bad user info in Valkey URL %q", redact(rawURL))
		}
		tgt.username = info.User.Username()
		tgt.password, _ = info.User.Password()
		authority = authority[at+1:]
	}
	for _, a := range strings.Split(authority, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if !strings.Contains(a, ":") {
			a += ":6379"
		}
		tgt.addrs = append(tgt.addrs, a)
	}
	if len(tgt.addrs) == 0 {
		return tgt, fmt.Errorf("no address in Valkey URL %q", redact(rawURL))
	}
	if len(tgt.addrs) > 1 && !tgt.cluster {
		return tgt, fmt.Errorf("several addresses need a +cluster scheme: %q", redact(rawURL))
	}
	if path != "" {
		if _, err := fmt.Sscanf(path, "%d", &tgt.db); err != nil {
			return tgt, fmt.Errorf("bad database number %q in Valkey URL", path)
		}
	}
	return tgt, nil
}

// newValkeyClient opens a client for the server at rawURL: a
// *redis.ClusterClient for +cluster URLs, a *redis.Client otherwise.
func newValkeyClient(rawURL string) (redis.UniversalClient, error) {
	tgt, err := parseValkeyURL(rawURL)
	if err != nil {
		return nil, err
	}
	var tlsConfig *tls.Config
	if tgt.tls {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if tgt.cluster {
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: tgt.addrs, Username: tgt.username, Password: tgt.password, TLSConfig: tlsConfig,
		}), nil
	}
	return redis.NewClient(&redis.Options{
		Addr: tgt.addrs[0], Username: tgt.username, Password: tgt.password, DB: tgt.db, TLSConfig: tlsConfig,
	}), nil
}
