package postgres

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

// The URL schemes this driver registers, both with engine.Register and
// engine.RegisterMigrator.
const (
	Scheme      = "postgres"
	SchemeAlias = "postgresql"
)

// ParamMigrate is the URL query parameter that, set to MigrateAuto, makes
// Open apply pending schema migrations. It is removed before pgx sees the URL.
const ParamMigrate = "ff_migrate"

// MigrateAuto is the value of ParamMigrate that applies migrations at Open.
const MigrateAuto = "auto"

// ParamPooler is the URL query parameter that, set to PoolerTransaction,
// tells the driver that a pooler in transaction mode (PgBouncer's
// pool_mode=transaction, and the like) stands between it and the server,
// so a server session lasts one transaction: see the package
// documentation, "Behind a pooler". It is removed before pgx sees the URL.
const ParamPooler = "ff_pooler"

// PoolerTransaction is the value of ParamPooler for a transaction pooler.
const PoolerTransaction = "transaction"

// defaultApplicationName is the application_name of the pool's sessions
// when the URL does not set one, so operators can find them in
// pg_stat_activity.
const defaultApplicationName = "flowfabric"

func init() {
	for _, s := range []string{Scheme, SchemeAlias} {
		engine.Register(s, func(ctx context.Context, u *url.URL) (driver.Backend, error) {
			b, err := Open(ctx, u)
			if err != nil {
				return nil, err
			}
			return b, nil
		})
		engine.RegisterMigrator(s, Migrate)
	}
}

var _ driver.Backend = (*Backend)(nil)

// Backend is a FlowFabric-Go backend stored in PostgreSQL. It is safe for
// concurrent use; several processes may open the same database at once.
type Backend struct {
	pool   *pgxpool.Pool
	url    string // redacted, for messages
	pooled bool   // behind a transaction pooler: no session state (ParamPooler)
	shared bool   // the application's pool (New): Close leaves it open
	closed atomic.Bool
	stats  stats
	// keyring seals the secrets written and opens those read; nil stores
	// them in plain. Each operation loads it once, so it seals and opens
	// with the same keyring even if SetKeyring runs meanwhile.
	keyring atomic.Pointer[kek.Keyring]
	// completes groups concurrent complete_execution calls
	// (complete_group.go), deliveries concurrent deliver_signal calls
	// (deliver_group.go), suspends concurrent suspend calls
	// (suspend_group.go), claims concurrent claim_resumed_execution calls
	// (claim_group.go).
	completes  completer
	deliveries deliverer
	suspends   suspender
	claims     claimer
}

// initGroups makes b's groupers run b's calls.
func (b *Backend) initGroups() {
	b.initCompleter(&b.completes)
	b.initDeliverer(&b.deliveries)
	b.initSuspender(&b.suspends)
	b.initClaimer(&b.claims)
}

// Stats counts the backend's writing transactions (keystore writers,
// execution writers, claims) since Open.
type Stats struct {
	// Transactions is the number of transaction attempts that committed.
	Transactions int64
	// Retries is the number of attempts that failed with a serialization
	// failure or deadlock (SQLSTATE 40001, 40P01), or a unique violation
	// only a concurrent writer causes, and were retried.
	Retries int64
	// Exhausted is the number of operations that failed with
	// serialization_retry_exhausted after the last attempt.
	Exhausted int64
}

type stats struct{ committed, retries, exhausted atomic.Int64 }

// Stats returns the transaction counters of this Backend (not of other
// processes sharing the database).
func (b *Backend) Stats() Stats {
	return Stats{
		Transactions: b.stats.committed.Load(),
		Retries:      b.stats.retries.Load(),
		Exhausted:    b.stats.exhausted.Load(),
	}
}

// Open connects to the database of u and checks its schema: a schema behind
// the binary is migrated when u carries ff_migrate=auto and refused
// otherwise (naming `ff migrate`); a schema newer than the binary, or one
// whose applied migrations were changed, is refused.
func Open(ctx context.Context, u *url.URL) (*Backend, error) {
	o, err := parseOptions(u)
	if err != nil {
		return nil, err
	}
	pool, err := newPool(ctx, u, o)
	if err != nil {
		return nil, err
	}
	b := &Backend{pool: pool, url: driver.RedactedURL(u), pooled: o.pooled}
	b.initGroups()
	if o.autoMigrate {
		_, err = migrate(ctx, pool)
	} else {
		err = checkSchema(ctx, pool, b.url)
	}
	if err != nil {
		pool.Close()
		return nil, interpretError(err)
	}
	return b, nil
}

// Option configures New.
type Option func(*options)

// WithMigrate makes New apply pending schema migrations, as ff_migrate=auto
// does for Open.
func WithMigrate() Option { return func(o *options) { o.autoMigrate = true } }

// WithTransactionPooler tells New that the pool reaches the server through
// a pooler in transaction mode, as ff_pooler=transaction does for Open (see
// the package documentation, "Behind a pooler"). The pool must then not use
// pgx's statement cache: set its ConnConfig.DefaultQueryExecMode to
// pgx.QueryExecModeExec or QueryExecModeSimpleProtocol.
func WithTransactionPooler() Option { return func(o *options) { o.pooled = true } }

// New returns a Backend over the application's own pool, so that the
// store shares the application's connections, settings and credentials, and
// its transactions can hold a suspension (engine.Engine.SuspendTx). It
// checks the schema as Open does (or migrates it, WithMigrate). The Backend
// never closes pool: its Close only stops its own use. The keystore and
// claimable listeners open their own connections with pool's connection
// settings. Install a keyring with SetKeyring to seal secrets at rest.
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Backend, error) {
	if pool == nil {
		return nil, contracts.Invalid("pool", "must not be nil")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg := pool.Config().ConnConfig
	if o.pooled && (cfg.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement || cfg.DefaultQueryExecMode == pgx.QueryExecModeCacheDescribe) {
		return nil, contracts.Invalid("pool", "behind a transaction pooler the pool must not cache statements: "+
			"set ConnConfig.DefaultQueryExecMode to pgx.QueryExecModeExec or QueryExecModeSimpleProtocol")
	}
	b := &Backend{pool: pool, url: redactedPoolURL(cfg), pooled: o.pooled, shared: true}
	b.initGroups()
	var err error
	if o.autoMigrate {
		_, err = migrate(ctx, pool)
	} else {
		err = checkSchema(ctx, pool, b.url)
	}
	if err != nil {
		return nil, interpretError(err)
	}
	return b, nil
}

// redactedPoolURL names the pool's server for messages, without user
// name or password: postgres://host:port/database.
func redactedPoolURL(cfg *pgx.ConnConfig) string {
	u := url.URL{Scheme: Scheme, Host: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Path: "/" + cfg.Database}
	return u.String()
}

// Migrate applies the pending schema migrations of the database of u and
// returns the names of those it applied ("0001_keystore", ...). It is safe
// to run from several processes at once: the migrations run in one
// transaction under an advisory lock, and the second process finds nothing
// left to do.
func Migrate(ctx context.Context, u *url.URL) ([]string, error) {
	o, err := parseOptions(u)
	if err != nil {
		return nil, err
	}
	pool, err := newPool(ctx, u, o)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	applied, err := migrate(ctx, pool)
	return applied, interpretError(err)
}

// options are FlowFabric's own URL parameters.
type options struct {
	autoMigrate bool
	pooled      bool
}

func parseOptions(u *url.URL) (options, error) {
	var o options
	switch v := u.Query().Get(ParamMigrate); v {
	case "":
	case MigrateAuto:
		o.autoMigrate = true
	default:
		return o, contracts.Invalid("backend_url", ParamMigrate+` must be "auto" or absent`)
	}
	switch v := u.Query().Get(ParamPooler); v {
	case "":
	case PoolerTransaction:
		o.pooled = true
	default:
		return o, contracts.Invalid("backend_url", ParamPooler+` must be "transaction" or absent`)
	}
	return o, nil
}

// newPool builds the pgx pool for u without FlowFabric's own parameters.
// Connections are made lazily; nothing is dialled here. Behind a
// transaction pooler, statements default to pgx's exec mode (one unnamed
// statement per round trip) unless the URL chose a mode: the statement
// cache's named prepared statements belong to a server session, which the
// pooler hands to another client after each transaction.
func newPool(ctx context.Context, u *url.URL, o options) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(pgxURL(u))
	if err != nil {
		// pgx redacts the password, but its message may quote other parts of
		// the URL; keep it reachable through Unwrap only.
		e := contracts.Invalid("backend_url", "must be a PostgreSQL URL that pgx can parse")
		e.Err = err
		return nil, e
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = defaultApplicationName
	}
	if o.pooled && !u.Query().Has("default_query_exec_mode") {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, interpretError(err)
	}
	return pool, nil
}

// pgxURL returns u as a string without the ff_* query parameters.
func pgxURL(u *url.URL) string {
	c := *u
	q := c.Query()
	for k := range q {
		if strings.HasPrefix(k, "ff_") {
			q.Del(k)
		}
	}
	c.RawQuery = q.Encode()
	return c.String()
}

// Capabilities declares one keystore partition, persistence and sharing
// between processes.
func (b *Backend) Capabilities() driver.Capabilities {
	return driver.Capabilities{Partitions: 1, Persistent: true, SharedAcrossProcesses: true}
}

// pingSQL reads a table of the schema, so that a ping fails with
// store_reset once the tables are gone (docs/spec.md §6.1).
const pingSQL = `SELECT 1 FROM ff_claim_lock LIMIT 1`

// Ping checks that the database answers and still holds the store's tables:
// after they were dropped it answers unavailable / store_reset.
func (b *Backend) Ping(ctx context.Context) error {
	if err := b.usable(); err != nil {
		return err
	}
	_, err := b.pool.Exec(ctx, pingSQL)
	return interpretError(err)
}

// Close closes the pool, waiting for connections in use to be returned —
// but not the application's pool of New, which stays open. Later calls
// fail with unavailable / backend_closed; closing twice is harmless.
func (b *Backend) Close() error {
	if b.closed.Swap(true) || b.shared {
		return nil
	}
	b.pool.Close()
	return nil
}

// usable refuses calls after Close.
func (b *Backend) usable() error {
	if b.closed.Load() {
		return contracts.ErrBackendClosed.With("the postgres backend is closed")
	}
	return nil
}
