package valkey

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

func mustParse(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("url.Parse: %v", err)
	}
	return u
}

func TestSchemesRegistered(t *testing.T) {
	got := engine.Schemes()
	for _, s := range Schemes {
		if !slices.Contains(got, s) {
			t.Errorf("scheme %q not registered (have %v)", s, got)
		}
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		raw        string
		cluster    bool
		tls        bool
		partitions int
		prefix     string
		addrs      []string
		password   string
		db         int
	}{
		{raw: "valkey://127.0.0.1:6379", partitions: 256, addrs: []string{"127.0.0.1:6379"}},
		{raw: "redis://:s3cret@h:7000/2?partitions=1&prefix=t1:", partitions: 1, prefix: "t1:", addrs: []string{"h:7000"}, password: "s3cret", db: 2},
		{raw: "valkeys://u:pw@h:6380?partitions=1024", tls: true, partitions: 1024, addrs: []string{"h:6380"}, password: "pw"},
		{raw: "rediss://h", tls: true, partitions: 256, addrs: []string{"h:6379"}},
		{raw: "valkey+cluster://a:1,b:2,c:3?partitions=16", cluster: true, partitions: 16, addrs: []string{"a:1", "b:2", "c:3"}},
		{raw: "redis+cluster://a:1", cluster: true, partitions: 256, addrs: []string{"a:1"}},
		{raw: "redis://a:1,b:2?cluster=true", cluster: true, partitions: 256, addrs: []string{"a:1", "b:2"}},
		{raw: "rediss+cluster://:pw@a:1,b:2", cluster: true, tls: true, partitions: 256, addrs: []string{"a:1", "b:2"}, password: "pw"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			c, err := parseConfig(mustParse(t, tc.raw))
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			if c.cluster != tc.cluster || c.partitions != tc.partitions || c.prefix != tc.prefix {
				t.Fatalf("got cluster=%v partitions=%d prefix=%q", c.cluster, c.partitions, c.prefix)
			}
			var addrs []string
			var password string
			var tls bool
			if c.cluster {
				addrs, password, tls = c.clustered.Addrs, c.clustered.Password, c.clustered.TLSConfig != nil
			} else {
				addrs, password, tls = []string{c.standalone.Addr}, c.standalone.Password, c.standalone.TLSConfig != nil
				if c.standalone.DB != tc.db {
					t.Errorf("db %d, want %d", c.standalone.DB, tc.db)
				}
			}
			if !slices.Equal(addrs, tc.addrs) || password != tc.password || tls != tc.tls {
				t.Errorf("got addrs %v tls %v (password set %v), want %v tls %v", addrs, tls, password != "", tc.addrs, tc.tls)
			}
			if tc.password != "" && strings.Contains(c.redacted, tc.password) {
				t.Errorf("redacted URL %q shows the password", c.redacted)
			}
		})
	}
}

func TestParseConfigRejects(t *testing.T) {
	for _, tc := range []struct{ raw, field string }{
		{"valkey://h?partitions=0", OptionPartitions},
		{"valkey://h?partitions=1025", OptionPartitions},
		{"valkey://h?partitions=x", OptionPartitions},
		{"valkey://h?prefix=a{b}", OptionPrefix},
		{"valkey://h?cluster=maybe", OptionCluster},
		{"valkey://h?wait_replicas=17", OptionWaitReplicas},
		{"valkey://h?wait_replicas=-1", OptionWaitReplicas},
		{"valkey://h?wait_replicas=one", OptionWaitReplicas},
		{"valkey://h?wait_replicas=1&wait_replicas=2", OptionWaitReplicas},
		{"valkey://h?wait_timeout=0s", OptionWaitTimeout},
		{"valkey://h?wait_timeout=500us", OptionWaitTimeout},
		{"valkey://h?wait_timeout=61s", OptionWaitTimeout},
		{"valkey://h?wait_timeout=100", OptionWaitTimeout},                                // a duration needs its unit
		{"valkey://h?wait_replicas=1&wait_timeout=4600ms", OptionWaitTimeout},             // read_timeout is 5s by default
		{"valkey://h?wait_replicas=1&wait_timeout=2s&read_timeout=2s", OptionWaitTimeout}, // WAIT's reply would come too late
		{"valkey+cluster://a:1,b:2?wait_replicas=1&wait_timeout=1s&read_timeout=1s", OptionWaitTimeout},
		{"valkey://:hunter2@a:1,b:2", "backend_url"},
		{"valkey://:hunter2@a:1?bogus=1", "backend_url"},
		{"memcache://h", "backend_url"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			_, err := parseConfig(mustParse(t, tc.raw))
			var ce *contracts.Error
			if !errors.As(err, &ce) || !errors.Is(err, contracts.ErrInvalidInput) || !strings.HasPrefix(ce.Detail, tc.field+":") {
				t.Fatalf("got %v, want invalid_input naming %s", err, tc.field)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

// wait_replicas and wait_timeout are read by the driver (go-redis would
// refuse them), with their defaults, and wait_timeout is checked against
// read_timeout only when the driver waits.
func TestParseWaitOptions(t *testing.T) {
	for _, tc := range []struct {
		raw      string
		replicas int
		timeout  time.Duration
	}{
		{"valkey://h", 0, DefaultWaitTimeout},
		{"valkey://h?wait_replicas=0&wait_timeout=60s", 0, time.Minute},
		{"valkey://h?wait_replicas=2&wait_timeout=250ms", 2, 250 * time.Millisecond},
		{"valkey://h?wait_replicas=16&wait_timeout=4500ms", 16, 4500 * time.Millisecond},
		{"valkey://h?wait_replicas=1&wait_timeout=10s&read_timeout=20s", 1, 10 * time.Second},
		{"valkey://h?wait_replicas=1&wait_timeout=60s&read_timeout=-1", 1, time.Minute},
		{"valkey+cluster://a:1,b:2?wait_replicas=1", 1, DefaultWaitTimeout},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			c, err := parseConfig(mustParse(t, tc.raw))
			require.NoError(t, err)
			require.Equal(t, tc.replicas, c.waitReplicas)
			require.Equal(t, tc.timeout, c.waitTimeout)
		})
	}
}

// An unreachable server is transport / backend_unreachable (retryable), and
// the error never shows the password.
func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, mustParse(t, "redis://:hunter2@127.0.0.1:1/0?dial_timeout=1s&max_retries=0"))
	if !errors.Is(err, contracts.ErrBackendUnreachable) {
		t.Fatalf("got %v, want backend_unreachable", err)
	}
	var ce *contracts.Error
	if !errors.As(err, &ce) || !ce.Retryable || strings.Contains(ce.Error(), "hunter2") {
		t.Fatalf("got %#v", err)
	}
}

func TestInterpretScriptErrors(t *testing.T) {
	err := interpretError(fakeRedisError("FF rotation_conflict current k"))
	if !errors.Is(err, contracts.ErrRotationConflict) || !strings.Contains(err.Error(), `new_kid: "k"`) {
		t.Fatalf("got %v", err)
	}
	if err := interpretError(fakeRedisError("CLUSTERDOWN The cluster is down")); !errors.Is(err, contracts.ErrBackendUnreachable) {
		t.Fatalf("CLUSTERDOWN: got %v", err)
	}
	if err := interpretError(context.Canceled); !errors.Is(err, contracts.ErrCanceled) {
		t.Fatalf("canceled: got %v", err)
	}
}

type fakeRedisError string

func (e fakeRedisError) Error() string { return string(e) }
func (fakeRedisError) RedisError()     {}
