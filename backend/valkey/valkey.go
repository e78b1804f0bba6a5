// Package valkey is the Valkey (and Redis ≥ 7.0) driver of FlowFabric-Go,
// built on go-redis v9. Importing it registers the schemes
//
//	valkey://[user:password@]host:port[/db]     plain
//	valkeys://...                               TLS
//	redis://..., rediss://...                   the same, by their Redis names
//	valkey+cluster://host1:port,host2:port,...  a Redis Cluster (also valkeys+,
//	redis+, rediss+cluster, or ?cluster=true)
//
// with the options partitions (P, default 256, 1–1024), prefix (a key
// namespace, so that tenants and tests can share one server),
// wait_replicas (how many replicas must confirm each write, 0–16, default
// 0: none) and wait_timeout (how long a write waits for them, a Go
// duration from 1ms to 60s, default 1s, at least 500ms shorter than
// read_timeout); every other query parameter goes to go-redis
// (dial_timeout, read_timeout, pool_size, max_redirects, ...). New makes
// a Backend on the application's own go-redis client instead, with the
// same options as functional options (see The application's client).
//
// # Layout and atomicity
//
// Every key is <prefix>ff:{p:N}:..., one hash tag per partition N, so every
// operation on a partition touches one slot and works on a cluster. Each
// per-partition step is one Lua script call (EVALSHA, EVAL on NOSCRIPT),
// atomic on the server and reading the server's clock (TIME) once. HMAC is
// computed in Go: the scripts return the secret, the expiry and the clock in
// the same round trip. Operations over every partition (seed, rotate_all,
// list_kids, list_suspended, count_executions, claim) send one pipeline,
// which costs one round trip per node, not one per partition.
//
// Keys of partition N (every one under the tag {p:N}): keys (the keystore
// hash: current kid, s:<kid> stored secret as lowercase hex, x:<kid> expiry
// of a verifying kid, partitions), store (the store marker, a random id;
// see A store that lost its data), and for an execution E of that partition
// (N = driver.PartitionOf(E, P)): x:E (its state, "" while it is
// remembered in state none, docs/spec.md §8.1, with the latest
// suspension's budget counters nsig and nbytes, docs/spec.md §8.3, its
// condition counter and tags, the per-execution delivery sequence and ver,
// the id of the call that wrote it last, and the waitpoints its latest
// suspend opened: w:<waitpoint_id> = the raw SHA-256 of the token handed
// out for it, its signal count and its key, so that a suspended execution
// is one small listpack-encoded hash), xi:E (suspend idempotency
// records: the fingerprint and the outcome with each token replaced by its
// kid, driver.StoredSuspendOutcome), xw:E and xs:E (the ids of its
// waitpoints and suspensions that have keys of their own), xp:E (its
// pending waitpoints no suspend used yet, scored by expires_at_ms),
// w:<waitpoint_id> (a waitpoint with a hash of its own: a pending one, one
// of an earlier suspension, or any waitpoint a version before the compact
// layout wrote; with the SHA-256 of the token last handed out for it, h,
// whose first 16 hex digits are its driver.TokenFingerprint, and its
// signal count, n; see ff_wp in lua/prelude.lua), wi:<waitpoint_id>
// (delivery idempotency records), pb:<waitpoint_id> (signals buffered on a
// pending waitpoint until a suspend uses it) and sig:<suspension_id>
// (signals in delivery order); with wait_replicas, wait (the partition's
// wait mark, "1"). No key holds a token or a MAC. And the
// indexes: idx:suspended and idx:ready (sorted sets of "<20-digit
// suspended_at_ms>:<execution_id>", score 0, so byte order is the
// contract's (suspended_at_ms, execution_id) order), idx:tag:<tag> (the
// members of idx:suspended whose suspension carries the tag, docs/spec.md
// §8.6, kept by the same scripts) and idx:timers (the same members scored
// by timeout or lease expiry, moved to idx:ready once past); and the count
// indexes, which count_executions reads (docs/spec.md §8.9), each changed
// with what it records by the script that writes it: idx:timeouts (the
// members of idx:suspended whose suspension has a timeout, scored by it),
// idx:resumed (resumed executions) and idx:leases (claimed executions,
// scored by lease expiry; see ff_counted in lua/prelude.lua). On a
// standalone server three more keys let a claim find the oldest claimable
// execution without asking all P partitions (see ff_hint in
// lua/prelude.lua): <prefix>ff:claim-hint names the partitions with
// timers (a sorted set of partition numbers scored by their earliest
// timer, so that a claim promotes the due ones first), and
// <prefix>ff:claim-heads holds, for each partition whose ready index is
// not empty, its oldest ready member (at most that) followed by the
// partition number, by lex, so that its first entry names the partition
// to claim in; <prefix>ff:claim-head maps each partition to its entry.
// The global list indexes <prefix>ff:list and <prefix>ff:list:tag:<tag>
// hold the same for every suspended execution (and each tag), kept by
// the scripts that change the suspended and tag indexes, so that a page
// of list_suspended reads about limit entries whatever the partition
// count (<prefix>ff:list-complete and <prefix>ff:list-fill: see
// lua/list_fill.lua). A cluster has no key outside the partitions'
// slots, so there a claim asks every partition and a list reads each.
//
// Round trips: sign, verify, a page of observe_signals (a range read of
// limit+1 signals from the cursor's position), complete_execution,
// get_waitpoint, extend_lease, release_execution, cancel_suspension,
// describe_execution: one script call. suspend and create_waitpoint: two (read the clock, the
// current kid and the execution, decide with the driver kit and sign in
// Go, then an atomic write that re-checks the kid and the execution's
// version and starts over if either changed); a suspend replay one (the
// read also fetches the record's kid, and the tokens are signed again in
// Go). deliver_signal: one for the token suspend or create_waitpoint
// issued last (its SHA-256 is stored with the waitpoint), budgets checked
// and counters advanced in the same script; any other token takes two
// more (read, MAC check in Go, atomic write re-checking what the read
// saw). seed: three pipelines at most. rotate_all, list_kids,
// count_executions (two ZCARDs and three ZCOUNTs per partition): one
// pipeline, that is one round trip per node. list_suspended (with or
// without a tag): on a standalone server one list_index call per 128
// rows of the page (the global list index's entries and the page's rows,
// read in one script; list_all, over every partition's index, per 128
// rows while a store written before those indexes is backfilled); on a
// cluster three pipelines (list_peek's index members from a
// first wave of partitions, then from the others with a bound; list_rows
// on the winners' partitions), more only when winners left the index in
// between. claim_resumed_execution: one pipeline asking every
// partition for its oldest candidate, then one script call claiming on
// the winner's partition (one call in all with P = 1); on a standalone
// server claim_hinted promotes the due timers the claim hint names, reads
// the first claim head and claims on its partition, in one call that
// touches one partition when the heads are exact and nothing timed out
// (one pipeline of claim_peek more, then the call again, when more than
// 32 partitions hold due timers; operation records of those calls:
// <prefix>ff:claim-op:<lease_id>, the partitions claimed in).
// claim_resumed_executions (a batch of up to 100): one script call on a
// standalone server or with P = 1, two pipelines on a cluster (see
// Workers). With wait_replicas, a write's WAIT
// travels in the write's round trip (see Replicas and failover). Open:
// three (the partition count; the store markers and the persistence
// settings, one pipeline per node each); Ping and AdoptStore: one pipeline
// per node (AdoptStore one round trip more).
//
// go-redis re-sends a command whose connection failed before the reply
// arrived. Every write script is therefore idempotent on an id the driver
// generates for the call: it records its reply under op:<id> for a minute,
// and a re-sent call answers that reply without writing again. Context
// deadlines bound the socket I/O of every call (ContextTimeoutEnabled, set
// by Open; on New's client, by the application).
//
// # Replicas and failover
//
// Replication is asynchronous: a write the primary acknowledged may be
// missing from a replica promoted in its place (docs/spec.md §6.1). With
// wait_replicas=N every call of a write script is followed, in the same
// round trip and on the same connection of the node serving its
// partition, by a write of the partition's wait mark (<prefix>ff:{p:N}:wait,
// so that a call that answers from a record still covers the write it
// stands for) and WAIT N wait_timeout; fewer than N confirmations answer
// unavailable / replication_unconfirmed (retryable; the write stays
// applied on the primary). Read-only calls do not wait. Operations over
// every partition wait once per node after their pipeline (one more round
// trip per node), and so do a suspend replayed from the read step and a
// seed answered from reads alone. WAITAOF is not sent: WAIT already means
// that N replicas hold the write, which is what a failover needs, and Redis
// 7.0 lacks WAITAOF (replication.go says more).
//
// On a cluster, a call that meets a refused or broken connection, a
// timeout, MOVED, CLUSTERDOWN, TRYAGAIN or READONLY makes the client
// reload the slot map (at most once every 250 ms), so that after a master
// dies the calls reach its promoted replica as soon as the cluster has
// elected it, instead of after go-redis' periodic reload (60 s); go-redis
// re-sends the failed call itself (up to max_redirects times), and the
// reload often lands in time for one of those attempts (topology.go).
//
// The partition count is recorded in every partition's keystore hash on its
// first write; Open and New refuse another count (conflict /
// partition_count_mismatch) by reading partition 0, and every script checks
// it again.
//
// # A store that lost its data
//
// A server restarted without persistence, or a cluster master replaced by
// an empty node, comes back empty under a running process (docs/spec.md
// §6.1). Each partition therefore holds a store marker,
// <prefix>ff:{p:N}:store, a random id: Open creates the missing ones (SET
// NX, one pipeline) and remembers every partition's value, and every
// script call checks, before anything else and in the same call (one GET
// in the script), that its partition's marker still holds that value. A
// marker gone, or holding another value (the emptied store was taken by
// another process since), answers unavailable / store_reset, not
// retryable, and the call changes nothing; so does Ping, which reads every
// marker (one pipeline), so /readyz fails. Backend implements
// driver.StoreAdopter: AdoptStore (Engine.AdoptStore, ff serve
// --reseed-on-reset) creates the missing markers again and takes every
// partition's value as its own; the store then answers
// hmac_secret_not_initialized until it is seeded. A process that opens the
// emptied store sees a fresh one. On a standalone server claim_hinted,
// which may touch several partitions in its call, checks partition 0's
// marker by value and, before it writes, every other one's for presence
// (a standalone server loses them all at once).
//
// Capabilities().Persistent is read from the servers at Open (and New):
// true when every master has the append-only file on or a non-empty RDB
// save schedule (CONFIG GET appendonly, save); when CONFIG is refused (an
// ACL, a renamed command, a managed service) INFO persistence is read instead,
// and when that does not show persistence either the server is assumed to
// persist (persistence.go). ff serve warns when the store does not persist.
//
// # Workers: wake-ups and batch claims
//
// Backend implements driver.ClaimableWatcher (docs/spec.md §8.8): the
// scripts that make an execution claimable at once (a delivery that
// resumes it, cancel_suspension, release_execution) PUBLISH the
// partition's number on <prefix>ff:claimable in the same script call, and
// WatchClaimable subscribes to that channel on a connection of its own, so
// that a worker of any process claims within a round trip or two of the
// change instead of at its next poll. One channel for the store, not a
// shard channel per partition: a watcher holds one subscription, and a
// cluster relays each PUBLISH to every node (watch.go weighs the two).
// Wake-ups are at most once (one published while the subscriber
// reconnects is lost; the subscription's confirmation wakes the watcher
// once, which covers it) and may be spurious (another database number with
// the same prefix); a timeout or an expired lease wakes nobody. Workers
// poll as well.
//
// Backend implements driver.BatchClaimer: claim_resumed_executions claims
// up to Max, oldest first, each as claim_resumed_execution would answer it
// (its own lease id, reason and signals). With P = 1 the claim script, given Max lease ids,
// claims them all in one call; on a standalone server claim_hinted does,
// at one clock, taking each claim from the partition whose oldest
// candidate is the oldest of all (the first claim head's). On a cluster
// (and on a standalone server whose claim hint is not complete) one
// pipeline asks every partition for its Max oldest candidates, and one pipeline claims the Max oldest of all, each
// partition's claim script with as many lease ids as it holds of them;
// candidates another worker took meanwhile are replaced by the
// partition's next oldest or by another round. A re-sent call answers the
// claims it made (each lease id is an operation id).
//
// # The application's client
//
// New(ctx, client, opts...) builds a Backend on a *redis.Client or a
// *redis.ClusterClient the application already has (its connections,
// credentials, TLS, hooks), with WithPartitions, WithPrefix,
// WithWaitReplicas and WithWaitTimeout for the URL's options; the type of
// the client decides standalone or cluster. The Backend never closes the
// client: Close stops its calls and watchers only. On a cluster client New
// adds the topology hooks described above (to the client and to every node
// client, present and future); they stay after Close, doing nothing. New
// leaves the client's options alone: set ContextTimeoutEnabled, as Open
// does, for context deadlines to bound socket I/O.
//
// # TLS, logs
//
// The valkeys:// and rediss:// schemes connect with TLS 1.2 or later, the
// system's roots verifying the server's certificate for the URL's host
// (go-redis' skip_verify=true turns verification off). A handshake that
// fails answers unavailable / tls_failed,
// not retryable, naming the certificate problem (driver.TLSFailure):
// "certificate signed by unknown authority", an expired certificate, a
// name it does not cover, a TLS alert from the server. (A server without
// TLS on that port may not answer the handshake at all: that ends as a
// deadline.)
//
// go-redis logs its background failures (a pool that cannot dial, a
// Pub/Sub message dropped) through one process-wide logger. Importing this
// package replaces go-redis' default (lines on stderr) with one that
// forwards each line to slog.Default() at WARN, message "valkey client",
// the text in the attribute "text" (log.go: go-redis' texts hold no
// password). An application that wants otherwise calls redis.SetLogger
// (or go-redis' logging.Disable) in main.
//
// # Secrets at rest
//
// Backend implements driver.SecretSealer. With a keyring installed (the
// URL's kek_file, read by the engine), s:<kid> of partition N holds the
// secret sealed for kid and N (kek.Keyring.Seal), so every partition holds
// its own form; without one it holds the secret itself, as before KEKs.
// seed and rotate_all seal in Go and send each partition its form; the
// scripts compare stored forms only, and when the kid is already there in
// another form they return it and the driver opens it and compares secrets
// in constant time, so a re-run under a new KEK (the old one kept as
// kek_previous_file) is still already_seeded / noop. sign, verify,
// suspend, create_waitpoint, the slow path of deliver_signal and the
// keystore snapshot open what they read; kids already past their grace are
// not opened (their tokens are token_expired whatever the KEK); list_kids
// reads no secret. The one-trip path of deliver_signal compares the
// SHA-256 of the token suspend or create_waitpoint issued
// and reads no secret, so it accepts such a token whatever the KEK.
// RewrapSecrets: one pipeline reads every partition, one pipeline of
// compare-and-set scripts (rewrap.lua) writes the new forms.
//
// The Lua uses only what Redis 7.0 and Valkey 7.2+ both serve: EVAL/EVALSHA,
// no functions, no 7.2-only commands.
package valkey

import (
	"context"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

func init() {
	for _, s := range Schemes {
		engine.Register(s, func(ctx context.Context, u *url.URL) (driver.Backend, error) {
			b, err := Open(ctx, u)
			if err != nil {
				return nil, err
			}
			return b, nil
		})
	}
}

var _ driver.Backend = (*Backend)(nil)

// Backend is a Valkey store. It is safe for concurrent use and may be shared
// with other processes opening the same URL.
type Backend struct {
	ring     atomic.Pointer[kek.Keyring] // seals and opens stored secrets; nil: none
	client   redis.UniversalClient
	parts    int
	prefix   string
	redacted string
	hint     string    // the claim hint key; "" on a cluster
	topo     *topology // refreshes a cluster's slot map; nil when standalone
	// waitReplicas > 0: every write waits for that many replicas, up to
	// waitTimeout (replication.go).
	waitReplicas int
	waitTimeout  time.Duration
	// markers holds, per partition, the value of the store marker this
	// backend expects, as an ARGV element (store.go); replaced whole by
	// AdoptStore.
	markers atomic.Pointer[[]any]
	// keys holds, per partition, the KEYS of its script calls
	// (scriptKeys), made once.
	keys [][]string
	// persistent: every master persists its data (persistence.go).
	persistent bool
	// shared: the application's client (New), which Close leaves open.
	shared bool
	// closed is set by Close; life ends then, which stops the watchers.
	closed  atomic.Bool
	life    context.Context
	endLife context.CancelFunc
	// filling is set while a backfill of the global list indexes runs
	// (fillListsLater).
	filling atomic.Bool
}

// newBackend returns a Backend with the settings of c, without a client.
func newBackend(c config) *Backend {
	b := &Backend{parts: c.partitions, prefix: c.prefix, redacted: c.redacted,
		waitReplicas: c.waitReplicas, waitTimeout: c.waitTimeout}
	b.life, b.endLife = context.WithCancel(context.Background())
	return b
}

// Open connects to the server named by u, checks that it answers and that
// the store was not created with another partition count, creates the
// store markers that are missing and remembers every partition's (store.go),
// and reads whether the server persists its data (persistence.go): three
// round trips, the last two per node; on a standalone server one more asks
// whether the global list indexes are complete (list_fill.lua) and, when
// not, starts their backfill in the background. u's password never
// appears in errors.
func Open(ctx context.Context, u *url.URL) (*Backend, error) {
	return open(ctx, u, nil)
}

// open is Open with a hook that sees the client before its first command
// (tests use it to count round trips).
func open(ctx context.Context, u *url.URL, configure func(redis.UniversalClient)) (*Backend, error) {
	cfg, err := parseConfig(u)
	if err != nil {
		return nil, err
	}
	b := newBackend(cfg)
	// A call's context deadline bounds its socket reads and writes too, not
	// only go-redis' own read timeout.
	if cfg.cluster {
		cfg.clustered.ContextTimeoutEnabled = true
		cc := redis.NewClusterClient(cfg.clustered)
		b.client, b.topo = cc, watchTopology(cc)
	} else {
		cfg.standalone.ContextTimeoutEnabled = true
		b.client = redis.NewClient(cfg.standalone)
		b.hint = b.prefix + "ff:claim-hint"
	}
	if configure != nil {
		configure(b.client)
	}
	if err := b.start(ctx); err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

// start prepares a backend whose client is set: it checks the partition
// count, creates and remembers the store markers, reads the servers'
// persistence settings and, on a standalone server, checks the global list
// indexes (checkLists).
func (b *Backend) start(ctx context.Context) error {
	b.keys = make([][]string, b.parts)
	for p := range b.keys {
		b.keys[p] = []string{b.keystoreKey(p), b.markerKey(p)}
		if b.hint != "" {
			b.keys[p] = append(b.keys[p], b.hint)
		}
	}
	if err := b.checkPartitions(ctx); err != nil {
		return err
	}
	if err := b.ensureMarkers(ctx); err != nil {
		return err
	}
	b.persistent = b.readPersistence(ctx)
	if b.hint != "" {
		// A failure here (a user who may not run scripts) is not Open's:
		// the first list meets it, or finds the lists incomplete and
		// backfills them.
		_ = b.checkLists(ctx)
	}
	return nil
}

// checkPartitions reads the partition count recorded in partition 0 (which
// every layout has) and refuses another one.
func (b *Backend) checkPartitions(ctx context.Context) error {
	if err := b.usable(); err != nil {
		return err
	}
	rec, err := b.client.HGet(ctx, b.keystoreKey(0), "partitions").Result()
	if err == redis.Nil {
		return nil
	}
	if err != nil {
		return interpretError(err)
	}
	if rec != strconv.Itoa(b.parts) {
		return contracts.ErrPartitionCountMismatch.With(
			"partitions: the store was created with %s partitions, not %d", rec, b.parts)
	}
	return nil
}

// Capabilities declares P partitions and shared state; Persistent is what
// Open read from the servers' settings: true when every master has the
// append-only file on or an RDB save schedule, or when the server would
// not tell (persistence.go).
func (b *Backend) Capabilities() driver.Capabilities {
	return driver.Capabilities{Partitions: b.parts, Persistent: b.persistent, SharedAcrossProcesses: true}
}

// Partitions returns the partition count P.
func (b *Backend) Partitions() int { return b.parts }

// Ping checks that the server (every master serving a partition, on a
// cluster) answers and that the store still holds the data this backend
// opened: it reads every partition's store marker in one pipeline (one
// round trip per node) and answers unavailable / store_reset when one is
// missing or changed (docs/spec.md §6.1, store.go).
func (b *Backend) Ping(ctx context.Context) error {
	return b.checkMarkers(ctx)
}

// Close stops the backend's watchers and closes the connections of a
// backend that Open made; the client given to New stays open (its
// topology hooks then do nothing). Later calls fail with unavailable /
// backend_closed; closing twice is harmless.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.endLife()
	b.topo.stop()
	if b.shared {
		return nil
	}
	err := b.client.Close()
	if err != nil && err != redis.ErrClosed {
		return interpretError(err)
	}
	return nil
}

// usable answers backend_closed once Close was called: the client given
// to New stays open, so its calls would otherwise still work.
func (b *Backend) usable() error {
	if b.closed.Load() {
		return interpretError(redis.ErrClosed)
	}
	return nil
}

// String names the backend by its redacted URL.
func (b *Backend) String() string { return "valkey backend " + b.redacted }
