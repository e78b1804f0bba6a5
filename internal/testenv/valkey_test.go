package testenv

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestKeyPrefix(t *testing.T) {
	a, b := KeyPrefix(t), KeyPrefix(t)
	if a == b {
		t.Fatalf("two prefixes are equal: %s", a)
	}
	for _, p := range []string{a, b} {
		if !strings.HasPrefix(p, "fft:") || !strings.HasSuffix(p, ":") || strings.ContainsAny(p, "{}*?[]\\ ") {
			t.Errorf("prefix %q is not of the form fft:<hex>:", p)
		}
	}
}

// seed writes n keys under prefix, spread over hash slots, and one key
// outside it; it returns the outside key.
func seed(t *testing.T, client redis.UniversalClient, prefix string, n int) string {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if err := client.Set(ctx, fmt.Sprintf("%s{tag%d}:k", prefix, i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	outside := "fft-outside:" + randomHex(8)
	if err := client.Set(ctx, outside, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Del(context.Background(), outside) })
	return outside
}

// countKeys counts the keys under prefix on every master.
func countKeys(t *testing.T, serverURL, prefix string) int {
	t.Helper()
	client, err := newValkeyClient(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var count atomic.Int64 // ForEachMaster visits the masters concurrently
	countOn := func(ctx context.Context, node *redis.Client) error {
		keys, err := node.Keys(ctx, globEscape(prefix)+"*").Result()
		count.Add(int64(len(keys)))
		return err
	}
	ctx := context.Background()
	if cluster, ok := client.(*redis.ClusterClient); ok {
		err = cluster.ForEachMaster(ctx, countOn)
	} else {
		err = countOn(ctx, client.(*redis.Client))
	}
	if err != nil {
		t.Fatal(err)
	}
	return int(count.Load())
}

func testPrefixCleanup(t *testing.T, serverURL string) {
	client, err := newValkeyClient(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })

	t.Run("KeyPrefixCleansKnownServers", func(t *testing.T) {
		var prefix string
		t.Run("Owner", func(t *testing.T) {
			prefix = KeyPrefix(t)
			seed(t, client, prefix, 50)
		})
		if n := countKeys(t, serverURL, prefix); n != 0 {
			t.Fatalf("%d keys under %s remain after the test ended", n, prefix)
		}
	})

	t.Run("ValkeyPrefixLeavesOtherKeys", func(t *testing.T) {
		var prefix, outside string
		t.Run("Owner", func(t *testing.T) {
			prefix = ValkeyPrefix(t, serverURL)
			outside = "fft-outside:" + randomHex(8)
			if err := client.Set(context.Background(), outside, "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			seed(t, client, prefix, 50)
		})
		t.Cleanup(func() { client.Del(context.Background(), outside) })
		if n := countKeys(t, serverURL, prefix); n != 0 {
			t.Fatalf("%d keys under %s remain after the test ended", n, prefix)
		}
		if n, err := client.Exists(context.Background(), outside).Result(); err != nil || n != 1 {
			t.Fatalf("key outside the prefix: exists = %d, err = %v", n, err)
		}
	})

	t.Run("DeleteCountsKeys", func(t *testing.T) {
		prefix := newKeyPrefix()
		seed(t, client, prefix, 20)
		n, err := deleteValkeyPrefix(context.Background(), serverURL, prefix)
		if err != nil || n != 20 {
			t.Fatalf("deleted %d keys (err %v), want 20", n, err)
		}
	})
}

func TestValkeyPrefixCleanup(t *testing.T) {
	t.Run("Standalone", func(t *testing.T) { testPrefixCleanup(t, ValkeyURL(t)) })
	t.Run("Cluster", func(t *testing.T) { testPrefixCleanup(t, ValkeyClusterURL(t)) })
}

func TestParseValkeyURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want valkeyTarget
	}{
		{"redis://127.0.0.1:6380/2", valkeyTarget{addrs: []string{"127.0.0.1:6380"}, db: 2}},
		{"valkey://localhost?partitions=16", valkeyTarget{addrs: []string{"localhost:6379"}}},
		{"rediss://u:p%40ss@h:1", valkeyTarget{tls: true, addrs: []string{"h:1"}, username: "u", password: "p@ss"}},
		{"valkey+cluster://127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", valkeyTarget{cluster: true, addrs: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}}},
		{"valkeys+cluster://:secret@a:1,b:2/?partitions=256", valkeyTarget{cluster: true, tls: true, addrs: []string{"a:1", "b:2"}, password: "secret"}},
	} {
		got, err := parseValkeyURL(tc.url)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseValkeyURL(%q) = %+v, %v; want %+v", tc.url, got, err, tc.want)
		}
	}
	for _, bad := range []string{"localhost:6379", "http://h:1", "redis://a:1,b:2", "valkey+cluster://", "redis://h:1/x"} {
		if _, err := parseValkeyURL(bad); err == nil {
			t.Errorf("parseValkeyURL(%q) accepted", bad)
		}
	}
}
