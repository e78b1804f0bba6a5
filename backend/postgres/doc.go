// Package postgres is the PostgreSQL driver of FlowFabric-Go, on pgx/v5's
// connection pool.
//
// Importing the package registers the schemes "postgres" and "postgresql"
// with engine.Register and engine.RegisterMigrator:
//
//	import _ "github.com/flowfabric/flowfabric-go/backend/postgres"
//
//	eng, err := engine.Open(ctx, "postgres://app@db:5432/app?pool_max_conns=20")
//
// The URL is handed to pgxpool.ParseConfig, so every connection and pool
// setting pgx understands applies (pool_max_conns, sslmode, search_path,
// application_name, ...). Parameters of FlowFabric itself start with "ff_"
// and are removed first:
//
//   - ff_migrate=auto applies pending schema migrations at Open. Without it,
//     Open refuses a database whose schema is behind the binary and names
//     `ff migrate`, which applies them (engine.Migrate).
//   - ff_pooler=transaction says a pooler in transaction mode (PgBouncer's
//     pool_mode=transaction, or the like) stands in front of the server;
//     see "Behind a pooler" below.
//
// The schema lives in migrations/postgres (embedded). Tables are created in
// the first schema of the connection's search_path.
//
// Guarantees: every operation that writes is one transaction. Keystore
// writers (seed, rotate_all, revoke_kid, rewrap) run SERIALIZABLE; the
// operations on one execution (suspend, deliver_signal,
// complete_execution, create_waitpoint, extend_lease, release_execution,
// cancel_suspension) and claims run at READ COMMITTED under explicit
// locks, which order every pair of them that could conflict (below). A
// serialization failure or deadlock (SQLSTATE 40001, 40P01) is retried up
// to 3 attempts in all, after which the operation fails with contention /
// serialization_retry_exhausted (retryable). Reads (sign, verify,
// list_kids, observe_signals, list_suspended, get_waitpoint,
// describe_execution, count_executions) are single statements, so they
// see one snapshot. Time is the server's clock_timestamp(), read once
// per operation inside the deciding transaction or statement, never the
// process clock. The one-current-kid invariant and one signal per
// (waitpoint_id, idempotency_key) are unique indexes of the database. The
// backend has one keystore partition.
//
// Concurrency: each conflicting pair of operations queues on a lock, taken
// before the statements that read what the operation decides on; at READ
// COMMITTED each statement's snapshot is taken after the locks, so a
// waiter reads what its predecessor committed, and nothing fails to
// serialize:
//
//   - seed, rotate_all, revoke_kid and rewrap lock ff_keys (LOCK TABLE ...
//     SHARE ROW EXCLUSIVE, sent with BEGIN): keystore writers of all
//     processes run one at a time. They also lock the gate table
//     ff_claim_lock SHARE, so a keystore change waits for the execution
//     writers in flight and holds back the next ones: each execution
//     writer runs wholly before or wholly after it;
//   - an execution writer passes the gate (ff_claim_lock ROW EXCLUSIVE,
//     in parallel with the others), takes the transaction-scoped advisory
//     lock of its execution_id, so operations on one execution run one at
//     a time (of concurrent deliveries that would each satisfy a count
//     condition exactly one resumes, and a cancel racing a delivery either
//     wins, the delivery answering waitpoint_closed, or finds the
//     execution resumed, not_suspended), and then locks the execution's
//     row FOR NO KEY UPDATE, each as a statement of its own;
//   - claims take no table lock: each locks its candidate rows FOR UPDATE
//     SKIP LOCKED, so concurrent claims take different executions without
//     queueing and skip a row a writer holds (waiting for such rows only
//     when they skipped everything); a writer that comes after a claim
//     waits for its row and reads the claim's result, so an extend or
//     release racing a re-claim of the same lease is decided by whichever
//     locks the row first. Each kind of claimable execution has a partial
//     index in claim order (migration 0007), walked from the oldest entry
//     under SET LOCAL planner settings that price sorts out, so a claim
//     reads a few index entries whatever the statistics (fresh, stale or
//     none);
//   - round trips: these transactions are pipelined (pgx batches): BEGIN
//     and the locks travel with the operation's first read, and its writes
//     with COMMIT, so suspend and deliver_signal cost two round trips,
//     complete_execution, a claim and a batch claim (claim_resumed_executions:
//     one statement takes up to max executions) one. The claimable notification of a
//     resuming delivery, a cancel or a release is sent right after the
//     COMMIT, in the same round trip, by a transaction of its own without
//     durable write: NOTIFY serializes the commits of all notifying
//     transactions of the database, which would otherwise queue every
//     resuming delivery behind the previous one's WAL flush;
//   - group commit of completes, deliveries and suspends: concurrent
//     complete_execution calls, and concurrent deliver_signal and suspend
//     calls of distinct executions, share one transaction (the ones
//     waiting when it begins; a lone call runs at once), each deciding as
//     it would alone, the executions locked in execution_id order, every
//     answer given after COMMIT; a group the server fails (a lock wait
//     past 1 s, a deadlock) runs again one call per transaction (group.go,
//     complete_group.go, deliver_group.go, suspend_group.go).
//
// Behind a pooler: a transaction pooler gives each transaction a server
// session of its own choosing, so nothing may outlive a transaction. With
// ff_pooler=transaction the driver
//
//   - runs statements in pgx's exec mode (unnamed statements, no statement
//     cache) unless the URL sets default_query_exec_mode: the statement
//     cache's named prepared statements would be missing, or already
//     exist, on the next transaction's session. Pipelines work as without
//     a pooler: a pooler hands the session back only when the transaction
//     ends;
//   - does not LISTEN: WatchKeystore answers unsupported, and an Engine's
//     keystore cache sees a change made elsewhere within its TTL
//     (engine.DefaultKeystoreCacheTTL, 1 s) instead of within milliseconds.
//
// The locks are the same in both modes (and their keys the same as in
// earlier versions, which took the execution's lock as a session lock), so
// processes with and without a pooler, and of either version, on one
// database exclude one another. A pooler does not pass search_path on:
// give each store a database, or set the role's search_path (ALTER ROLE
// ... SET). Migrations run in one transaction under a transaction-scoped
// lock and work through the pooler too.
//
// Version 2 of the waitpoint lifecycle (docs/spec.md §8.1, §8.2, §8.4–§8.6;
// migration 0005; the Backend is a driver.Lifecycle). An execution
// remembered in state none has an ff_executions row whose state is the
// empty string (no suspension columns until its first suspend, or the
// closed suspension of an already_satisfied suspend). A pending waitpoint is an ff_waitpoints
// row with expires_at_ms and no suspension; signals delivered to it are
// ff_signals rows without suspension and ordinal, which the suspend that
// uses it hands to its suspension in delivery order (seq), with the
// waitpoints' counters as the suspension's starting budget. Each waitpoint
// keeps driver.TokenFingerprint of the token last handed out (at
// create_waitpoint and again at suspend), its tags, and its suspension's
// timeout, which get_waitpoint reads; rows from before 0005 have no
// fingerprint (null) and no tags. Count conditions are stored as
// "count:n" and decided by driver.ConditionHolds. list_suspended by tag
// reads ff_suspension_tags, which lists a suspended execution under each
// tag of its suspension (index (tag, suspended_at_ms, execution_id)) and
// which suspend fills and the resuming delivery, cancel, claim and
// complete empty, so a filtered page reads only matching rows.
//
// Operators' views (docs/spec.md §8.9; the Backend is a driver.Inspector):
// describe_execution is one statement reading the execution's row by
// primary key, the waitpoints of its latest suspension by the unique index
// on (execution_id, suspension_id, waitpoint_key) and its live unused pending waitpoints
// by ff_waitpoints_pending, never the waitpoints of earlier suspensions;
// count_executions is one statement, count(*) FILTER per field over one
// scan of ff_executions at one reading of the clock, no row leaving the
// server. Neither writes or locks anything, and both work behind a
// transaction pooler as they are.
//
// Bounded cost (docs/spec.md §8.3): a delivery reads the budget its
// suspension has used from counters kept in rows (ff_waitpoints.signal_count,
// and ff_executions.signal_count and payload_bytes for the latest
// suspension), in the statement that loads everything else it decides on,
// and the statement that records the signal updates them; it never scans
// signals. The execution's lock makes the read and the update of one
// delivery follow those of the previous one. Each signal carries its
// ordinal in its suspension's delivery order, the position an
// observe_signals cursor names, so a page is one range of the unique index
// on (suspension_id, ordinal), read limit+1 entries at a time.
//
// Tokens at rest: no table holds a waitpoint token or its MAC. A suspend
// idempotency record keeps the outcome with each token replaced by its kid
// (driver.StoredSuspendOutcome); a replay signs the tokens again with that
// kid (driver.ReplaySuspendOutcome), opening its secret only while the kid
// verifies, and answers suspend_replay_expired, writing nothing, once it no
// longer does. Migration 0004 strips the MACs from records written before;
// records with whole tokens (from a process of the previous version) still
// replay. As with secrets, the dead row versions, the WAL and backups keep
// the previous forms until they are gone.
//
// Secrets at rest: the Backend is a driver.SecretSealer. With a keyring
// installed (SetKeyring; engine.OpenBackend installs the one the URL's
// kek_file names) ff_keys.secret holds each secret sealed for its kid and
// partition 0 instead of in plain, and RewrapSecrets re-seals the stored
// secrets under another keyring. The column is bytea, so the longer sealed
// form needs no schema change. A rewrap does not scrub the previous forms:
// dead row versions of ff_keys (until VACUUM reuses their space), the WAL
// and backups still hold them, so a store that held secrets in plain keeps
// them there until those are gone.
//
// Push invalidation: the Backend is a driver.KeystoreWatcher. Migration
// 0003 adds a statement trigger on ff_keys that NOTIFYs channel ff_keystore
// (payload: the schema) at the commit of every keystore write, by any
// process; an Engine with its keystore cache on LISTENs on one dedicated
// connection outside the pool (so pool_max_conns does not count it), which
// reconnects with backoff, and drops its cached snapshots on each
// notification.
//
// Revocation (docs/spec.md §8.7): the Backend is a driver.KidRevoker.
// revoke_kid is one SERIALIZABLE transaction that keeps the kid's row,
// marked revoked (migration 0006) with the expiry now - 1, and sets its
// secret to NULL, so the name is never reused and no form of the secret is
// left in the row; dead row versions, the WAL and backups keep the earlier
// form until they are gone, as after a rewrap. Being a write of ff_keys,
// it is pushed to every keystore cache like a rotation.
package postgres
