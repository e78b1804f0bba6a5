package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
	"github.com/flowfabric/flowfabric-go/migrations"
)

// queryPlan returns the details of EXPLAIN QUERY PLAN for query.
func queryPlan(t *testing.T, b *Backend, query string, args ...any) []string {
	t.Helper()
	rows, err := b.db.Query(`EXPLAIN QUERY PLAN `+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	return plan
}

// A list_suspended page filtered by tag is one range read of
// suspension_tags in page order and one executions row per match: it reads
// no row of an execution without the tag, and sorts nothing.
func TestTaggedPageIsARangeRead(t *testing.T) {
	b, _ := openFile(t)
	plan := queryPlan(t, b, selectTaggedPage, "ops", 5, "e", 10)
	require.Equal(t, []string{
		"SEARCH t USING PRIMARY KEY (tag=? AND (suspended_at_ms,execution_id)>(?,?))",
		"SEARCH e USING INDEX sqlite_autoindex_executions_1 (execution_id=?)",
	}, plan)
}

// The suspend that uses pending waitpoints reads only the signals waiting
// on them, and a delivery to a pending waitpoint only the execution's live
// pending waitpoints.
func TestPendingReadsAreRanges(t *testing.T) {
	b, _ := openFile(t)
	join := strings.Join(queryPlan(t, b, joinBuffered, storedID("s")), "\n")
	require.Contains(t, join, "SEARCH signals USING INDEX signals_buffered (waitpoint_id=?)")
	require.Contains(t, join, "SEARCH waitpoints USING INDEX sqlite_autoindex_waitpoints_2 (suspension_id=?)")
	require.NotContains(t, join, "SCAN signals")
	pool := queryPlan(t, b, selectPendingPool, "e", 5)
	require.Equal(t, []string{"SEARCH waitpoints USING INDEX waitpoints_pending (execution_id=? AND expires_at_ms>?)"}, pool)
}

// Each statement is prepared once: a repeated one would leak the first
// prepared handle.
func TestStatementsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range statements() {
		require.False(t, seen[s], "statement listed twice: %s", s)
		seen[s] = true
	}
}

// tagRows counts the rows of suspension_tags naming executionID.
func tagRows(t *testing.T, b *Backend, executionID string) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.QueryRow(`SELECT count(*) FROM suspension_tags WHERE execution_id = ?`, executionID).Scan(&n))
	return n
}

// suspension_tags holds a row per tag exactly while the execution is
// suspended: resume, cancel, a timeout claim and complete remove them.
func TestTagIndexFollowsSuspendedState(t *testing.T) {
	f := harness.Seeded(t)
	b := f.B.(*Backend)
	tagged := func(a contracts.SuspendArgs, tags ...string) contracts.SuspendArgs {
		a.Tags = tags
		return a
	}

	// resume by a signal
	s := f.Suspend(tagged(drivertest.SuspendArgs("e1", "a"), "ops", "eu"))
	require.Equal(t, 2, tagRows(t, b, "e1"))
	f.Deliver(s, 0, "")
	require.Equal(t, 0, tagRows(t, b, "e1"))
	c := f.Claim(time.Minute)

	// cancel, then complete
	again := tagged(drivertest.SuspendArgs("e1", "b"), "ops")
	again.LeaseID = &c.LeaseID
	f.Suspend(again)
	require.Equal(t, 1, tagRows(t, b, "e1"))
	drivertest.Try(f.Eng.CancelSuspension(f.Ctx, contracts.CancelArgs{ExecutionID: "e1"})).Must(t)
	require.Equal(t, 0, tagRows(t, b, "e1"))
	c = f.Claim(time.Minute)
	require.Equal(t, contracts.ReasonCancelled, c.Reason)
	drivertest.Try(f.Eng.CompleteExecution(f.Ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c.LeaseID})).Must(t)

	// a timeout claim
	timeout := int64(1000)
	ta := tagged(drivertest.SuspendArgs("e2", "a"), "ops")
	ta.TimeoutMs = &timeout
	f.Suspend(ta)
	require.Equal(t, 1, tagRows(t, b, "e2"))
	f.Clock.Advance(1001 * time.Millisecond)
	c = f.Claim(time.Minute)
	require.Equal(t, contracts.ReasonTimeout, c.Reason)
	require.Equal(t, 0, tagRows(t, b, "e2"))
	require.Empty(t, drivertest.Try(f.Eng.ListSuspended(f.Ctx, contracts.ListSuspendedArgs{Limit: 10, Tag: "ops"})).Must(t).Executions)
}

// No token is stored: a pending waitpoint and the suspension that uses it
// keep the token's fingerprint, and the file holds no token's MAC.
func TestNoTokenAtRest(t *testing.T) {
	f := harness.Seeded(t)
	b := f.B.(*Backend)
	p := drivertest.Try(f.Eng.CreateWaitpoint(f.Ctx, contracts.CreateWaitpointArgs{
		ExecutionID: "e1", Key: "approve", ExpiresInMs: 60_000, Tags: []string{"mail"}})).Must(t)
	var fingerprint string
	require.NoError(t, b.db.QueryRow(`SELECT token_fingerprint FROM waitpoints WHERE waitpoint_id = ?`, storedID(p.WaitpointID)).Scan(&fingerprint))
	require.Equal(t, driver.TokenFingerprint(p.Token), fingerprint)

	s := f.Suspend(contracts.SuspendArgs{ExecutionID: "e1", Condition: contracts.ConditionAll,
		Waitpoints: []contracts.WaitpointSpec{{Pending: p.WaitpointID}, {Key: "other"}}})
	require.NoError(t, b.Close())
	raw := rawBytes(t, b.Path())
	for _, tok := range []string{p.Token, s.Waitpoints[0].Token, s.Waitpoints[1].Token} {
		mac := tok[strings.IndexByte(tok, ':')+1:]
		require.NotContains(t, string(raw), mac, "the file holds a token's MAC")
	}
}

// rawBytes returns the bytes of a database file and its -wal.
func rawBytes(t *testing.T, path string) []byte {
	t.Helper()
	var raw []byte
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	return raw
}

// createAtVersion makes a database file at path holding the first n
// migrations only, recorded as a binary of that version would have.
func createAtVersion(t *testing.T, path string, n int) *sql.DB {
	t.Helper()
	all, err := migrations.SQLite()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, nil, 0o600)) // it holds secrets: Open refuses a readable file
	db, err := sql.Open("sqlite3", "file:"+path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.Exec(createMigrationsTable)
	require.NoError(t, err)
	for _, m := range all[:n] {
		_, err = db.Exec(m.SQL)
		require.NoError(t, err, "migration %04d", m.Version)
		_, err = db.Exec(insertApplied, m.Version, m.Name, m.Checksum, 1)
		require.NoError(t, err)
	}
	return db
}

// A store written by schema version 2 upgrades in place: its suspensions,
// waitpoints and signals keep working (observe pages, deliveries, the
// condition, claims), list rows show no tags, and get_waitpoint shows the
// fingerprint of tokens handed out before the upgrade as null.
func TestUpgradeFromVersion2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ff.db")
	db := createAtVersion(t, path, 2)
	const (
		at      = startMs - 10_000
		timeout = startMs + 60_000
		s0, s1  = "00000000-0000-4000-8000-0000000000a0", "00000000-0000-4000-8000-0000000000a1"
		w0, wa  = "00000000-0000-4000-8000-0000000000b0", "00000000-0000-4000-8000-0000000000b1"
		wb      = "00000000-0000-4000-8000-0000000000b2"
		sg0     = "00000000-0000-4000-8000-0000000000c0"
		sg1     = "00000000-0000-4000-8000-0000000000c1"
		sg2     = "00000000-0000-4000-8000-0000000000c2"
		lease   = "00000000-0000-4000-8000-0000000000d0"
	)
	// e1 was suspended on s0 (one signal), claimed, and is suspended on s1
	// ("all" of a and b) with two signals on a; e2 is claimed.
	for _, stmt := range []string{
		fmt.Sprintf(`INSERT INTO executions (execution_id, state, suspension_id, condition, suspended_at_ms, timeout_at_ms,
		    waitpoint_count, signal_count, payload_bytes, signal_seq) VALUES ('e1', 'suspended', '%s', 'all', %d, %d, 2, 2, 9, 3)`, s1, at, timeout),
		fmt.Sprintf(`INSERT INTO executions (execution_id, state, suspension_id, condition, suspended_at_ms,
		    waitpoint_count, signal_seq, reason, lease_id, lease_expires_at_ms) VALUES ('e2', 'claimed', '%s', 'any', %d, 1, 0, 'timeout', '%s', %d)`,
			"00000000-0000-4000-8000-0000000000a2", at, lease, startMs+1),
		fmt.Sprintf(`INSERT INTO waitpoints VALUES ('%s', 'e1', '%s', 'old', 0, %d, 1, 1)`, w0, s0, at-5000),
		fmt.Sprintf(`INSERT INTO waitpoints VALUES ('%s', 'e1', '%s', 'a', 0, %d, 0, 2)`, wa, s1, at),
		fmt.Sprintf(`INSERT INTO waitpoints VALUES ('%s', 'e1', '%s', 'b', 1, %d, 0, 0)`, wb, s1, at),
		fmt.Sprintf(`INSERT INTO signals VALUES ('%s', 'e1', '%s', '%s', 'old', 'x', NULL, NULL, %d, 1)`, sg0, s0, w0, at-4000),
		fmt.Sprintf(`INSERT INTO signals VALUES ('%s', 'e1', '%s', '%s', 'a', 'x', CAST('{"n":1}' AS BLOB), 'k1', %d, 2)`, sg1, s1, wa, at+1),
		fmt.Sprintf(`INSERT INTO signals VALUES ('%s', 'e1', '%s', '%s', 'a', 'x', CAST('[2]' AS BLOB), NULL, %d, 3)`, sg2, s1, wa, at+2),
	} {
		_, err := db.Exec(stmt)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, db.Close())

	// when this binary opens it
	clock := conformance.NewClock(startMs)
	b, err := Open(ctx, path, WithClock(clock.Now))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	e := eng(b)
	drivertest.Try(e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')})).Must(t)

	// then get_waitpoint knows no fingerprint, and the latest suspension's timeout
	info := drivertest.Try(e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: "e1", WaitpointID: wa})).Must(t)
	require.Equal(t, `{"execution_id":"e1","waitpoint_id":"`+wa+`","waitpoint_key":"a","status":"open","created_at_ms":`+
		fmt.Sprint(at)+`,"expires_at_ms":`+fmt.Sprint(timeout)+`,"signals":2,"token_fingerprint":null,"tags":[]}`, drivertest.JSONOf(t, info))
	old := drivertest.Try(e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: "e1", WaitpointID: w0})).Must(t)
	require.Equal(t, contracts.WaitpointClosed, old.Status)
	require.Nil(t, old.ExpiresAtMs, "version 2 kept no timeout of earlier suspensions")

	// and observe pages the suspension's signals in order
	p1 := drivertest.Try(e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "e1", Limit: 1})).Must(t)
	require.Equal(t, sg1, p1.Signals[0].SignalID)
	require.NotNil(t, p1.NextCursor)
	p2 := drivertest.Try(e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "e1", Limit: 1, Cursor: *p1.NextCursor})).Must(t)
	require.Equal(t, sg2, p2.Signals[0].SignalID)
	require.Nil(t, p2.NextCursor)

	// and list_suspended shows it without tags
	l := drivertest.Try(e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 10})).Must(t)
	require.Equal(t, `{"executions":[{"execution_id":"e1","suspension_id":"`+s1+`","suspended_at_ms":`+fmt.Sprint(at)+
		`,"timeout_at_ms":`+fmt.Sprint(timeout)+`,"waitpoints":2,"tags":[]}],"next_cursor":null}`, drivertest.JSONOf(t, l))

	// and a delivery to b, with the token handed out before the upgrade, resumes it
	secret := drivertest.Secret('a')
	tok := driver.SignToken("k1", secret, driver.WaitpointInput("k1", "e1", wb, "b", at))
	d := drivertest.Try(e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e1", WaitpointID: wb, Token: tok, Name: "y"})).Must(t)
	require.True(t, d.Resumed)

	// and the claim holds every signal of the suspension in order; e2 keeps its lease
	clock.Advance(time.Millisecond)
	c := drivertest.Try(e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 1000})).Must(t)
	require.Equal(t, "e1", c.ExecutionID)
	ids := []string{}
	for _, s := range c.Signals {
		ids = append(ids, s.SignalID)
	}
	require.Equal(t, []string{sg1, sg2, d.SignalID}, ids)
	ext := drivertest.Try(e.ExtendLease(ctx, contracts.ExtendLeaseArgs{ExecutionID: "e2", LeaseID: lease, LeaseMs: 1000})).Must(t)
	require.Equal(t, clock.NowMs()+1000, ext.LeaseExpiresAtMs)
}
