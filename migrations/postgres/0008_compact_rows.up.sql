-- Smaller rows and fewer index bytes per suspended execution. Stores at
-- 0007 upgrade in place: ff_executions, ff_waitpoints and ff_signals are
-- rewritten (ALTER COLUMN ... TYPE), under an ACCESS EXCLUSIVE lock held
-- until the migration commits, so every operation on the store waits for
-- it; rows keep their meaning and every envelope stays byte for byte.
--
-- Identifiers the driver generates (driver.NewID: a UUID v4 in canonical
-- lowercase text) are stored as uuid, 16 bytes instead of 37:
-- waitpoint_id and suspension_id, wherever they are kept. uuid_out gives
-- back the canonical lowercase text, the value the driver generated, so
-- what the driver reads is what it wrote. lease_id and signal_id stay text.
-- Callers can send any string as a waitpoint id (or in a cursor), and
-- 'nonsense'::uuid would fail with the value in its error: parameters that
-- come from callers meet uuid columns through ff_uuid, which gives NULL (so
-- no row matches, as with the text columns before) unless the text is a
-- UUID in canonical lowercase form. An inlinable SQL function: it plans as
-- the CASE itself, so an index serves the comparison.
CREATE FUNCTION ff_uuid(text) RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN $1 COLLATE "C" ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN $1::uuid END
$$;

-- Token fingerprints (driver.TokenFingerprint: 16 lowercase hex digits)
-- are stored as the bigint of their 64 bits, 8 bytes instead of 17; these
-- convert between the two forms (NULL stays NULL: waitpoints opened before
-- 0005 have no fingerprint).
CREATE FUNCTION ff_fingerprint_in(text) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ('x' || $1)::bit(64)::bigint
$$;
CREATE FUNCTION ff_fingerprint_out(bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lpad(to_hex($1), 16, '0')
$$;

-- One index of ff_waitpoints instead of two: the unique index on
-- (execution_id, suspension_id, waitpoint_key) finds an execution's
-- waitpoints (complete_execution, forgetting) as ff_waitpoints_execution
-- did, and those of one of its suspensions (describe_execution) as the
-- unique index on (suspension_id, waitpoint_key) did; suspension ids
-- belong to one execution, so it admits what that one admitted.
ALTER TABLE ff_waitpoints DROP CONSTRAINT ff_waitpoints_suspension_id_waitpoint_key_key;
DROP INDEX ff_waitpoints_execution;

-- Empty tag lists are stored as NULL (a '{}' takes 13 bytes of every row);
-- the driver reads coalesce(tags, '{}'). Rows are filled up (fillfactor
-- 100): an update that changes the state, the lease expiry or the
-- suspension (a resuming delivery, a claim, a lease, a suspend) changes a
-- column an index or an index predicate reads, so it was never a HOT update
-- and the room kept for one went unused.
ALTER TABLE ff_executions
    ALTER COLUMN suspension_id TYPE uuid USING suspension_id::uuid,
    ALTER COLUMN tags DROP NOT NULL,
    ALTER COLUMN tags DROP DEFAULT,
    ALTER COLUMN tags TYPE text[] USING nullif(tags, '{}'),
    SET (fillfactor = 100);

-- A waitpoint's payload bytes fit an integer (at most the suspension's
-- budget, 10 MiB at the largest limits), which with the fingerprint as
-- bigint packs the row without alignment padding. Its pages are filled up
-- too: a delivery's update of the counters can be a HOT update only while
-- the row's page has room, so a delivery to a waitpoint on a full page
-- writes two index entries more (measured: no change in deliveries per
-- second), against 30 % more heap for every waitpoint stored.
ALTER TABLE ff_waitpoints
    ALTER COLUMN waitpoint_id TYPE uuid USING waitpoint_id::uuid,
    ALTER COLUMN suspension_id TYPE uuid USING suspension_id::uuid,
    ALTER COLUMN payload_bytes TYPE integer,
    ALTER COLUMN token_fingerprint TYPE bigint USING ff_fingerprint_in(token_fingerprint),
    ALTER COLUMN tags DROP NOT NULL,
    ALTER COLUMN tags DROP DEFAULT,
    ALTER COLUMN tags TYPE text[] USING nullif(tags, '{}'),
    SET (fillfactor = 100);
CREATE UNIQUE INDEX ff_waitpoints_suspension ON ff_waitpoints (execution_id, suspension_id, waitpoint_key);

ALTER TABLE ff_signals
    ALTER COLUMN suspension_id TYPE uuid USING suspension_id::uuid,
    ALTER COLUMN waitpoint_id TYPE uuid USING waitpoint_id::uuid;
