package valkey

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/driver"
)

// rawStore returns every byte the store behind b holds, read around the
// driver for conformance.Harness.Raw: its own client (not the driver's)
// SCANs every master for the backend's key prefix and appends each key's
// name and every value it holds, whatever its type. (Not DUMP: its RDB
// payload may compress values, hiding what the scan looks for.)
func rawStore(t testing.TB, be driver.Backend) []byte {
	t.Helper()
	var out bytes.Buffer
	scanStore(t, be, func(ctx context.Context, c *redis.Client, key string) ([]byte, error) {
		var node bytes.Buffer
		err := rawKey(ctx, c, key, &node)
		return node.Bytes(), err
	}, func(b []byte) { out.Write(b) })
	return out.Bytes()
}

// storeKeys returns the name of every key the store behind be holds, in
// any order, read around the driver as rawStore reads.
func storeKeys(t testing.TB, be driver.Backend) []string {
	t.Helper()
	var keys []string
	scanStore(t, be, func(_ context.Context, _ *redis.Client, key string) ([]byte, error) {
		return []byte(key), nil
	}, func(b []byte) { keys = append(keys, string(b)) })
	return keys
}

// scanStore SCANs every master for be's key prefix with a client of its
// own and hands read's result for each key to collect (called under a
// lock: ForEachMaster reads the masters concurrently).
func scanStore(t testing.TB, be driver.Backend, read func(ctx context.Context, c *redis.Client, key string) ([]byte, error), collect func([]byte)) {
	t.Helper()
	b, ok := be.(*Backend)
	if !ok {
		t.Fatalf("Raw: %T is not a *valkey.Backend", be)
	}
	ctx := context.Background()
	var mu sync.Mutex
	scan := func(ctx context.Context, c *redis.Client) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, b.prefix+"*", 1000).Result()
			if err != nil {
				return err
			}
			for _, k := range keys {
				v, err := read(ctx, c, k)
				if err != nil {
					return err
				}
				mu.Lock()
				collect(v)
				mu.Unlock()
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	var err error
	switch c := b.client.(type) {
	case *redis.ClusterClient:
		own := redis.NewClusterClient(c.Options())
		defer own.Close()
		err = own.ForEachMaster(ctx, scan)
	case *redis.Client:
		own := redis.NewClient(c.Options())
		defer own.Close()
		err = scan(ctx, own)
	default:
		err = fmt.Errorf("client %T", c)
	}
	if err != nil {
		t.Fatalf("Raw: %v", err)
	}
}

// rawKey appends key and its values to out.
func rawKey(ctx context.Context, c *redis.Client, key string, out *bytes.Buffer) error {
	typ, err := c.Type(ctx, key).Result()
	if err != nil {
		return err
	}
	var vals []string
	switch typ {
	case "none": // expired or deleted since the scan
	case "string":
		v, err := c.Get(ctx, key).Result()
		if err != nil && err != redis.Nil {
			return err
		}
		vals = []string{v}
	case "hash":
		m, err := c.HGetAll(ctx, key).Result()
		if err != nil {
			return err
		}
		for f, v := range m {
			vals = append(vals, f, v)
		}
	case "list":
		if vals, err = c.LRange(ctx, key, 0, -1).Result(); err != nil {
			return err
		}
	case "set":
		if vals, err = c.SMembers(ctx, key).Result(); err != nil {
			return err
		}
	case "zset":
		zs, err := c.ZRangeWithScores(ctx, key, 0, -1).Result()
		if err != nil {
			return err
		}
		for _, z := range zs {
			vals = append(vals, fmt.Sprint(z.Member), fmt.Sprint(z.Score))
		}
	default:
		return fmt.Errorf("key %s has type %s, which Raw does not read", key, typ)
	}
	out.WriteString(key)
	for _, v := range vals {
		out.WriteByte(0)
		out.WriteString(v)
	}
	out.WriteByte('\n')
	return nil
}
