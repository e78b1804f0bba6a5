package reliability

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// killer terminates the server connections of one backend, found by the
// client name the backend's URL sets.
type killer interface {
	// kill terminates every connection of the victim and reports how many.
	kill(ctx context.Context) (int, error)
}

// victim is a network target prepared for connection kills: url opens the
// victim backend (a fresh store), k kills its connections.
type victim struct {
	url    string
	k      killer
	maxGap time.Duration // the longest pause between two kills
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// newVictim prepares tg for connection kills, or skips t for targets that
// are not reached over a network.
func newVictim(t testing.TB, tg target) victim {
	t.Helper()
	name := randomName("ffrel_")
	switch tg.name {
	case "postgres":
		return victim{url: withParams(t, tg.url(t), "application_name", name), k: newPgKiller(t, name), maxGap: 5 * time.Millisecond}
	case "valkey":
		server := testenv.ValkeyURL(t)
		return victim{url: withParams(t, valkeyURL(t, server, tg.partitions), "client_name", name), k: newValkeyKiller(t, server, name), maxGap: 2 * time.Millisecond}
	case "valkey-cluster":
		server := testenv.ValkeyClusterURL(t)
		return victim{url: withParams(t, valkeyURL(t, server, tg.partitions), "client_name", name), k: newValkeyKiller(t, server, name), maxGap: 2 * time.Millisecond}
	}
	t.Skipf("%s is not reached over a network", tg.name)
	return victim{}
}

// pgKiller runs pg_terminate_backend on the sessions of one application_name.
type pgKiller struct {
	mu   sync.Mutex
	conn *pgx.Conn
	app  string
}

func newPgKiller(t testing.TB, app string) *pgKiller {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, testenv.PostgresURL(t))
	if err != nil {
		t.Fatalf("admin connection: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return &pgKiller{conn: c, app: app}
}

// pgTerminate terminates one session, chosen at random, of those whose
// application_name is $1 and that are in the middle of something (running
// a statement or inside a transaction): idle pooled connections are left
// alone, so the kills land inside operations.
const pgTerminate = `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM (
  SELECT pid FROM pg_stat_activity
  WHERE application_name = $1 AND pid <> pg_backend_pid() AND state <> 'idle'
  ORDER BY random() LIMIT 1) victim`

func (k *pgKiller) kill(ctx context.Context) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var n int
	err := k.conn.QueryRow(ctx, pgTerminate, k.app).Scan(&n)
	return n, err
}

// valkeyKiller runs CLIENT KILL ID on every node for the clients named
// name (CLIENT KILL has no name filter in Redis 7.0: CLIENT LIST finds them).
type valkeyKiller struct {
	nodes []*redis.Client
	name  string
}

func newValkeyKiller(t testing.TB, serverURL, name string) *valkeyKiller {
	scheme, rest, _ := strings.Cut(serverURL, "://")
	rest, _, _ = strings.Cut(rest, "?")
	hosts, db, _ := strings.Cut(rest, "/")
	k := &valkeyKiller{name: name}
	for _, h := range strings.Split(hosts, ",") {
		u := "redis://" + h
		if !strings.Contains(scheme, "cluster") && db != "" {
			u += "/" + db
		}
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Fatalf("admin client for %s: %v", h, err)
		}
		c := redis.NewClient(opt)
		t.Cleanup(func() { _ = c.Close() })
		k.nodes = append(k.nodes, c)
	}
	return k
}

func (k *valkeyKiller) kill(ctx context.Context) (int, error) {
	total := 0
	for _, c := range k.nodes {
		list, err := c.ClientList(ctx).Result()
		if err != nil {
			return total, err
		}
		for _, line := range strings.Split(list, "\n") {
			if !strings.Contains(line, " name="+k.name+" ") {
				continue
			}
			id := ""
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "id="); ok {
					id = v
				}
			}
			if n, err := c.Do(ctx, "CLIENT", "KILL", "ID", id).Int(); err == nil {
				total += n
			}
		}
	}
	return total, nil
}

// killLoop kills the victim's connections every 0 to maxGap until stop is
// closed, and returns how many connections it terminated.
func killLoop(k killer, maxGap time.Duration, stop <-chan struct{}) func() int {
	var kills atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			n, _ := k.kill(ctx)
			cancel()
			kills.Add(int64(n))
			time.Sleep(time.Duration(i%8) * maxGap / 7)
		}
	}()
	return func() int {
		<-done
		return int(kills.Load())
	}
}
