package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Group commit of complete_execution (group.go, docs/decisions.md #29). A
// complete is one statement, so a group of completes is one round trip:
// BEGIN, the settings, the gate, then for each execution in execution_id
// order its advisory lock, its row lock and completeSQL, then COMMIT.
// completeSQL decides without failing (a rejected complete deletes nothing
// and says why). Two completes of one execution may share a group: the
// second finds it gone, as it would alone.

// completer runs a Backend's completes in groups.
type completer = grouper[contracts.CompleteArgs, struct{}]

// initCompleter makes g run b's completes.
func (b *Backend) initCompleter(g *completer) {
	g.b = b
	g.executionID = func(a contracts.CompleteArgs) string { return a.ExecutionID }
	g.alone = func(ctx context.Context, a contracts.CompleteArgs) (struct{}, error) {
		return struct{}{}, b.completeAlone(ctx, a)
	}
	g.group = b.completeGroup
}

// completeGroup runs the completes of calls, sorted by execution_id, in
// one pipelined transaction and answers each one's decision (nil:
// completed).
func (b *Backend) completeGroup(calls []*groupCall[contracts.CompleteArgs, struct{}]) ([]groupAnswer[struct{}], error) {
	tx, err := b.beginGroup(calls[0].ctx)
	if err != nil {
		return nil, err
	}
	defer tx.finish()
	var batch pgx.Batch
	groupOpening(&batch)
	answers := make([]groupAnswer[struct{}], len(calls))
	for i, c := range calls {
		id := c.args.ExecutionID
		queueExecLocks(&batch, id)
		batch.Queue(completeSQL, id, c.args.LeaseID).QueryRow(func(row pgx.Row) error {
			var deleted, exists bool
			if err := row.Scan(&deleted, &exists); err != nil {
				return err
			}
			answers[i].err = completeDecision(id, deleted, exists)
			return nil
		})
	}
	if err := tx.commit(&batch, false); err != nil {
		return nil, err
	}
	return answers, nil
}

// completeDecision is what completeSQL's answer (deleted, remembered)
// means for execution id, as driver.CheckComplete would say it.
func completeDecision(id string, deleted, exists bool) error {
	switch {
	case deleted:
		return nil
	case exists: // remembered, but not claimed under this lease
		return driver.CompleteLeaseMismatch(id)
	}
	return driver.ExecutionNotFound(id)
}

// completeAlone is complete_execution in a transaction of its own under
// the execution's locks (inExecTx), one round trip: completeSQL decides and
// deletes, and COMMIT follows it.
func (b *Backend) completeAlone(ctx context.Context, args contracts.CompleteArgs) error {
	return b.inExecTx(ctx, args.ExecutionID, func(tx *pipeTx) error {
		var deleted, exists bool
		tx.commitWithNext()
		if err := tx.QueryRow(ctx, completeSQL, args.ExecutionID, args.LeaseID).Scan(&deleted, &exists); err != nil {
			return err
		}
		return completeDecision(args.ExecutionID, deleted, exists)
	})
}
