package valkey

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Whether the store survives a restart of its servers
// (driver.Capabilities.Persistent; ff serve warns when it does not).
//
// Open asks every master (the server, on a standalone one) for its
// settings, in one pipeline per node, at once:
//
//	CONFIG GET appendonly; CONFIG GET save
//
// A master persists when its append-only file is on (appendonly yes) or
// its RDB save schedule is not empty. When a master refuses CONFIG (an ACL
// without +config, a renamed or disabled command, as on managed services),
// INFO persistence is read instead: aof_enabled:1, or RDB snapshots taken
// since the start (rdb_saves, or one in progress), say that it persists.
// INFO does not show the save schedule, so when it says neither (or is
// refused too) the master is assumed to persist: a warning that may be
// wrong costs more than one that is missing, and the store marker
// (store.go) still turns a loss into store_reset. The store is persistent
// when every master is.

// persistence sources, for tests: how a master's answer was found.
const (
	persistenceConfig  = "config"  // CONFIG GET answered
	persistenceInfo    = "info"    // CONFIG refused; INFO showed persistence
	persistenceAssumed = "assumed" // neither said: assumed to persist
)

// nodePersistence is one master's answer.
type nodePersistence struct {
	persistent bool
	source     string // persistenceConfig, persistenceInfo or persistenceAssumed
}

// readPersistence reports whether every master persists its data.
func (b *Backend) readPersistence(ctx context.Context) bool {
	for _, n := range b.nodesPersistence(ctx) {
		if !n.persistent {
			return false
		}
	}
	return true
}

// nodesPersistence asks every master (at once) how it persists. A master
// that cannot be asked at all is assumed to persist.
func (b *Backend) nodesPersistence(ctx context.Context) []nodePersistence {
	cc, ok := b.client.(*redis.ClusterClient)
	if !ok {
		return []nodePersistence{masterPersistence(ctx, b.client.(*redis.Client))}
	}
	var mu sync.Mutex
	var out []nodePersistence
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		n := masterPersistence(ctx, c)
		mu.Lock()
		out = append(out, n)
		mu.Unlock()
		return nil
	})
	if err != nil || len(out) == 0 {
		return []nodePersistence{{persistent: true, source: persistenceAssumed}}
	}
	return out
}

// masterPersistence asks one master: CONFIG GET, else INFO persistence,
// else assumed.
func masterPersistence(ctx context.Context, c *redis.Client) nodePersistence {
	pipe := c.Pipeline()
	aof := pipe.ConfigGet(ctx, "appendonly")
	save := pipe.ConfigGet(ctx, "save")
	_, _ = pipe.Exec(ctx) // errors are read per command
	aofs, err1 := aof.Result()
	saves, err2 := save.Result()
	if err1 == nil && err2 == nil {
		a, okA := aofs["appendonly"]
		s, okS := saves["save"]
		if okA && okS {
			return nodePersistence{
				persistent: strings.EqualFold(a, "yes") || strings.TrimSpace(s) != "",
				source:     persistenceConfig,
			}
		}
	}
	info, err := c.Info(ctx, "persistence").Result()
	if err == nil && infoPersists(info) {
		return nodePersistence{persistent: true, source: persistenceInfo}
	}
	return nodePersistence{persistent: true, source: persistenceAssumed}
}

// infoPersists reports whether an INFO persistence reply shows that the
// server persists: the append-only file on, or RDB snapshots taken since
// it started or one in progress.
func infoPersists(info string) bool {
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			continue
		}
		switch k {
		case "aof_enabled", "rdb_saves", "rdb_bgsave_in_progress":
			if n > 0 {
				return true
			}
		}
	}
	return false
}
