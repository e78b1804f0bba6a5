package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// idSamples are ids in and around the canonical UUID form.
var idSamples = []string{
	"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",  // canonical
	"00000000-0000-0000-0000-000000000000",  // canonical, all zero
	"ffffffff-ffff-ffff-ffff-ffffffffffff",  // canonical, all ones
	"0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9",  // upper case
	"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0F9",  // one upper-case digit
	"0f1e2d3c4b5a49788695a4b3c2d1e0f9",      // no hyphens
	"0f1e2d3c-4b5a-4978-8695a-4b3c2d1e0f9",  // a hyphen out of place
	"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f",   // 35 characters
	"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f90", // 37 characters
	"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0g9",  // not hex
	"{0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f}", // braces
	"------------------------------------",  // hyphens only
	"s1",
	"",
}

// An id is stored as 16 bytes exactly when it is a canonical UUID
// (contracts.ValidateUUID), and reads back as the text it was bound as.
func TestStoredIDRoundTrip(t *testing.T) {
	for _, id := range append(idSamples, driver.NewID(), driver.NewID()) {
		v, err := storedID(id).Value()
		require.NoError(t, err)
		if contracts.ValidateUUID("id", id) == nil {
			require.IsType(t, []byte{}, v, id)
			require.Len(t, v, 16, id)
		} else {
			require.Equal(t, id, v, "a non-canonical id is bound as its text")
		}
		var back string
		require.NoError(t, scanID{&back}.Scan(v))
		require.Equal(t, id, back)
	}
	var n nullID
	require.NoError(t, n.Scan(nil))
	require.Equal(t, nullID{}, n)
	var s string
	require.Error(t, scanID{&s}.Scan(nil))
	require.Error(t, scanID{&s}.Scan([]byte("short")))
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	require.NoError(t, scanID{&s}.Scan(at), "the driver's reading of an RFC 3339 text")
	require.Equal(t, at.Format(time.RFC3339Nano), s)
}

// The backend's ids are stored as 16 bytes in every column that holds
// them, and come back as the canonical text.
func TestIDsAreStoredAsBytes(t *testing.T) {
	f := harness.Seeded(t)
	b := f.B.(*Backend)
	s := f.Suspend(drivertest.SuspendArgs("e1", "a", "b"))
	d := f.Deliver(s, 1, "i1")
	c := f.Claim(time.Minute)
	require.Equal(t, "e1", c.ExecutionID)
	require.Equal(t, s.SuspensionID, c.SuspensionID)
	require.Equal(t, d.SignalID, c.Signals[0].SignalID)
	require.Equal(t, s.Waitpoints[1].WaitpointID, c.Signals[0].WaitpointID)
	for _, col := range []string{
		"executions.suspension_id", "executions.lease_id", "waitpoints.waitpoint_id", "waitpoints.suspension_id",
		"signals.signal_id", "signals.suspension_id", "signals.waitpoint_id",
	} {
		table, column, _ := strings.Cut(col, ".")
		kinds := idKinds(t, b.db, `SELECT typeof(`+column+`), length(`+column+`) FROM `+table)
		require.NotEmpty(t, kinds, col)
		for _, k := range kinds {
			require.Equal(t, "blob16", k, col)
		}
	}
}

// idKinds runs query, which selects a type name and a length per row, and
// returns them as "blob16", "text9", ….
func idKinds(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind string
		var n sql.NullInt64
		require.NoError(t, rows.Scan(&kind, &n))
		out = append(out, fmt.Sprint(kind, n.Int64))
	}
	require.NoError(t, rows.Err())
	return out
}

// Ids that are not canonical UUIDs (a caller that bypasses the Engine's
// validation) are looked up as text: they match no stored id, get the
// answer an unknown id gets, and change nothing.
func TestNonCanonicalIDsMatchNothing(t *testing.T) {
	f := harness.Seeded(t)
	b := f.B.(*Backend)
	s := f.Suspend(drivertest.SuspendArgs("e1", "a"))
	w := s.Waitpoints[0]
	p := drivertest.Try(f.Eng.CreateWaitpoint(f.Ctx, contracts.CreateWaitpointArgs{ExecutionID: "e2", Key: "p", ExpiresInMs: 60_000})).Must(t)
	f.Deliver(f.Suspend(drivertest.SuspendArgs("e3", "a")), 0, "")
	claimed := f.Claim(time.Minute)
	require.Equal(t, "e3", claimed.ExecutionID)
	before := storeDump(t, b)

	unknown := driver.NewID()
	hostile := []string{strings.ToUpper(w.WaitpointID), strings.ReplaceAll(w.WaitpointID, "-", ""), "not-a-uuid", w.WaitpointID + " "}
	ctx := f.Ctx
	deliverErr := func(id string) error {
		_, err := b.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e1", WaitpointID: id, Token: w.Token, Name: "x"})
		return err
	}
	getErr := func(id string) error {
		_, err := b.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: "e2", WaitpointID: id})
		return err
	}
	suspendErr := func(id string) error {
		_, err := b.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "e2", Condition: contracts.ConditionAny,
			Waitpoints: []contracts.WaitpointSpec{{Pending: id}}})
		return err
	}
	leaseErr := func(id string) error {
		_, err := b.ExtendLease(ctx, contracts.ExtendLeaseArgs{ExecutionID: "e3", LeaseID: id, LeaseMs: 1000})
		return err
	}
	for _, op := range []struct {
		name string
		call func(id string) error
		real string
	}{
		{"deliver_signal", deliverErr, w.WaitpointID},
		{"get_waitpoint", getErr, p.WaitpointID},
		{"suspend (pending)", suspendErr, p.WaitpointID},
		{"extend_lease", leaseErr, claimed.LeaseID},
	} {
		t.Run(op.name, func(t *testing.T) {
			want := op.call(unknown)
			require.Error(t, want, "an unknown id")
			for _, id := range append([]string{strings.ToUpper(op.real), strings.ReplaceAll(op.real, "-", "")}, hostile...) {
				// the same error, naming the id it was given
				got := strings.ReplaceAll(op.call(id).Error(), strconv.Quote(id), strconv.Quote(unknown))
				require.Equal(t, want.Error(), got, id)
			}
		})
	}
	require.Equal(t, before, storeDump(t, b), "a non-canonical id changed the store")
}

// storeDump returns every row of the tables of executions, as text.
func storeDump(t *testing.T, b *Backend) string {
	t.Helper()
	var out strings.Builder
	for _, table := range []string{"executions", "waitpoints", "signals", "suspend_idempotency", "suspension_tags"} {
		rows, err := b.db.Query(`SELECT * FROM ` + table + ` ORDER BY 1`)
		require.NoError(t, err)
		cols, err := rows.Columns()
		require.NoError(t, err)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			fmt.Fprintf(&out, "%s %v\n", table, vals)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
	}
	return out.String()
}

// A store written by schema version 5 upgrades in place: the ids it holds
// as canonical UUID text become 16 bytes, by the rule the backend binds
// them with (any other id stays text), and every operation keeps working on
// its suspensions, pending waitpoints, signals and leases: tokens handed
// out before the upgrade deliver, idempotent deliveries answer the signal
// recorded before it, and observe, list, describe, claim and complete see
// the old rows.
func TestUpgradeFromVersion5(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ff.db")
	db := createAtVersion(t, path, 5)
	const (
		at                   = startMs - 10_000
		expires              = startMs + 60_000
		s0, s1, s2           = "3a1f0c52-0b7e-4c1d-9f3e-2a6b5c4d3e20", "3a1f0c52-0b7e-4c1d-9f3e-2a6b5c4d3e21", "3a1f0c52-0b7e-4c1d-9f3e-2a6b5c4d3e22"
		w0, wa, wb           = "7d2e1f60-1c8f-4d2e-8a4f-3b7c6d5e4f30", "7d2e1f60-1c8f-4d2e-8a4f-3b7c6d5e4f31", "7d2e1f60-1c8f-4d2e-8a4f-3b7c6d5e4f32"
		w2, wp               = "7d2e1f60-1c8f-4d2e-8a4f-3b7c6d5e4f33", "7d2e1f60-1c8f-4d2e-8a4f-3b7c6d5e4f34"
		sg0, sg1, sg2, sg3   = "9e3f2a71-2d9a-4e3f-9b5a-4c8d7e6f5a40", "9e3f2a71-2d9a-4e3f-9b5a-4c8d7e6f5a41", "9e3f2a71-2d9a-4e3f-9b5a-4c8d7e6f5a42", "9e3f2a71-2d9a-4e3f-9b5a-4c8d7e6f5a43"
		lease                = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d50"
		legacyS, legacyW     = "s4-legacy", "W4-LEGACY"
		payload1, fingerprnt = `{"n":1}`, "0123456789abcdef"
	)
	// e1 was suspended on s0 (one signal on w0), claimed, and is suspended
	// on s1 ("all" of a and b, tagged ops) with one signal on a (idempotency
	// key i1); e2 is claimed under lease; e3 has a pending waitpoint holding
	// a signal; e4 is suspended on ids that are not canonical UUIDs; e5 has
	// pending waitpoints under every sample id.
	stmts := []string{
		fmt.Sprintf(`INSERT INTO executions (execution_id, state, suspension_id, condition, suspended_at_ms, waitpoint_count,
		    signal_count, payload_bytes, signal_seq, tags) VALUES ('e1', 'suspended', '%s', 'all', %d, 2, 1, 7, 2, '["ops"]')`, s1, at),
		fmt.Sprintf(`INSERT INTO suspension_tags VALUES ('ops', %d, 'e1')`, at),
		fmt.Sprintf(`INSERT INTO waitpoints (waitpoint_id, execution_id, suspension_id, waitpoint_key, position, created_at_ms, closed, signal_count)
		    VALUES ('%s', 'e1', '%s', 'old', 0, %d, 1, 1)`, w0, s0, at-5000),
		fmt.Sprintf(`INSERT INTO waitpoints (waitpoint_id, execution_id, suspension_id, waitpoint_key, position, created_at_ms, signal_count,
		    payload_bytes, token_fingerprint, tags) VALUES ('%s', 'e1', '%s', 'a', 0, %d, 1, 7, '%s', '["ops"]')`, wa, s1, at, fingerprnt),
		fmt.Sprintf(`INSERT INTO waitpoints (waitpoint_id, execution_id, suspension_id, waitpoint_key, position, created_at_ms, tags)
		    VALUES ('%s', 'e1', '%s', 'b', 1, %d, '["ops"]')`, wb, s1, at),
		fmt.Sprintf(`INSERT INTO signals VALUES ('%s', 'e1', '%s', '%s', 'old', 'x', NULL, NULL, %d, 1, 0)`, sg0, s0, w0, at-4000),
		fmt.Sprintf(`INSERT INTO signals VALUES ('%s', 'e1', '%s', '%s', 'a', 'x', CAST('%s' AS BLOB), 'i1', %d, 2, 0)`, sg1, s1, wa, payload1, at+1),

		fmt.Sprintf(`INSERT INTO executions (execution_id, state, suspension_id, condition, suspended_at_ms, waitpoint_count,
		    signal_count, signal_seq, reason, lease_id, lease_expires_at_ms) VALUES ('e2', 'claimed', '%s', 'any', %d, 1, 1, 1, 'signal', '%s', %d)`,
			s2, at-1000, lease, expires),
		fmt.Sprintf(`INSERT INTO waitpoints (waitpoint_id, execution_id, suspension_id, waitpoint_key, position, created_at_ms, closed, signal_count)
		    VALUES ('%s', 'e2', '%s', 'k', 0, %d, 1, 1)`, w2, s2, at-1000),
		fmt.Sprintf(`INSERT INTO signals VALUES ('%s', 'e2', '%s', '%s', 'k', 'x', NULL, NULL, %d, 1, 0)`, sg2, s2, w2, at-900),

		fmt.Sprintf(`INSERT INTO executions (execution_id, state, signal_seq, pending_expires_at_ms) VALUES ('e3', 'none', 1, %d)`, expires),
		fmt.Sprintf(`INSERT INTO waitpoints (waitpoint_id, execution_id, waitpoint_key, created_at_ms, expires_at_ms, signal_count)
		    VALUES ('%s', 'e3', 'p', %d, %d, 1)`, wp, at, expires),
		fmt.Sprintf(`INSERT INTO signals VALUES ('%s', 'e3', NULL, '%s', 'p', 'early', NULL, NULL, %d, 1, NULL)`, sg3, wp, at+5),

		fmt.Sprintf(`INSERT INTO executions (execution_id, state, suspension_id, condition, suspended_at_ms, waitpoint_count)
		    VALUES ('e4', 'suspended', '%s', 'any', %d, 1)`, legacyS, at+1000),
		fmt.Sprintf(`INSERT INTO waitpoints (waitpoint_id, execution_id, suspension_id, waitpoint_key, position, created_at_ms)
		    VALUES ('%s', 'e4', '%s', 'k', 0, %d)`, legacyW, legacyS, at+1000),

		fmt.Sprintf(`INSERT INTO executions (execution_id, state, pending_expires_at_ms) VALUES ('e5', 'none', %d)`, expires),
	}
	for i, id := range idSamples {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO waitpoints (waitpoint_id, execution_id, waitpoint_key, created_at_ms, expires_at_ms)
		    VALUES ('%s', 'e5', 'k%d', %d, %d)`, id, i, at, expires))
	}
	for _, stmt := range stmts {
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
	secret := drivertest.Secret('a')
	drivertest.Try(e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: secret})).Must(t)
	token := func(execution, waitpoint, key string, createdAtMs int64) string {
		return driver.SignToken("k1", secret, driver.WaitpointInput("k1", execution, waitpoint, key, createdAtMs))
	}

	// then canonical UUIDs are stored as their 16 bytes, any other id as its text
	require.Equal(t, []string{"blob16", "blob16", "null0", "text9"},
		idKinds(t, b.db, `SELECT typeof(suspension_id), length(suspension_id) FROM executions WHERE execution_id < 'e5' ORDER BY execution_id`))
	require.Equal(t, []string{"blob16"}, idKinds(t, b.db, `SELECT typeof(lease_id), length(lease_id) FROM executions WHERE lease_id IS NOT NULL`))
	require.Equal(t, []string{"blob16", "blob16", "blob16", "blob16", "blob16", "text9"},
		idKinds(t, b.db, `SELECT typeof(waitpoint_id), length(waitpoint_id) FROM waitpoints WHERE execution_id < 'e5' ORDER BY execution_id, waitpoint_key`))
	require.Equal(t, []string{"blob16", "blob16", "blob16", "blob16"},
		idKinds(t, b.db, `SELECT typeof(signal_id), length(signal_id) FROM signals ORDER BY execution_id, sequence`))
	require.Equal(t, []string{"blob/blob16", "blob/blob16", "blob/blob16", "null/blob16"},
		idKinds(t, b.db, `SELECT typeof(suspension_id) || '/' || typeof(waitpoint_id), length(waitpoint_id) FROM signals ORDER BY execution_id, sequence`))
	for i, id := range idSamples {
		var stored any
		require.NoError(t, b.db.QueryRow(`SELECT waitpoint_id FROM waitpoints WHERE execution_id = 'e5' AND waitpoint_key = ?`,
			fmt.Sprint("k", i)).Scan(&stored))
		want, err := storedID(id).Value()
		require.NoError(t, err)
		require.Equal(t, want, stored, "the migration and the backend store %q alike", id)
	}

	// and get_waitpoint and describe_execution show the old rows
	info := drivertest.Try(e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: "e1", WaitpointID: wa})).Must(t)
	require.Equal(t, `{"execution_id":"e1","waitpoint_id":"`+wa+`","waitpoint_key":"a","status":"open","created_at_ms":`+
		fmt.Sprint(at)+`,"expires_at_ms":null,"signals":1,"token_fingerprint":"`+fingerprnt+`","tags":["ops"]}`, drivertest.JSONOf(t, info))
	desc := drivertest.Try(e.DescribeExecution(ctx, contracts.DescribeExecutionArgs{ExecutionID: "e1"})).Must(t)
	require.Equal(t, s1, *desc.SuspensionID)
	require.Len(t, desc.Waitpoints, 2)
	require.Equal(t, []string{wa, wb}, []string{desc.Waitpoints[0].WaitpointID, desc.Waitpoints[1].WaitpointID})

	// and list_suspended pages them, by tag too
	l := drivertest.Try(e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 10})).Must(t)
	require.Len(t, l.Executions, 2)
	require.Equal(t, [][2]string{{"e1", s1}, {"e4", legacyS}},
		[][2]string{{l.Executions[0].ExecutionID, l.Executions[0].SuspensionID}, {l.Executions[1].ExecutionID, l.Executions[1].SuspensionID}})
	tagged := drivertest.Try(e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 10, Tag: "ops"})).Must(t)
	require.Len(t, tagged.Executions, 1)
	require.Equal(t, s1, tagged.Executions[0].SuspensionID)

	// and observe_signals reads the suspension's signals
	o := drivertest.Try(e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "e1", Limit: 10})).Must(t)
	require.Len(t, o.Signals, 1)
	require.Equal(t, [3]string{sg1, wa, payload1}, [3]string{o.Signals[0].SignalID, o.Signals[0].WaitpointID, string(o.Signals[0].Payload)})

	// and a replayed delivery answers the signal recorded before the upgrade
	dup := drivertest.Try(e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e1", WaitpointID: wa,
		Token: token("e1", wa, "a", at), Name: "x", IdempotencyKey: "i1"})).Must(t)
	require.Equal(t, contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeDuplicate, SignalID: sg1}, dup)

	// and a token handed out before the upgrade delivers, resuming e1
	d := drivertest.Try(e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e1", WaitpointID: wb,
		Token: token("e1", wb, "b", at), Name: "y"})).Must(t)
	require.True(t, d.Resumed)

	// and a suspend takes the pending waitpoint over with its signal
	s3 := drivertest.Try(e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "e3", Condition: contracts.ConditionAll,
		Waitpoints: []contracts.WaitpointSpec{{Pending: wp}, {Key: "q"}}})).Must(t)
	require.Equal(t, contracts.OutcomeSuspended, s3.Outcome)
	require.Equal(t, wp, s3.Waitpoints[0].WaitpointID)
	o3 := drivertest.Try(e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "e3", Limit: 10})).Must(t)
	require.Len(t, o3.Signals, 1)
	require.Equal(t, [2]string{sg3, wp}, [2]string{o3.Signals[0].SignalID, o3.Signals[0].WaitpointID})

	// and the lease taken before the upgrade still holds e2
	drivertest.Try(e.ExtendLease(ctx, contracts.ExtendLeaseArgs{ExecutionID: "e2", LeaseID: lease, LeaseMs: 1000})).Must(t)

	// and ids that are not UUIDs keep working below the Engine, which
	// accepts canonical UUIDs only
	d4 := drivertest.Try(b.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e4", WaitpointID: legacyW,
		Token: token("e4", legacyW, "k", at+1000), Name: "z"})).Must(t)
	require.True(t, d4.Resumed)

	counts := drivertest.Try(e.CountExecutions(ctx, contracts.CountExecutionsArgs{})).Must(t)
	require.Equal(t, contracts.ExecutionCounts{Suspended: 1, Resumed: 2, Claimed: 1}, counts)

	// and claims take them in order with every signal; complete forgets them
	clock.Advance(time.Millisecond)
	c1 := drivertest.Try(e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})).Must(t)
	require.Equal(t, [2]string{"e1", s1}, [2]string{c1.ExecutionID, c1.SuspensionID})
	require.Equal(t, []string{sg1, d.SignalID}, []string{c1.Signals[0].SignalID, c1.Signals[1].SignalID})
	c4 := drivertest.Try(e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})).Must(t)
	require.Equal(t, [2]string{"e4", legacyS}, [2]string{c4.ExecutionID, c4.SuspensionID})
	require.Equal(t, contracts.OutcomeNone, drivertest.Try(e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})).Must(t).Outcome)
	drivertest.Try(e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c1.LeaseID})).Must(t)
	drivertest.Try(e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: "e2", LeaseID: lease})).Must(t)
	require.Zero(t, RowsLeft(t, b, "e1"))
	require.Zero(t, RowsLeft(t, b, "e2"))
	var leftSignals int
	require.NoError(t, b.db.QueryRow(`SELECT count(*) FROM signals WHERE signal_id IN (?, ?, ?)`,
		storedID(sg0), storedID(sg1), storedID(sg2)).Scan(&leftSignals))
	require.Zero(t, leftSignals)
}
