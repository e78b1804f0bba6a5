package sqlite

import (
	"context"
	"database/sql"

	"github.com/flowfabric/flowfabric-go/kek"
)

// txn is one transaction together with the backend's prepared statements
// and keyring: a query prepared at Open runs as that statement (compiled
// once per connection), any other query is compiled on the spot; secrets
// are sealed and opened with ring (nil: stored in plain).
type txn struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	ring  *kek.Keyring
}

func (q txn) stmt(query string) *sql.Stmt {
	if s, ok := q.stmts[query]; ok {
		return q.tx.StmtContext(q.ctx, s)
	}
	return nil
}

func (q txn) exec(query string, args ...any) (sql.Result, error) {
	if s := q.stmt(query); s != nil {
		return s.ExecContext(q.ctx, args...)
	}
	return q.tx.ExecContext(q.ctx, query, args...)
}

func (q txn) query(query string, args ...any) (*sql.Rows, error) {
	if s := q.stmt(query); s != nil {
		return s.QueryContext(q.ctx, args...)
	}
	return q.tx.QueryContext(q.ctx, query, args...)
}

func (q txn) queryRow(query string, args ...any) *sql.Row {
	if s := q.stmt(query); s != nil {
		return s.QueryRowContext(q.ctx, args...)
	}
	return q.tx.QueryRowContext(q.ctx, query, args...)
}

// statements are the queries prepared at Open, on the writer and on the
// reader handle. They need the schema, so they are prepared after migrating.
func statements() []string {
	s := []string{
		selectKeys, deleteKey, updateKeyExpiry, insertKey, revokeKey,
		selectExec, selectSuspendRecord, insertSuspendRecord, upsertSuspended, recordSatisfied,
		insertWaitpoint, useWaitpoint, joinBuffered, insertSuspensionTags,
		selectWaitpoint, selectDuplicate, insertSignal, selectPendingPool, countSignal, countExecSignal,
		countBufferedSignal, countSignaled, countExecSignalResume, closeWaitpoints, deleteSuspensionTags, selectSignals, selectSignalPage,
		selectSuspendedPage, selectTaggedPage, markOverdue, selectClaimable, claimExec,
		rememberPending, insertPendingWaitpoint, selectWaitpointInfo, setLease, cancelExec,
		selectDescribedExec, selectDescribedWaitpoints, countExecutions,
		groupSavepoint, groupRelease, groupRollback,
	}
	return append(s, forgetExecution...)
}

// prepare prepares statements on db. On the writer handle (one connection)
// this must run before any transaction holds that connection.
func prepare(ctx context.Context, db *sql.DB) (map[string]*sql.Stmt, error) {
	m := make(map[string]*sql.Stmt)
	for _, query := range statements() {
		s, err := db.PrepareContext(ctx, query)
		if err != nil {
			closeStmts(m)
			return nil, err
		}
		m[query] = s
	}
	return m, nil
}

func closeStmts(m map[string]*sql.Stmt) {
	for _, s := range m {
		_ = s.Close()
	}
}
