package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// runID is 8 random hex digits naming what one run creates: its databases
// (ffbench_<id>) and its key prefix (ffbench-<id>:).
func runID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// withDatabase returns u naming database db, with the query parameters of
// q added (replacing those of the same name).
func withDatabase(u *url.URL, db string, q url.Values) *url.URL {
	c := withQuery(u, q)
	c.Path = "/" + db
	c.RawPath = ""
	return c
}

// withQuery returns u with the query parameters of q added (replacing
// those of the same name).
func withQuery(u *url.URL, q url.Values) *url.URL {
	c := *u
	v := c.Query()
	for k, vals := range q {
		v[k] = vals
	}
	c.RawQuery = v.Encode()
	return &c
}

// createDatabase creates database name on the server of admin (a URL of
// an existing database on it) and adds a step dropping it to cl. It
// touches no other database.
func createDatabase(ctx context.Context, admin *url.URL, name string, cl *cleanups) error {
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", admin.Redacted(), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %s on %s: %w", name, admin.Redacted(), err)
	}
	cl.add("dropping database "+name, func(ctx context.Context) error { return dropDatabase(ctx, admin, name) })
	return nil
}

// dropDatabase drops database name, ending the sessions still connected
// to it (WITH (FORCE), PostgreSQL 13 and later).
func dropDatabase(ctx context.Context, admin *url.URL, name string) error {
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", admin.Redacted(), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// postgresVersion returns "PostgreSQL 15.14" for the server of u.
func postgresVersion(ctx context.Context, u *url.URL) (string, error) {
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return "", fmt.Errorf("connecting to %s: %w", u.Redacted(), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "", err
	}
	return "PostgreSQL " + strings.Fields(v)[0], nil
}

// valkeyEngineURL is u with the engine's prefix option set, so that every
// key the engine writes starts with prefix.
func valkeyEngineURL(u *url.URL, prefix string) string {
	return withQuery(u, url.Values{"prefix": {prefix}}).String()
}

// newRedisClient returns a go-redis client for the standalone server of u
// (redis://, rediss://, valkey:// or valkeys://).
func newRedisClient(u *url.URL) (*redis.Client, error) {
	c := *u
	switch c.Scheme {
	case "valkey":
		c.Scheme = "redis"
	case "valkeys":
		c.Scheme = "rediss"
	}
	q := c.Query()
	q.Del("prefix")
	q.Del("partitions")
	c.RawQuery = q.Encode()
	opts, err := redis.ParseURL(c.String())
	if err != nil {
		return nil, fmt.Errorf("%s: not a standalone Redis URL", u.Redacted()) // go-redis' error may quote the password
	}
	return redis.NewClient(opts), nil
}

// deletePrefix deletes every key starting with prefix (SCAN and UNLINK,
// never FLUSHALL) and returns how many it deleted. prefix must hold no
// glob character.
func deletePrefix(ctx context.Context, c *redis.Client, prefix string) (int64, error) {
	var deleted int64
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return deleted, fmt.Errorf("scanning keys %s*: %w", prefix, err)
		}
		if len(keys) > 0 {
			n, err := c.Unlink(ctx, keys...).Result()
			if err != nil {
				return deleted, fmt.Errorf("deleting keys %s*: %w", prefix, err)
			}
			deleted += n
		}
		if cursor = next; cursor == 0 {
			return deleted, nil
		}
	}
}

// valkeyVersion returns "Valkey 8.0.2" (or "Redis 7.0.15") for the server
// of c, from INFO server.
func valkeyVersion(ctx context.Context, c *redis.Client) (string, error) {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", err
	}
	return parseServerVersion(info), nil
}

// parseServerVersion reads the server's name and version from INFO
// server: valkey_version (Valkey 8) first, else redis_version.
func parseServerVersion(info string) string {
	fields := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	if v := fields["valkey_version"]; v != "" {
		return "Valkey " + v
	}
	if v := fields["redis_version"]; v != "" {
		return "Redis " + v
	}
	return "unknown key-value server"
}
