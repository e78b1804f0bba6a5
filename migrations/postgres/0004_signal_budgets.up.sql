-- Bounded cost (docs/spec.md §8.3) and tokens never stored (§3).
--
-- Budgets: a delivery reads what its suspension has used from counters kept
-- in rows, updated in the transaction that records the signal, instead of
-- scanning the signals. ff_waitpoints.signal_count (signals per waitpoint)
-- and ff_executions.signal_count (signals of the latest suspension) exist
-- since 0002; payload_bytes adds the sum of len(payload) of the latest
-- suspension's signals, reset like signal_count when the execution
-- suspends again.
ALTER TABLE ff_executions ADD COLUMN payload_bytes bigint NOT NULL DEFAULT 0;

UPDATE ff_executions e SET payload_bytes = t.bytes
FROM (SELECT suspension_id, sum(octet_length(payload)) AS bytes
      FROM ff_signals WHERE payload IS NOT NULL GROUP BY suspension_id) t
WHERE t.suspension_id = e.suspension_id;

-- Paged observe_signals: each signal's place (0-based) in its suspension's
-- delivery order, the position an observe_signals cursor names, so that a
-- page is a range scan of one index. The unique index replaces
-- ff_signals_suspension (suspension_id, seq): within a suspension the
-- ordinal orders signals as seq does, and a delivery still maintains the
-- same number of indexes.
ALTER TABLE ff_signals ADD COLUMN ordinal bigint;

UPDATE ff_signals s SET ordinal = o.ordinal
FROM (SELECT signal_id, row_number() OVER (PARTITION BY suspension_id ORDER BY seq) - 1 AS ordinal
      FROM ff_signals) o
WHERE o.signal_id = s.signal_id;

ALTER TABLE ff_signals ALTER COLUMN ordinal SET NOT NULL;
CREATE UNIQUE INDEX ff_signals_suspension_ordinal ON ff_signals (suspension_id, ordinal);
DROP INDEX ff_signals_suspension;

-- Tokens never stored: suspend idempotency records keep each waitpoint's
-- kid in place of its token ("token":"<kid>"), and a replay signs the
-- tokens again. Records written before keep the kid and drop the MAC here.
-- Kids are [A-Za-z0-9._-] and identifiers cannot hold a quote, so the
-- pattern matches token values only. The previous forms stay in dead row
-- versions (until VACUUM reuses their space), the WAL and backups.
UPDATE ff_suspend_requests
SET outcome = convert_to(regexp_replace(convert_from(outcome, 'UTF8'),
                                        '"token":"([A-Za-z0-9._-]+):[0-9a-f]{64}"', E'"token":"\\1"', 'g'), 'UTF8')
WHERE convert_from(outcome, 'UTF8') ~ '"token":"[A-Za-z0-9._-]+:[0-9a-f]{64}"';
