-- FlowFabric-Go SQLite schema, version 5: claims of timed-out suspensions
-- and expired leases without sorting them (docs/spec.md §5.5).
--
-- A claim takes the oldest claimable execution by (suspended_at_ms,
-- execution_id). Resumed ones are a range of executions_by_state in that
-- order. The other two kinds depend on the clock: a suspension is
-- claimable once timeout_at_ms < now, a claimed execution once
-- lease_expires_at_ms < now. Version 4 found them through
-- executions_by_timeout and executions_by_lease, ordered by deadline, and
-- sorted every one past its deadline to take the oldest: each claim read
-- and sorted the whole backlog. An index in claim order with the deadline
-- as a filter would instead walk every older suspension that has not timed
-- out yet (many long timeouts older than a few short ones).
--
-- What changes:
--   * executions.overdue: 1 once a claim found the deadline of the
--     execution's state passed (timeout_at_ms when suspended,
--     lease_expires_at_ms when claimed). Each claim first marks the
--     executions whose deadline passed since the last claim: the unmarked
--     ranges (overdue = 0) of executions_by_timeout and executions_by_lease,
--     now keyed by (state, overdue, deadline), so each execution is read and
--     marked once however long it then waits. It then takes the oldest
--     marked one as the first entry of executions_overdue, which holds the
--     marked rows only. Every statement that gives an execution a new state
--     or a new deadline (suspend, claim, extend and release of the lease,
--     resume, cancel) clears the mark. The mark is a cache: the claim still
--     checks the deadline against its own clock.
--   * count_executions reads both values of overdue in executions_by_timeout
--     and executions_by_lease (two ranges each, still index only).
--
-- Rows written before this migration are unmarked; the first claim marks
-- those past their deadline. The two indexes are rebuilt in place, so a
-- suspend, claim or complete writes the same index pages as before.

ALTER TABLE executions ADD COLUMN overdue INTEGER NOT NULL DEFAULT 0 CHECK (overdue IN (0, 1));

DROP INDEX executions_by_timeout;
CREATE INDEX executions_by_timeout ON executions (state, overdue, timeout_at_ms)
    WHERE timeout_at_ms IS NOT NULL;

DROP INDEX executions_by_lease;
CREATE INDEX executions_by_lease ON executions (state, overdue, lease_expires_at_ms)
    WHERE lease_expires_at_ms IS NOT NULL;

-- The marked executions in claim order.
CREATE INDEX executions_overdue ON executions (suspended_at_ms, execution_id)
    WHERE overdue = 1;
