package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Group commit of suspend (group.go). A group of suspends is one
// transaction of two round trips, as a suspend alone is: first BEGIN, the
// settings, the gate, then for each suspend in execution_id order its
// execution's advisory lock, row lock and suspendLoadSQL; Go then decides
// each suspend on its load exactly as alone (suspendDecide), holding its
// writes; then every suspend's writes and COMMIT. A suspend whose decision
// needs another read (pending waitpoints it names, a replay signed by
// another kid) writes nothing in the group and runs alone after its
// COMMIT, as it would have run after the group. A group holds at most one
// suspend per execution (distinct), so each load sees what the previous
// writer of its execution wrote.

// suspendCall is one suspend call: its arguments and the keyring loaded
// when it was made.
type suspendCall struct {
	args contracts.SuspendArgs
	ring *kek.Keyring
}

// suspender runs a Backend's suspends in groups.
type suspender = grouper[suspendCall, contracts.SuspendOutcome]

// initSuspender makes g run b's suspends.
func (b *Backend) initSuspender(g *suspender) {
	g.b = b
	g.executionID = func(c suspendCall) string { return c.args.ExecutionID }
	g.distinct = true
	g.alone = b.suspendAlone
	g.group = b.suspendGroup
}

// collectTx is the dbtx a member of a group of suspends decides in: it
// holds the member's writes (Exec, SendBatch) for the group's second round
// trip, and answers a read (Query, QueryRow) with errAlone.
type collectTx struct{ queued []*pgx.QueuedQuery }

func (t *collectTx) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	t.queued = append(t.queued, &pgx.QueuedQuery{SQL: sql, Arguments: args})
	return pgconn.CommandTag{}, nil
}

func (t *collectTx) SendBatch(_ context.Context, b *pgx.Batch) pgx.BatchResults {
	for _, q := range b.QueuedQueries {
		t.queued = append(t.queued, &pgx.QueuedQuery{SQL: q.SQL, Arguments: q.Arguments})
	}
	return heldBack{}
}

func (t *collectTx) Query(context.Context, string, ...any) (pgx.Rows, error) { return nil, errAlone }

func (t *collectTx) QueryRow(context.Context, string, ...any) pgx.Row { return errRow{errAlone} }

// suspendGroup runs the suspends of calls, sorted by execution_id and of
// distinct executions, in one pipelined transaction and answers each.
func (b *Backend) suspendGroup(calls []*groupCall[suspendCall, contracts.SuspendOutcome]) ([]groupAnswer[contracts.SuspendOutcome], error) {
	loads := make([]suspendLoad, len(calls))
	tx, err := b.suspends.lockAndLoad(calls, func(i int, batch *pgx.Batch) {
		args := calls[i].args.args
		batch.Queue(suspendLoadSQL, loads[i].loadArgs(args)...).QueryRow(func(row pgx.Row) error {
			return row.Scan(loads[i].dest(args.ExecutionID)...)
		})
	})
	if err != nil {
		return nil, err
	}
	answers := make([]groupAnswer[contracts.SuspendOutcome], len(calls))
	var batch pgx.Batch
	for i, c := range calls {
		var ct collectTx
		out, err := suspendDecide(tx.ctx, &ct, c.args.ring, c.args.args, &loads[i])
		switch {
		case err != nil: // errAlone included: the member runs alone after the group
			answers[i].err = err
		default:
			answers[i].out = out
			batch.QueuedQueries = append(batch.QueuedQueries, ct.queued...)
		}
	}
	err = tx.commit(&batch, false)
	tx.finish() // before the calls alone, which take connections of their own
	if err != nil {
		return nil, err
	}
	return answers, nil
}
