-- Suspension state of the Postgres backend. Identifiers use COLLATE "C" so
-- that ordering (list_suspended, claim) is by bytes, as on every backend.

-- One row per remembered execution (state none = no row). The columns
-- suspension_id .. signaled_count describe its latest suspension, the only
-- one that can be open: a waitpoint is open iff its suspension is the
-- execution's latest and the state is 'suspended'.
CREATE TABLE ff_executions (
    execution_id        text COLLATE "C" PRIMARY KEY,
    state               text   NOT NULL CHECK (state IN ('suspended', 'resumed', 'claimed')),
    suspension_id       text   NOT NULL,
    suspended_at_ms     bigint NOT NULL,
    timeout_at_ms       bigint NULL,
    condition           text   NOT NULL CHECK (condition IN ('any', 'all')),
    waitpoint_count     integer NOT NULL,
    signal_count        integer NOT NULL DEFAULT 0, -- signals of the latest suspension
    signaled_count      integer NOT NULL DEFAULT 0, -- its waitpoints holding a signal
    next_seq            bigint NOT NULL DEFAULT 0,  -- delivery sequence, per execution
    lease_id            text   NULL,
    lease_expires_at_ms bigint NULL,
    reason              text   NULL CHECK (reason IN ('signal', 'timeout')),
    CHECK ((state = 'claimed') = (lease_id IS NOT NULL))
) WITH (fillfactor = 70); -- room for HOT updates: fewer index writes, fewer SSI conflicts

-- Oldest first among suspended executions, for list_suspended.
CREATE INDEX ff_executions_suspended ON ff_executions (suspended_at_ms, execution_id) WHERE state = 'suspended';
-- The claimable candidates, so that a claim reads a few index entries
-- however many executions wait: resumed ones oldest first, and suspensions
-- and leases by expiry (the expired ones are few: they get claimed).
CREATE INDEX ff_executions_resumed ON ff_executions (suspended_at_ms, execution_id) WHERE state = 'resumed';
CREATE INDEX ff_executions_timeouts ON ff_executions (timeout_at_ms) WHERE state = 'suspended' AND timeout_at_ms IS NOT NULL;
CREATE INDEX ff_executions_leases ON ff_executions (lease_expires_at_ms) WHERE state = 'claimed';

-- Every waitpoint of every remembered suspension; closed ones stay until the
-- execution completes, so late deliveries answer duplicate or closed.
CREATE TABLE ff_waitpoints (
    waitpoint_id  text COLLATE "C" PRIMARY KEY,
    execution_id  text COLLATE "C" NOT NULL,
    suspension_id text   NOT NULL,
    waitpoint_key text   NOT NULL,
    created_at_ms bigint NOT NULL,
    signal_count  integer NOT NULL DEFAULT 0,
    UNIQUE (suspension_id, waitpoint_key)
) WITH (fillfactor = 70); -- room for HOT updates of signal_count
CREATE INDEX ff_waitpoints_execution ON ff_waitpoints (execution_id);

-- Recorded signals. At most one per (waitpoint_id, idempotency_key): the
-- index makes a second recording impossible whatever the isolation level.
CREATE TABLE ff_signals (
    signal_id       text PRIMARY KEY,
    execution_id    text COLLATE "C" NOT NULL,
    suspension_id   text   NOT NULL,
    waitpoint_id    text COLLATE "C" NOT NULL,
    waitpoint_key   text   NOT NULL,
    seq             bigint NOT NULL,
    name            text   NOT NULL,
    payload         bytea  NULL,   -- compact JSON as given, NULL when none
    idempotency_key text   NULL,   -- NULL when none
    delivered_at_ms bigint NOT NULL,
    UNIQUE (execution_id, seq)
);
CREATE UNIQUE INDEX ff_signals_idempotency ON ff_signals (waitpoint_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX ff_signals_suspension ON ff_signals (suspension_id, seq);

-- Suspend idempotency records: the first outcome, replayed byte for byte.
CREATE TABLE ff_suspend_requests (
    execution_id    text COLLATE "C" NOT NULL,
    idempotency_key text  NOT NULL,
    fingerprint     text  NOT NULL,
    outcome         bytea NOT NULL, -- the SuspendOutcome as JSON
    PRIMARY KEY (execution_id, idempotency_key)
);

-- Never holds rows: a gate locked (LOCK TABLE, before the transaction's
-- snapshot) by claims in EXCLUSIVE mode and by the operations on one
-- execution in ROW EXCLUSIVE mode. Claims queue behind one another and
-- never run alongside a write to an execution, so neither fails to
-- serialize against the other; operations on different executions still
-- run in parallel.
CREATE TABLE ff_claim_lock (id integer PRIMARY KEY);
