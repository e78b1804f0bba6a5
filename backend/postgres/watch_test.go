package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// pushDeadline bounds how long a rotation through another Engine may take
// to reach a cache whose TTL is an hour: only a push can make it.
const pushDeadline = 2 * time.Second

var appSeq atomic.Int64

// watched is a schema shared by two Engines, as by two processes: a, whose
// keystore cache (TTL one hour) is under test, and b, which writes. app is
// the application_name of a's connections, to find its listener.
type watched struct {
	a, b  *engine.Engine
	ba    *postgres.Backend
	app   string
	admin string // the schema's plain URL
}

func newWatched(t *testing.T) *watched {
	t.Helper()
	plain := schemaURL(t)
	app := fmt.Sprintf("ff-watch-%d-%d", time.Now().UnixNano()%1e9, appSeq.Add(1))
	migrated := withParam(t, plain, postgres.ParamMigrate, postgres.MigrateAuto)
	w := &watched{ba: openURL(t, withParam(t, migrated, "application_name", app)), app: app, admin: plain}
	w.a = engine.New(w.ba, engine.WithKeystoreCache(time.Hour))
	t.Cleanup(func() { _ = w.a.Close() })
	w.b = engine.New(openURL(t, plain), engine.WithKeystoreCache(time.Hour))
	return w
}

// listener returns the pid of a's LISTEN connection, waiting for it.
func (w *watched) listener(t *testing.T) int32 {
	t.Helper()
	c := connect(t, w.admin)
	var pid int32
	eventually(t, "the LISTEN connection", func() bool {
		err := c.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
WHERE application_name = $1 AND query = 'LISTEN ff_keystore'`, w.app).Scan(&pid)
		return err == nil
	})
	return pid
}

func signKid(t *testing.T, e *engine.Engine) string {
	t.Helper()
	r, err := e.Sign(context.Background(), contracts.SignArgs{Scope: "s", Message: []byte("m")})
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return r.Kid
}

func rotate(t *testing.T, e *engine.Engine, kid string, fill byte) {
	t.Helper()
	r, err := e.RotateAll(context.Background(), contracts.RotateArgs{NewKid: kid, NewSecret: secret(fill), GraceMs: 60_000})
	if err != nil || r.Failed() {
		t.Fatalf("rotate to %s: %+v %v", kid, r, err)
	}
}

// seen rotates through b to kid and returns how long a took to sign with
// it, failing after pushDeadline.
func (w *watched) seen(t *testing.T, kid string, fill byte) time.Duration {
	t.Helper()
	rotate(t, w.b, kid, fill)
	start := time.Now()
	for signKid(t, w.a) != kid {
		if time.Since(start) > pushDeadline {
			t.Fatalf("engine a still signs with the previous kid %v after the rotation to %s (cache TTL 1h)", pushDeadline, kid)
		}
		time.Sleep(100 * time.Microsecond) // the resolution of the measured latency
	}
	return time.Since(start)
}

// Given two Engines on one schema with hour-long caches, a rotation through
// one reaches the other's cache at once; the median latency of 20 is logged.
func TestKeystoreWatchPushesRotation(t *testing.T) {
	w := newWatched(t)
	seed(t, w.b, "kid-0", 1)
	w.listener(t)
	if kid := signKid(t, w.a); kid != "kid-0" {
		t.Fatalf("first sign: %s, want kid-0", kid)
	}
	var lat []time.Duration
	for i := 1; i <= 20; i++ {
		lat = append(lat, w.seen(t, fmt.Sprintf("kid-%d", i), byte(i+1)))
	}
	slices.Sort(lat)
	t.Logf("%s: push invalidation latency over %d rotations: median %.2f ms, max %.2f ms", t.Name(),
		len(lat), ms(lat[len(lat)/2]), ms(lat[len(lat)-1]))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Given a's LISTEN connection is terminated by the server, a rotation made
// right after (while it reconnects) is still seen, and so is a later one.
func TestKeystoreWatchRecoversFromKilledConnection(t *testing.T) {
	w := newWatched(t)
	seed(t, w.b, "kid-a", 1)
	pid := w.listener(t)
	if kid := signKid(t, w.a); kid != "kid-a" {
		t.Fatalf("first sign: %s, want kid-a", kid)
	}
	var ok bool
	if err := connect(t, w.admin).QueryRow(context.Background(), `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend: %v %v", ok, err)
	}
	w.seen(t, "kid-b", 2)
	if again := w.listener(t); again == pid {
		t.Fatalf("the listener's pid is still %d", pid)
	}
	w.seen(t, "kid-c", 3)
}

// Given an Engine that is never closed, closing its backend stops the
// listener (conformance harnesses close backends, not Engines).
func TestKeystoreWatchStopsWithTheBackend(t *testing.T) {
	w := newWatched(t)
	w.listener(t)
	if err := w.ba.Close(); err != nil {
		t.Fatal(err)
	}
	c := connect(t, w.admin)
	eventually(t, "the LISTEN connection to end", func() bool {
		var n int
		err := c.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, w.app).Scan(&n)
		return err == nil && n == 0
	})
}

// Given a rolled-back keystore write, no notification is sent; given one
// in another schema of the database, a's listener ignores it. Both are
// observed through the trigger directly, on a LISTEN of the test's own.
func TestKeystoreNotifyIsTransactionalAndNamesTheSchema(t *testing.T) {
	w := newWatched(t)
	seed(t, w.b, "kid-a", 1)
	ctx := context.Background()
	l := connect(t, w.admin)
	if _, err := l.Exec(ctx, "LISTEN ff_keystore"); err != nil {
		t.Fatal(err)
	}
	c := connect(t, w.admin)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE ff_keys SET installed_at_ms = installed_at_ms`); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	rotate(t, w.b, "kid-b", 2)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := l.WaitForNotification(wctx)
	if err != nil {
		t.Fatalf("no notification for the rotation: %v", err)
	}
	var schema string
	if err := c.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if n.Payload != schema || !strings.HasPrefix(n.Channel, "ff_keystore") {
		t.Fatalf("notification %q %q, want channel ff_keystore and payload %q", n.Channel, n.Payload, schema)
	}
	// One transaction, one notification: the rollback sent none.
	short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if n, err := l.WaitForNotification(short); err == nil {
		t.Fatalf("a second notification %q: the rolled-back write or the rotation notified twice", n.Payload)
	}
}
