package postgres

import (
	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Group commit of claim_resumed_execution (group.go, docs/decisions.md
// #29). Any claim may take any claimable execution, so the claims of a
// group are one claimBatchSQL for as many executions as there are claims,
// the i-th taken going to the i-th claim in the order they came, each with
// its own lease id and duration: one round trip of BEGIN, the claim
// settings, that statement, claimableLeftSQL and COMMIT. Its WAL flush
// and its round trip are shared, which is most of a lone claim's cost.
//
// A claim the statement had no execution for answers none when nothing
// claimable was left in the group's snapshot after it (claimableLeftSQL);
// otherwise what is left is held by other transactions, and the claim runs
// alone after the group's COMMIT (claimAlone), which waits for them as a
// lone claim does, so that none still means nothing was claimable.

// claimer runs a Backend's claims in groups.
type claimer = grouper[contracts.ClaimArgs, contracts.ClaimOutcome]

// initClaimer makes g run b's claims. Claims name no execution: all are
// "" to the grouper, which then keeps their order and lets any number
// share a group.
func (b *Backend) initClaimer(g *claimer) {
	g.b = b
	g.executionID = func(contracts.ClaimArgs) string { return "" }
	g.alone = b.claimAlone
	g.group = b.claimGroup
}

// claimableLeftSQL reports whether any execution is claimable in the
// statement's snapshot: resumed, or past the earliest timeout or lease
// expiry, read through the gates claimSQL reads (one index entry each,
// whatever the statistics, under the claim settings). After a group's
// claimBatchSQL, the executions it took are claimed and its own locks are
// only on them, so what this finds is held by other transactions.
const claimableLeftSQL = `WITH n AS (SELECT ` + nowMsExpr + ` AS now_ms)
SELECT (SELECT suspended_at_ms FROM ff_executions WHERE state = 'resumed'
        ORDER BY suspended_at_ms, execution_id LIMIT 1) IS NOT NULL
    OR coalesce((SELECT timeout_at_ms FROM ff_executions WHERE state = 'suspended' AND timeout_at_ms IS NOT NULL
                 ORDER BY timeout_at_ms LIMIT 1) < (SELECT now_ms FROM n), false)
    OR coalesce((SELECT lease_expires_at_ms FROM ff_executions WHERE state = 'claimed' AND lease_expires_at_ms IS NOT NULL
                 ORDER BY lease_expires_at_ms LIMIT 1) < (SELECT now_ms FROM n), false)`

// claimGroup runs the claims of calls, in their order, as one pipelined
// transaction and answers each.
func (b *Backend) claimGroup(calls []*groupCall[contracts.ClaimArgs, contracts.ClaimOutcome]) ([]groupAnswer[contracts.ClaimOutcome], error) {
	tx, err := b.beginGroup(calls[0].ctx)
	if err != nil {
		return nil, err
	}
	leases := make([]string, len(calls))
	leaseMs := make([]int64, len(calls))
	for i, c := range calls {
		leases[i] = driver.NewID()
		leaseMs[i] = c.args.LeaseMs
	}
	var (
		claims []contracts.ClaimOutcome
		left   bool
		batch  pgx.Batch
	)
	batch.QueuedQueries = claimOpening().QueuedQueries
	batch.Queue(claimBatchSQL, leases, leaseMs, len(calls)).Query(func(rows pgx.Rows) error {
		return scanClaims(rows, &claims)
	})
	batch.Queue(claimableLeftSQL).QueryRow(func(row pgx.Row) error { return row.Scan(&left) })
	err = tx.commit(&batch, false)
	tx.finish() // before the claims alone, which take connections of their own
	if err != nil {
		return nil, err
	}
	answers := make([]groupAnswer[contracts.ClaimOutcome], len(calls))
	for i := range calls {
		switch {
		case i < len(claims):
			answers[i].out = claims[i]
		case left:
			answers[i].err = errAlone
		default:
			answers[i].out = contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}
		}
	}
	return answers, nil
}
