package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

var (
	_ driver.KeystoreWatcher  = (*Backend)(nil)
	_ driver.ClaimableWatcher = (*Backend)(nil)
	_ driver.BatchClaimer     = (*Backend)(nil)
)

// keystoreChannel is the channel on which the trigger of migration 0003
// notifies every statement that writes ff_keys, with the table's schema as
// payload.
const keystoreChannel = "ff_keystore"

// claimableChannel is the channel on which resuming deliveries, cancels
// and releases notify, at their commit, that an execution became claimable,
// with the schema as payload (docs/spec.md §8.8).
const claimableChannel = "ff_claimable"

// notifyClaimableSQL queues that notification in the transaction: NOTIFY
// is transactional, sent at commit and dropped at rollback.
const notifyClaimableSQL = `SELECT pg_notify('` + claimableChannel + `', current_schema())`

// notifyClaimable queues the claimable notification in tx: a pipelined
// transaction sends it in a transaction of its own right after its COMMIT
// (notifyTxSQL says why), any other one in tx.
func notifyClaimable(ctx context.Context, tx dbtx) error {
	if t, ok := tx.(*pipeTx); ok {
		t.notify = true
		return nil
	}
	_, err := tx.Exec(ctx, notifyClaimableSQL)
	return err
}

// keystoreSchemaSQL names the schema of the ff_keys the connection's
// search_path resolves to: the one whose notifications are ours.
const keystoreSchemaSQL = `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass('ff_keys')`

// The listener's timing. It waits for notifications in slices of
// watchPoll so that it notices a Close of the backend (an Engine closed
// without Close still stops its listener), pings the server every
// watchPing to find a connection that died silently, and reconnects with a
// backoff doubling from watchBackoffMin to watchBackoffMax.
var (
	watchPoll           = time.Second
	watchPing           = 30 * time.Second
	watchConnectTimeout = 10 * time.Second
	watchBackoffMin     = 50 * time.Millisecond
	watchBackoffMax     = 5 * time.Second
)

// WatchKeystore listens on a connection of its own (not one of the pool's)
// for the notifications the trigger of migration 0003 sends at the commit
// of every keystore write, by any process, and calls changed for each of
// this schema's, and once after each (re)connection. It returns nil when ctx
// ends or the backend is closed, and backend_closed when called after
// Close. The connection uses the URL's settings (application_name included).
func (b *Backend) WatchKeystore(ctx context.Context, changed func()) error {
	return b.watch(ctx, keystoreChannel, "keystore push", changed)
}

// WatchClaimable listens, on a connection of its own, for the notifications
// that resuming deliveries, cancels and releases of every process send at
// commit (docs/spec.md §8.8), and calls wake for each of this schema's and
// once after each (re)connection. Like WatchKeystore: nil when ctx ends,
// backend_closed after Close, unsupported behind a transaction pooler.
func (b *Backend) WatchClaimable(ctx context.Context, wake func()) error {
	return b.watch(ctx, claimableChannel, "claimable push", wake)
}

// watch runs a listener on channel until ctx ends or the backend closes,
// reconnecting with backoff; what names it in errors.
func (b *Backend) watch(ctx context.Context, channel, what string, notify func()) error {
	if err := b.usable(); err != nil {
		return err
	}
	if b.pooled {
		// LISTEN is session state: behind a transaction pooler it would
		// listen on a server connection that soon serves someone else, and
		// notifications would stop without an error. The caches' TTL and
		// the workers' polling are the bound instead.
		return contracts.ErrUnsupported.With("postgres: no %s behind a transaction pooler (%s=%s)", what, ParamPooler, PoolerTransaction)
	}
	cfg := b.pool.Config().ConnConfig
	backoff := watchBackoffMin
	for {
		if up, _ := b.listen(ctx, cfg, channel, notify); up {
			backoff = watchBackoffMin
		}
		// The error is not reported: the connection comes back or the TTL
		// of the caches bounds their staleness.
		if !b.sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, watchBackoffMax)
	}
}

// sleep waits d unless ctx ends or the backend is closed first, which it
// reports as false.
func (b *Backend) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return ctx.Err() == nil && !b.closed.Load()
	}
}

// listen connects, listens and delivers notifications until ctx ends, the
// backend is closed or the connection fails. up reports that it listened.
func (b *Backend) listen(ctx context.Context, cfg *pgx.ConnConfig, channel string, changed func()) (up bool, err error) {
	if ctx.Err() != nil || b.closed.Load() {
		return false, nil
	}
	cctx, cancel := context.WithTimeout(ctx, watchConnectTimeout)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(cctx)
		cancel()
	}()
	var schema string
	cctx, cancel = context.WithTimeout(ctx, watchConnectTimeout)
	err = conn.QueryRow(cctx, keystoreSchemaSQL).Scan(&schema)
	if err == nil {
		_, err = conn.Exec(cctx, "LISTEN "+channel)
	}
	cancel()
	if err != nil {
		return false, err // pgx.ErrNoRows: ff_keys is gone (a dropped schema)
	}
	// Changes committed while no connection listened were not delivered.
	changed()
	lastPing := time.Now()
	for {
		wctx, cancel := context.WithTimeout(ctx, watchPoll)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if n.Channel == channel && n.Payload == schema {
				changed()
			}
		case ctx.Err() != nil || b.closed.Load():
			return true, nil
		case !pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded):
			return true, err
		case time.Since(lastPing) >= watchPing:
			// Notifications that arrive with the reply are kept by pgx for
			// the next WaitForNotification.
			pctx, cancel := context.WithTimeout(ctx, watchConnectTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, err
			}
			lastPing = time.Now()
		}
	}
}
