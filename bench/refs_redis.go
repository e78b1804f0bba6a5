package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisValue is the value of the reference's SET, about a signal row's
// size.
var redisValue = strings.Repeat("v", 100)

// redisSet returns the reference of the Valkey deliver_signal row: a SET
// of a 100-byte value through go-redis, client w writing its own key under
// prefix (deleted with the run's other keys).
func redisSet(c *redis.Client, prefix string) opFunc {
	return func(ctx context.Context, w, _ int) error {
		return c.Set(ctx, prefix+"set:"+strconv.Itoa(w), redisValue, 0).Err()
	}
}

// redisPing returns the reference of the Valkey verify rows: a PING
// through go-redis, the cheapest round trip a client can make.
func redisPing(c *redis.Client) opFunc {
	return func(ctx context.Context, _, _ int) error {
		return c.Ping(ctx).Err()
	}
}
