-- FlowFabric-Go SQLite schema, version 2: the budgets of one suspension's
-- token holders (docs/spec.md §8.3).
--
-- A delivery is checked against three counters, all kept in the rows it
-- already reads and maintained in the transaction that inserts the signal,
-- so no delivery ever scans the signals table:
--   waitpoints.signal_count  (version 1) signals on the waitpoint;
--   executions.signal_count  (version 1) signals on the latest suspension;
--   executions.payload_bytes (here)      payload bytes of the latest
--                                        suspension's signals, the sum of
--                                        length(payload) (bytes, NULL for
--                                        none counting 0).
-- Suspend resets the execution's counters with the new suspension.

ALTER TABLE executions ADD COLUMN payload_bytes INTEGER NOT NULL DEFAULT 0;

-- Suspensions that were already open count the payloads they hold.
UPDATE executions SET payload_bytes = (
    SELECT coalesce(sum(length(CAST(s.payload AS BLOB))), 0)
    FROM signals AS s WHERE s.suspension_id = executions.suspension_id
);
