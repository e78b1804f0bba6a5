-- Claims in claim order whatever the planner's statistics (docs/spec.md
-- §5.5). Each branch of a claim takes the oldest candidate of its kind by
-- (suspended_at_ms, execution_id), LIMIT 1. Before, only the resumed branch
-- had an index in that order: the timed-out branch could only walk
-- ff_executions_suspended (every suspended execution, oldest first) and
-- read each row to find one with a timeout, or read every timed-out one
-- through ff_executions_timeouts and sort them; the planner chose the walk
-- on a table it had no statistics for, so each claim read every suspended
-- execution (hundreds of ms at 100,000), and the sort when it had them (tens
-- of ms at 5,000 timed out).
--
-- These hold the candidates of the timed-out and expired-lease branches in
-- claim order, with the expiry as the last key column: a claim walks the
-- suspensions that have a timeout (the claimed executions) from the oldest
-- and checks the expiry in the index entry, reading a row only when it is
-- past. The walk is as long as the suspensions with a timeout (leases) that
-- are older than the oldest timed-out one (expired one) and not past it;
-- the claim reads ff_executions_timeouts (ff_executions_leases), the
-- earliest expiry first, to walk only when at least one is past, so a claim
-- with nothing of that kind to take reads one index entry.
CREATE INDEX ff_executions_timeouts_by_age ON ff_executions (suspended_at_ms, execution_id, timeout_at_ms)
    WHERE state = 'suspended' AND timeout_at_ms IS NOT NULL;
CREATE INDEX ff_executions_leases_by_age ON ff_executions (suspended_at_ms, execution_id, lease_expires_at_ms)
    WHERE state = 'claimed';
