package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// The whole conformance suite, on a fresh schema per scenario.
func TestConformance(t *testing.T) {
	h, opened := harness()
	start := time.Now()
	conformance.Run(t, h)
	s := opened.stats()
	t.Logf("suite: %v; %d transactions committed, %d retries, %d exhausted the retry budget",
		time.Since(start).Round(time.Millisecond), s.Transactions, s.Retries, s.Exhausted)
}

// Given a seeded keystore, when 32 rotations to distinct kids run at once,
// then exactly one kid is current, every rotation that answered "rotated"
// left its kid current or verifying, and none failed: keystore writers
// queue behind a table lock instead of failing to serialize.
func TestConcurrentRotationsLeaveOneCurrentKid(t *testing.T) {
	e, u := newEngine(t)
	seed(t, e, "kid-0", 0x01)
	const n = 32
	var wg sync.WaitGroup
	results := make([]contracts.RotateAllResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = e.RotateAll(context.Background(), contracts.RotateArgs{
				NewKid: fmt.Sprintf("kid-%d", i+1), NewSecret: secret(byte(i + 2)), GraceMs: 3_600_000})
		})
	}
	wg.Wait()
	rotated := map[string]bool{}
	previous := map[string]bool{}
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Fatalf("rotation %d: %v", i+1, errs[i])
		case results[i].Entries[0].Error != nil:
			t.Fatalf("rotation %d: entry error %v", i+1, results[i].Entries[0].Error)
		default:
			o := results[i].Entries[0].Outcome
			rotated[o.NewKid] = true
			if o.PreviousKid == nil || previous[*o.PreviousKid] {
				t.Fatalf("rotation %d: previous_kid %v missing or shared: rotations did not serialize", i+1, o.PreviousKid)
			}
			previous[*o.PreviousKid] = true
		}
	}
	ks, err := e.ListKids(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := ks.Partitions[0]
	if p.CurrentKid == nil || !rotated[*p.CurrentKid] {
		t.Fatalf("current kid %v is not one of the rotated kids", p.CurrentKid)
	}
	if got, want := len(p.Verifying), len(rotated); got != want {
		t.Fatalf("%d verifying kids, want %d (kid-0 and every rotated kid but the current)", got, want)
	}
	var current int
	if err := connect(t, u).QueryRow(context.Background(), `SELECT count(*) FROM ff_keys WHERE expires_at_ms IS NULL`).Scan(&current); err != nil || current != 1 {
		t.Fatalf("%d current rows in ff_keys (%v), want 1", current, err)
	}
	st := e.Backend().(*postgres.Backend).Stats()
	t.Logf("%d of %d rotations committed; %d retries, %d exhausted the budget", len(rotated), n, st.Retries, st.Exhausted)
	if len(rotated) != n {
		t.Fatalf("%d of %d rotations committed", len(rotated), n)
	}
}

// Given a rotation blocked after it has deleted an expired kid, while it
// demotes the current one, when its connection is terminated with
// pg_terminate_backend, then the call fails as transport /
// backend_unreachable, the keystore is exactly as before, and the next call
// (the same rotation) succeeds.
func TestRotationKilledMidwayLeavesKeystoreBefore(t *testing.T) {
	app := fmt.Sprintf("ff_victim_%d", time.Now().UnixNano())
	base := schemaURL(t)
	e := engine.New(openURL(t, withParam(t, withParam(t, base, postgres.ParamMigrate, postgres.MigrateAuto), "application_name", app)))
	ctx := context.Background()
	seed(t, e, "kid-a", 0x01)
	// kid-a becomes verifying with grace 0: expired a millisecond later, so
	// the next rotation deletes it (gc) before demoting kid-b.
	if _, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: "kid-b", NewSecret: secret(2), GraceMs: 0}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	before := dumpKeys(t, base)

	// The blocker holds a share lock on kid-b's row: the rotation's update
	// of kid-b waits for it, after its delete of kid-a ran.
	blocker := connect(t, base)
	if _, err := blocker.Exec(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.Exec(ctx, `SELECT 1 FROM ff_keys WHERE kid = 'kid-b' FOR SHARE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: "kid-c", NewSecret: secret(3), GraceMs: 60_000})
		done <- err
	}()
	admin := connect(t, base)
	var pid int
	eventually(t, "the rotation to wait on the blocker's lock", func() bool {
		err := admin.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock' AND query LIKE 'UPDATE ff_keys%'`, app).Scan(&pid)
		return err == nil
	})
	var ok bool
	if err := admin.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend: %v %v", ok, err)
	}
	err := <-done
	if !errors.Is(err, contracts.ErrBackendUnreachable) {
		t.Fatalf("killed rotation: got %v, want transport / backend_unreachable", err)
	}
	var ce *contracts.Error
	if !errors.As(err, &ce) || !ce.Retryable || errors.Unwrap(ce) == nil {
		t.Fatalf("killed rotation: %#v: want retryable with the native error reachable", err)
	}
	if _, err := blocker.Exec(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if after := dumpKeys(t, base); after != before {
		t.Fatalf("keystore changed by the killed rotation:\nbefore %s\nafter  %s", before, after)
	}
	r, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: "kid-c", NewSecret: secret(3), GraceMs: 60_000})
	if err != nil {
		t.Fatalf("rotation after the kill: %v", err)
	}
	if o := r.Entries[0].Outcome; o == nil || o.Outcome != contracts.RotateRotated || o.GCCount != 1 || *o.PreviousKid != "kid-b" {
		t.Fatalf("rotation after the kill: %+v", r.Entries[0])
	}
}

// dumpKeys renders ff_keys of the schema at rawURL as text; a revoked kid
// (no secret) renders as "revoked" in place of its secret's hash.
func dumpKeys(t *testing.T, rawURL string) string {
	t.Helper()
	var s string
	err := connect(t, rawURL).QueryRow(context.Background(), `SELECT coalesce(string_agg(
		kid || '/' || CASE WHEN revoked THEN 'revoked' ELSE encode(sha256(secret), 'hex') END || '/' || installed_at_ms || '/' ||
		coalesce(expires_at_ms::text, 'current'),
		' ' ORDER BY kid), '') FROM ff_keys`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
