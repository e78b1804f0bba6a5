package valkey

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Capabilities().Persistent follows the servers' settings, read at Open:
// on private servers of each family started with and without persistence,
// and through a user whom an ACL denies CONFIG (INFO persistence then
// decides, or nothing does and persistence is assumed).
func TestPersistentFromServerSettings(t *testing.T) {
	forEachFamily(t, func(t *testing.T, fam family) {
		for _, c := range []struct {
			name       string
			args       []string
			persistent bool
		}{
			{"none", noPersistence, false},
			{"aof", []string{"--appendonly", "yes", "--save", ""}, true},
			{"rdb", []string{"--appendonly", "no", "--save", "3600 1"}, true},
		} {
			t.Run(c.name, func(t *testing.T) {
				srv := startKV(t, fam, c.args...)
				b := openURL(t, srv.url(4, "persist:"), nil)
				require.Equal(t, c.persistent, b.Capabilities().Persistent)
				require.Equal(t, []nodePersistence{{c.persistent, persistenceConfig}}, b.nodesPersistence(bg))
			})
		}
		for _, c := range []struct {
			name   string
			args   []string
			denied string // the ACL rules of the backend's user after +@all
			source string
		}{
			{"AOFBehindACL", []string{"--appendonly", "yes", "--save", ""}, "-config", persistenceInfo},
			{"NoneBehindACL", noPersistence, "-config", persistenceAssumed},
			{"NoneBehindACLWithoutInfo", noPersistence, "-config -info", persistenceAssumed},
		} {
			t.Run(c.name, func(t *testing.T) {
				srv := startKV(t, fam, c.args...)
				admin := srv.Client()
				defer admin.Close()
				rules := append([]any{"ACL", "SETUSER", "ff", "on", ">ff-password", "~*", "&*", "+@all"}, toAny(strings.Fields(c.denied))...)
				require.NoError(t, admin.Do(bg, rules...).Err())
				raw := strings.Replace(srv.url(4, "acl:"), "redis://", "redis://ff:ff-password@", 1)
				b := openURL(t, raw, nil)
				require.True(t, b.Capabilities().Persistent, "assumed or read from INFO when CONFIG is refused")
				require.Equal(t, []nodePersistence{{true, c.source}}, b.nodesPersistence(bg))
			})
		}
	})
}

// On the shared test servers (standalone and a 3-master cluster) the
// answer is every master's CONFIG, whatever they were started with.
func TestPersistentOnEveryMaster(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		b, _ := openFresh(t, s, 4)
		nodes := b.nodesPersistence(bg)
		require.Equal(t, countMasters(t, b), len(nodes))
		want := true
		each := func(c *redis.Client) {
			aof, err := c.ConfigGet(bg, "appendonly").Result()
			require.NoError(t, err)
			save, err := c.ConfigGet(bg, "save").Result()
			require.NoError(t, err)
			want = want && (aof["appendonly"] == "yes" || strings.TrimSpace(save["save"]) != "")
		}
		if cc, ok := b.client.(*redis.ClusterClient); ok {
			var mu sync.Mutex
			require.NoError(t, cc.ForEachMaster(bg, func(_ context.Context, c *redis.Client) error {
				mu.Lock()
				defer mu.Unlock()
				each(c)
				return nil
			}))
		} else {
			each(b.client.(*redis.Client))
		}
		require.Equal(t, want, b.Capabilities().Persistent)
		for _, n := range nodes {
			require.Equal(t, persistenceConfig, n.source)
		}
	})
}

// INFO persistence shows persistence by the append-only file or by RDB
// snapshots; it never shows the save schedule.
func TestInfoPersists(t *testing.T) {
	require.True(t, infoPersists("# Persistence\r\nrdb_saves:0\r\naof_enabled:1\r\n"))
	require.True(t, infoPersists("rdb_saves:3\r\naof_enabled:0\r\n"))
	require.True(t, infoPersists("rdb_bgsave_in_progress:1\r\n"))
	require.False(t, infoPersists("# Persistence\r\nrdb_saves:0\r\nrdb_bgsave_in_progress:0\r\naof_enabled:0\r\n"))
	require.False(t, infoPersists(""))
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
