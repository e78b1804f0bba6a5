package sqlite

import (
	"context"
	"fmt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

var _ driver.SecretSealer = (*Backend)(nil)

// SetKeyring installs the keyring that seals every secret the backend
// writes from now on and opens every secret it reads (nil: secrets are
// written in plain and a sealed one fails with kek_mismatch). It is safe to
// call at any time; an operation already running keeps the keyring it
// started with.
func (b *Backend) SetKeyring(r *kek.Keyring) { b.ring.Store(r) }

const (
	// selectSecrets reads the secrets to rewrap: revoked kids have none.
	selectSecrets   = `SELECT kid, secret FROM keystore WHERE revoked = 0 ORDER BY kid`
	updateKeySecret = `UPDATE keystore SET secret = ? WHERE kid = ?`
)

// storedSecret is one keystore row's kid and secret in stored form.
type storedSecret struct {
	kid    string
	secret []byte
}

// RewrapSecrets re-seals every stored secret under to (nil: stores them in
// plain) in one write transaction, opening them with the installed keyring.
// Secrets already in to's form are left as they are, so a re-run after a
// failure finishes the job; kids, expiries and the current kid never
// change. It does not install to (engine.Engine.RewrapSecrets does). After
// the commit it truncates the write-ahead log (truncateWAL).
func (b *Backend) RewrapSecrets(ctx context.Context, to *kek.Keyring) (contracts.RewrapResult, error) {
	var res contracts.RewrapResult
	var rewrapped, unchanged int
	err := b.write(ctx, func(q txn, _ int64) error {
		rewrapped, unchanged = 0, 0 // a busy attempt is retried from scratch
		rows, err := loadSecrets(q)
		if err != nil {
			return err
		}
		for _, r := range rows {
			sealed, changed, err := driver.RewrapSecret(q.ring, to, r.kid, keyPartition, r.secret)
			if err != nil {
				return err
			}
			if !changed {
				unchanged++
				continue
			}
			upd, err := q.exec(updateKeySecret, sealed, r.kid)
			if err != nil {
				return err
			}
			if n, err := upd.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("sqlite: rewrap of kid %q updated %d rows (%v)", r.kid, n, err)
			}
			rewrapped++
		}
		return nil
	})
	if err != nil {
		return contracts.RewrapResult{}, err
	}
	if err := b.truncateWAL(ctx, "the secrets are rewrapped, but readers kept the write-ahead log, which may hold their previous form, from being truncated; re-run the rewrap"); err != nil {
		return contracts.RewrapResult{}, err
	}
	driver.AddRewrapped(&res, rewrapped, unchanged) // the one partition
	return res, nil
}

// truncateWAL checkpoints the write-ahead log into the database file and
// truncates it: until then the log holds the page images from before the
// rewrap (every secret in its previous form: plain, or sealed under the KEK
// being retired) or the revocation (the revoked secret). Readers (of any
// process) still using old frames block it for up to the busy timeout; then
// the call fails with retryable contention whose detail is busyDetail
// (which names no secret), and a re-run (which finds every secret unchanged,
// or the kid already revoked) truncates it again.
func (b *Backend) truncateWAL(ctx context.Context, busyDetail string) error {
	if b.memory {
		return nil
	}
	var busy, logFrames, checkpointed int
	err := b.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed)
	if err != nil {
		return interpretError(contextFirst(ctx, err))
	}
	if busy != 0 {
		return contracts.ErrSerializationRetryExhausted.With("sqlite: %s", busyDetail)
	}
	return nil
}

// loadSecrets reads every kid's stored secret. It reads all rows before the
// caller updates any, so no cursor is open across an update.
func loadSecrets(q txn) ([]storedSecret, error) {
	rows, err := q.query(selectSecrets)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedSecret
	for rows.Next() {
		var s storedSecret
		if err := rows.Scan(&s.kid, &s.secret); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
