package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Group commit of deliver_signal (group.go). A group of deliveries is one
// transaction of two round trips, as a delivery alone is: first BEGIN, the
// settings, the gate, then for each delivery in execution_id order its
// execution's advisory lock, row lock and deliverLoadSQL; Go then decides
// each delivery on its load exactly as alone (decideDelivery); then every
// delivery's statement, the claimable notification's transaction once
// when any resumes its execution, and COMMIT. A group holds at most one
// delivery per execution (distinct): each load must see what the previous
// delivery to its execution wrote, so a second one waits for the next
// group. Until the second round trip nothing is committed, so a failure of
// the first, whatever it is, leaves the deliveries to run alone.

// deliverer runs a Backend's deliveries in groups.
type deliverer = grouper[deliverCall, contracts.DeliverSignalOutcome]

// initDeliverer makes g run b's deliveries.
func (b *Backend) initDeliverer(g *deliverer) {
	g.b = b
	g.executionID = func(c deliverCall) string { return c.args.ExecutionID }
	g.distinct = true
	g.alone = b.deliverAlone
	g.group = b.deliverGroup
}

// deliverGroup runs the deliveries of calls, sorted by execution_id and
// of distinct executions, in one pipelined transaction and answers each.
func (b *Backend) deliverGroup(calls []*groupCall[deliverCall, contracts.DeliverSignalOutcome]) ([]groupAnswer[contracts.DeliverSignalOutcome], error) {
	loads := make([]deliveryState, len(calls))
	tx, err := b.deliveries.lockAndLoad(calls, func(i int, batch *pgx.Batch) {
		c := calls[i].args
		batch.Queue(deliverLoadSQL, c.loadArgs()...).QueryRow(func(row pgx.Row) error {
			return row.Scan(loads[i].dest(c.token.Kid)...)
		})
	})
	if err != nil {
		return nil, err
	}
	defer tx.finish()
	answers := make([]groupAnswer[contracts.DeliverSignalOutcome], len(calls))
	steps := make([]deliverStep, len(calls))
	var batch pgx.Batch
	notify := false
	for i, c := range calls {
		s := &steps[i]
		*s = decideDelivery(c.args, &loads[i])
		if s.sql == "" {
			answers[i].err = s.refusal
			continue
		}
		notify = notify || s.resumes
		batch.Queue(s.sql, s.args...).QueryRow(func(row pgx.Row) error {
			err := row.Scan(s.dest()...)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			answers[i].out, answers[i].err = s.outcome(err == nil)
			return nil
		})
	}
	if err := tx.commit(&batch, notify); err != nil {
		return nil, err
	}
	return answers, nil
}
