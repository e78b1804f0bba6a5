package postgres_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// rawHolds reports whether raw (rawSchema) holds s as text or as the hex
// of its bytes (a bytea column, such as ff_suspend_requests.outcome).
func rawHolds(raw []byte, s string) bool {
	return bytes.Contains(raw, []byte(s)) || bytes.Contains(raw, []byte(hex.EncodeToString([]byte(s))))
}

// requireNoToken fails when raw holds any of the outcomes' tokens or MACs.
func requireNoToken(t *testing.T, raw []byte, outs ...contracts.SuspendOutcome) {
	t.Helper()
	for _, o := range outs {
		for _, w := range o.Waitpoints {
			kid, mac, ok := strings.Cut(w.Token, ":")
			require.True(t, ok, "token %s", w.Token)
			require.False(t, rawHolds(raw, w.Token), "the schema holds the token of waitpoint %s", w.WaitpointKey)
			require.False(t, rawHolds(raw, mac), "the schema holds the MAC of waitpoint %s (kid %s)", w.WaitpointKey, kid)
		}
	}
}

var twoWaitpoints = []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}

// Given suspends with idempotency keys, replayed, and a re-suspend after a
// claim, then no table holds a waitpoint token or MAC, while the
// idempotency records are there (holding the kid), and the replays answer
// the first outcomes, whose tokens deliver.
func TestSchemaHoldsNoTokenAfterIdempotentSuspends(t *testing.T) {
	// given
	e, plain := newEngine(t)
	seed(t, e, "kid-a", 0x01)
	ctx := context.Background()
	var outs []contracts.SuspendOutcome
	for _, id := range []string{"exec-1", "exec-2"} {
		args := contracts.SuspendArgs{ExecutionID: id, Waitpoints: twoWaitpoints, IdempotencyKey: "idem-" + id}
		first, err := e.Suspend(ctx, args)
		require.NoError(t, err)
		again, err := e.Suspend(ctx, args)
		require.NoError(t, err)
		require.Equal(t, first, again, "replay of %s", id)
		outs = append(outs, first)
	}
	w := outs[0].Waitpoints[1]
	_, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-1", WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"})
	require.NoError(t, err)
	c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
	require.NoError(t, err)
	next, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-1", Waitpoints: twoWaitpoints, IdempotencyKey: "idem-next", LeaseID: &c.LeaseID})
	require.NoError(t, err)
	outs = append(outs, next)

	// when
	raw := rawSchema(t, plain)

	// then
	requireNoToken(t, raw, outs...)
	require.True(t, rawHolds(raw, `"token":"kid-a"`), "positive control: the raw schema shows the stored outcomes")
	for _, o := range outs[1:] {
		w := o.Waitpoints[0]
		out, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: o.ExecutionID, WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"})
		require.NoError(t, err, "the replayed token of %s delivers", o.ExecutionID)
		require.Equal(t, contracts.OutcomeAccepted, out.Outcome)
	}
}

// Suspend replays sign their tokens again with the kid that signed the first
// outcome: within its grace the replay answers the first outcome; once the
// kid is past its grace or collected it answers suspend_replay_expired and
// writes nothing; a record written before tokens stopped being stored
// (whole tokens) replays the same way.
func TestSuspendReplayAcrossRotations(t *testing.T) {
	ctx := context.Background()
	args := contracts.SuspendArgs{ExecutionID: "exec-1", Waitpoints: twoWaitpoints, IdempotencyKey: "idem-1"}
	rotate := func(t *testing.T, e *engine.Engine, kid string, fill byte, graceMs int64) {
		t.Helper()
		r, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: kid, NewSecret: secret(fill), GraceMs: graceMs})
		require.NoError(t, err)
		require.Nil(t, r.Entries[0].Error)
	}
	given := func(t *testing.T) (*engine.Engine, string, contracts.SuspendOutcome) {
		t.Helper()
		e, plain := newEngine(t)
		seed(t, e, "kid-a", 0x01)
		first, err := e.Suspend(ctx, args)
		require.NoError(t, err)
		return e, plain, first
	}
	requireExpired := func(t *testing.T, e *engine.Engine, plain string) {
		t.Helper()
		before := rawSchema(t, plain)
		_, err := e.Suspend(ctx, args)
		require.ErrorIs(t, err, contracts.ErrSuspendReplayExpired)
		var ce *contracts.Error
		require.ErrorAs(t, err, &ce)
		require.Equal(t, contracts.KindState, ce.Kind)
		require.Equal(t, string(before), string(rawSchema(t, plain)), "a replay that expired wrote something")
	}

	t.Run("WithinGrace", func(t *testing.T) {
		e, _, first := given(t)
		rotate(t, e, "kid-b", 0x02, 3_600_000)
		again, err := e.Suspend(ctx, args)
		require.NoError(t, err)
		require.Equal(t, first, again)
		w := again.Waitpoints[0]
		out, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-1", WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"})
		require.NoError(t, err)
		require.Equal(t, contracts.OutcomeAccepted, out.Outcome)
	})
	t.Run("PastGrace", func(t *testing.T) {
		e, plain, _ := given(t)
		rotate(t, e, "kid-b", 0x02, 0)
		time.Sleep(5 * time.Millisecond) // past kid-a's expires_at_ms on the server's clock
		requireExpired(t, e, plain)
	})
	t.Run("Collected", func(t *testing.T) {
		e, plain, _ := given(t)
		rotate(t, e, "kid-b", 0x02, 0)
		time.Sleep(5 * time.Millisecond)
		rotate(t, e, "kid-c", 0x03, 3_600_000) // collects kid-a
		var n int
		require.NoError(t, connect(t, plain).QueryRow(ctx, `SELECT count(*) FROM ff_keys WHERE kid = 'kid-a'`).Scan(&n))
		require.Zero(t, n, "kid-a collected")
		requireExpired(t, e, plain)
	})
	t.Run("WholeTokenRecord", func(t *testing.T) {
		e, plain, first := given(t)
		whole, err := json.Marshal(first) // the form records had before tokens stopped being stored
		require.NoError(t, err)
		tag, err := connect(t, plain).Exec(ctx, `UPDATE ff_suspend_requests SET outcome = $1`, whole)
		require.NoError(t, err)
		require.EqualValues(t, 1, tag.RowsAffected())
		rotate(t, e, "kid-b", 0x02, 3_600_000)
		again, err := e.Suspend(ctx, args)
		require.NoError(t, err)
		require.Equal(t, first, again)
	})
}
