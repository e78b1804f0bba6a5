package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

var _ driver.SecretSealer = (*Backend)(nil)

// storedSecretsSQL reads every kid's stored secret, for RewrapSecrets;
// revoked kids have none (docs/spec.md §8.7) and are left out.
const storedSecretsSQL = `SELECT kid, secret FROM ff_keys WHERE NOT revoked ORDER BY kid`

// rewrapSecretSQL replaces a kid's stored secret with another stored form of
// the same secret; nothing else of the row changes.
const rewrapSecretSQL = `UPDATE ff_keys SET secret = $2 WHERE kid = $1`

// SetKeyring installs the keyring that seals the secrets the backend writes
// and opens those it reads; nil stores them in plain and refuses sealed
// ones with kek_mismatch. Operations already running keep the keyring they
// started with.
func (b *Backend) SetKeyring(r *kek.Keyring) { b.keyring.Store(r) }

// RewrapSecrets re-seals every stored secret under to (nil: in plain),
// opening each with the installed keyring and leaving those already in to's
// form as they are. The backend's one partition is one SERIALIZABLE
// transaction behind lockKeysSQL, so it runs between seeds and rotations,
// never alongside one, and a secret one of them installs is not lost. No
// kid, expiry or current kid changes, and to is not installed
// (engine.Engine.RewrapSecrets installs it afterwards).
func (b *Backend) RewrapSecrets(ctx context.Context, to *kek.Keyring) (contracts.RewrapResult, error) {
	from := b.keyring.Load()
	var rewrapped, unchanged int
	err := b.inTx(ctx, lockKeysSQL, func(tx pgx.Tx) error {
		rewrapped, unchanged = 0, 0
		stored, err := storedSecrets(ctx, tx)
		if err != nil {
			return err
		}
		var batch pgx.Batch
		for _, s := range stored {
			next, changed, err := driver.RewrapSecret(from, to, s.kid, keyPartition, s.secret)
			if err != nil {
				return err
			}
			if !changed {
				unchanged++
				continue
			}
			batch.Queue(rewrapSecretSQL, s.kid, next)
			rewrapped++
		}
		if batch.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return contracts.RewrapResult{}, interpretError(err)
	}
	var res contracts.RewrapResult
	driver.AddRewrapped(&res, rewrapped, unchanged)
	return res, nil
}

// storedSecret is one row of storedSecretsSQL.
type storedSecret struct {
	kid    string
	secret []byte
}

// storedSecrets runs storedSecretsSQL.
func storedSecrets(ctx context.Context, tx pgx.Tx) ([]storedSecret, error) {
	rows, err := tx.Query(ctx, storedSecretsSQL)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (storedSecret, error) {
		var s storedSecret
		err := r.Scan(&s.kid, &s.secret)
		return s, err
	})
}
