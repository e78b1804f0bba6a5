package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// keyPartition is the backend's one keystore partition: every secret is
// sealed for it.
const keyPartition = 0

// loadKeysSQL reads the backend clock and the whole keystore in one
// statement: one row per kid, or a single row of NULLs when the keystore is
// empty, each carrying the same now_ms. A revoked kid's row has no secret
// (NULL). Run inside the SERIALIZABLE transaction of seed, rotate or
// revoke, it is the read their plan depends on, so a concurrent change of
// any kid makes one of the transactions retry.
const loadKeysSQL = `SELECT n.now_ms, k.kid, k.secret, k.expires_at_ms, coalesce(k.revoked, false)
FROM (SELECT ` + nowMsExpr + ` AS now_ms) n
LEFT JOIN ff_keys k ON true
ORDER BY k.kid`

// lockKeysSQL queues the keystore writers (seed, rotate, revoke, rewrap)
// of every process behind one another. It is the first statement of their
// transaction (sent with BEGIN): LOCK TABLE takes no snapshot, so a writer
// that waited here reads what the previous writer committed instead of
// failing to serialize against it.
// SHARE ROW EXCLUSIVE conflicts with itself and with row writers, not with
// the plain reads of sign, verify and list_kids. The SHARE lock of the gate
// ff_claim_lock then waits for the execution writers in flight (they hold
// it ROW EXCLUSIVE, execGateSQL) and holds back those that come after, until
// commit: execution writers run at READ COMMITTED, so this orders each of
// them wholly before or wholly after a keystore change (a suspend never
// signs with a kid that a rotation committed away before the suspend's
// commit, a delivery never accepts a kid revoked before it commits).
const lockKeysSQL = `LOCK TABLE ff_keys IN SHARE ROW EXCLUSIVE MODE; LOCK TABLE ff_claim_lock IN SHARE MODE`

// deleteKidsSQL deletes kids the plan dropped (expired verifying kids).
const deleteKidsSQL = `DELETE FROM ff_keys WHERE kid = ANY($1)`

// setExpirySQL turns a kid into a verifying kid expiring at $2 (the outgoing
// current kid of a rotation). It runs before insertKidSQL, so the one-current
// index never sees two current rows.
const setExpirySQL = `UPDATE ff_keys SET expires_at_ms = $2 WHERE kid = $1`

// revokeKidSQL revokes a kid (docs/spec.md §8.7): it keeps the row, so the
// name is never reused, marks it revoked with the expiry $2 (now - 1) and
// deletes its secret, so that no stored form of it remains in the row
// (ff_keys_revoked_check requires exactly this). Like every write of
// ff_keys, it makes the trigger of migration 0003 notify the keystore
// caches at commit.
const revokeKidSQL = `UPDATE ff_keys SET revoked = true, secret = NULL, expires_at_ms = $2 WHERE kid = $1`

// insertKidSQL installs a kid; expires_at_ms NULL makes it current, which
// ff_keys_one_current allows for one row only.
const insertKidSQL = `INSERT INTO ff_keys (kid, secret, installed_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4)`

// currentKidSQL reads the current kid, as one row that is NULL when the
// keystore is empty.
const currentKidSQL = `SELECT k.kid, k.secret
FROM (SELECT 1) one
LEFT JOIN ff_keys k ON k.expires_at_ms IS NULL`

// verifySQL is everything verify decides on, in one round trip and one
// snapshot: the backend clock, whether a current kid exists, and the
// token's kid (NULL columns when unknown; no secret when revoked).
const verifySQL = `SELECT n.now_ms,
       EXISTS (SELECT 1 FROM ff_keys WHERE expires_at_ms IS NULL),
       k.kid IS NOT NULL, k.secret, k.expires_at_ms, coalesce(k.revoked, false)
FROM (SELECT ` + nowMsExpr + ` AS now_ms) n
LEFT JOIN ff_keys k ON k.kid = $1`

// Seed installs args.Kid as the current kid when the keystore has none, or
// reports already_seeded / already_initialized without writing
// (docs/spec.md §4). One SERIALIZABLE transaction behind lockKeysSQL:
// concurrent seeds of different kids leave exactly one installed.
// same_secret compares the opened secret, so a re-run under another KEK
// still finds the same secret.
func (b *Backend) Seed(ctx context.Context, args contracts.SeedArgs) (contracts.SeedOutcome, error) {
	var out contracts.SeedOutcome
	ring := b.keyring.Load()
	err := b.inTx(ctx, lockKeysSQL, func(tx pgx.Tx) error {
		nowMs, keys, err := loadKeys(ctx, tx)
		if err != nil {
			return err
		}
		// PlanSeed compares only the secret of args.Kid.
		if rec := keys.Find(args.Kid); rec != nil {
			if err := openRecord(ring, rec); err != nil {
				return err
			}
		}
		next, o, changed := driver.PlanSeed(keys, args)
		if changed {
			if err := writeKeys(ctx, tx, ring, keys, next, nowMs); err != nil {
				return err
			}
		}
		out = o
		return nil
	})
	return out, interpretError(err)
}

// RotateAll rotates the single partition in one SERIALIZABLE transaction
// behind lockKeysSQL (docs/spec.md §4): the keystore is as before or as after, never in
// between. A rotation_conflict is reported in the partition's entry. Noop
// and rotation_conflict compare the opened secret of the current kid.
func (b *Backend) RotateAll(ctx context.Context, args contracts.RotateArgs) (contracts.RotateAllResult, error) {
	entry := contracts.RotateEntry{Partition: keyPartition}
	ring := b.keyring.Load()
	err := b.inTx(ctx, lockKeysSQL, func(tx pgx.Tx) error {
		entry = contracts.RotateEntry{Partition: keyPartition}
		nowMs, keys, err := loadKeys(ctx, tx)
		if err != nil {
			return err
		}
		// PlanRotate compares only the secret of a current kid named new_kid.
		if keys.Current != nil && keys.Current.Kid == args.NewKid {
			if err := openRecord(ring, keys.Current); err != nil {
				return err
			}
		}
		var next driver.PartitionKeys
		var changed bool
		entry, next, changed = driver.RotatePartition(keyPartition, keys, args, nowMs)
		if changed {
			return writeKeys(ctx, tx, ring, keys, next, nowMs)
		}
		return nil
	})
	if err != nil {
		return contracts.RotateAllResult{}, interpretError(err)
	}
	return contracts.RotateAllResult{Entries: []contracts.RotateEntry{entry}}, nil
}

var _ driver.KidRevoker = (*Backend)(nil)

// RevokeKid revokes a verifying kid of the single partition in one
// SERIALIZABLE transaction behind lockKeysSQL, as RotateAll
// (docs/spec.md §8.7; driver.RevokePartition decides): the kid's row keeps
// its name, marked revoked with the expiry now - 1, and loses its secret.
// Unknown, expired and revoked kids are noop and write nothing; the current
// kid is kid_is_current in the partition's entry, not the call's error. It
// opens no secret, so it answers whatever the keyring. The write makes the
// trigger of migration 0003 notify every process's keystore cache at
// commit (WatchKeystore), as a rotation does.
func (b *Backend) RevokeKid(ctx context.Context, args contracts.RevokeKidArgs) (contracts.RevokeKidResult, error) {
	var entry contracts.RevokeEntry
	ring := b.keyring.Load()
	err := b.inTx(ctx, lockKeysSQL, func(tx pgx.Tx) error {
		nowMs, keys, err := loadKeys(ctx, tx)
		if err != nil {
			return err
		}
		var next driver.PartitionKeys
		var changed bool
		entry, next, changed = driver.RevokePartition(keyPartition, keys, args, nowMs)
		if changed {
			return writeKeys(ctx, tx, ring, keys, next, nowMs)
		}
		return nil
	})
	if err != nil {
		return contracts.RevokeKidResult{}, interpretError(err)
	}
	return contracts.RevokeKidResult{Entries: []contracts.RevokeEntry{entry}}, nil
}

// ListKids lists the current kid and the verifying kids not expired at the
// backend's clock, from one statement. It opens no secret, so it answers
// whatever the keyring.
func (b *Backend) ListKids(ctx context.Context, _ contracts.ListKidsArgs) (contracts.ListKidsResult, error) {
	if err := b.usable(); err != nil {
		return contracts.ListKidsResult{}, err
	}
	nowMs, keys, err := loadKeys(ctx, b.pool)
	if err != nil {
		return contracts.ListKidsResult{}, interpretError(err)
	}
	return contracts.ListKidsResult{Partitions: []contracts.PartitionKids{driver.ListPartition(keyPartition, keys, nowMs)}}, nil
}

// Sign signs args.Message with the current kid.
func (b *Backend) Sign(ctx context.Context, args contracts.SignArgs) (contracts.SignResult, error) {
	if err := b.usable(); err != nil {
		return contracts.SignResult{}, err
	}
	var kid *string
	var secret []byte
	if err := b.pool.QueryRow(ctx, currentKidSQL).Scan(&kid, &secret); err != nil {
		return contracts.SignResult{}, interpretError(err)
	}
	var keys driver.PartitionKeys
	if kid != nil {
		keys.Current = &driver.KidRecord{Kid: *kid, Secret: secret}
		if err := openRecord(b.keyring.Load(), keys.Current); err != nil {
			return contracts.SignResult{}, err
		}
	}
	return driver.SignWith(keys, args)
}

// Verify checks args.Token for args.Message at the backend's clock
// (docs/spec.md §3), in one round trip.
func (b *Backend) Verify(ctx context.Context, args contracts.VerifyArgs) (contracts.VerifyResult, error) {
	if err := b.usable(); err != nil {
		return contracts.VerifyResult{}, err
	}
	t, err := contracts.ParseToken("token", args.Token)
	if err != nil {
		return contracts.VerifyResult{}, err
	}
	var (
		nowMs              int64
		initialized, known bool
		rec                = driver.KidRecord{Kid: t.Kid}
	)
	err = b.pool.QueryRow(ctx, verifySQL, t.Kid).Scan(&nowMs, &initialized, &known, (*[]byte)(&rec.Secret), &rec.ExpiresAtMs, &rec.Revoked)
	if err != nil {
		return contracts.VerifyResult{}, interpretError(err)
	}
	var found *driver.KidRecord
	if known {
		if found, err = driver.OpenForCheck(b.keyring.Load(), keyPartition, initialized, &rec, nowMs); err != nil {
			return contracts.VerifyResult{}, err
		}
	}
	if err := driver.CheckToken(t, driver.SignatureInput(t.Kid, args.Scope, args.Message), initialized, found, nowMs); err != nil {
		return contracts.VerifyResult{}, err
	}
	return contracts.VerifyResult{Valid: true, Kid: t.Kid}, nil
}

// openRecord replaces rec's stored secret with the secret it holds, opened
// with ring; a revoked kid has none and stays without one. Errors are
// kek_mismatch or internal_error, returned as they are; they never quote
// secret bytes.
func openRecord(ring *kek.Keyring, rec *driver.KidRecord) error {
	if rec.Revoked {
		rec.Secret = nil
		return nil
	}
	secret, err := ring.Open(rec.Kid, keyPartition, rec.Secret)
	if err != nil {
		return err
	}
	rec.Secret = secret
	return nil
}

// loadKeys runs loadKeysSQL and returns the clock and the keystore, each
// secret in its stored form (sealed or plain; none for a revoked kid):
// openRecord opens those an operation uses.
func loadKeys(ctx context.Context, q querier) (int64, driver.PartitionKeys, error) {
	rows, err := q.Query(ctx, loadKeysSQL)
	if err != nil {
		return 0, driver.PartitionKeys{}, err
	}
	defer rows.Close()
	var (
		nowMs int64
		keys  driver.PartitionKeys
	)
	for rows.Next() {
		var kid *string
		rec := driver.KidRecord{}
		if err := rows.Scan(&nowMs, &kid, (*[]byte)(&rec.Secret), &rec.ExpiresAtMs, &rec.Revoked); err != nil {
			return 0, keys, err
		}
		if kid == nil {
			continue // the empty keystore's single row
		}
		rec.Kid = *kid
		if rec.ExpiresAtMs == nil {
			keys.Current = &rec
		} else {
			keys.Verifying = append(keys.Verifying, rec)
		}
	}
	return nowMs, keys, rows.Err()
}

// writeKeys writes the difference between the keystore as loaded (prev) and
// as planned (next) in one round trip, in the order of driver.KeysChange:
// deletions, then expiry changes, then revocations, then insertions, so the
// one-current index holds after every statement. A kid's secret never
// changes once installed: only inserted kids write one, sealed with ring (in
// plain for a nil ring), and a revocation deletes it.
func writeKeys(ctx context.Context, tx pgx.Tx, ring *kek.Keyring, prev, next driver.PartitionKeys, nowMs int64) error {
	c := driver.DiffKeys(prev, next)
	var batch pgx.Batch
	if len(c.Deleted) > 0 {
		batch.Queue(deleteKidsSQL, c.Deleted)
	}
	for _, rec := range c.Expiry {
		batch.Queue(setExpirySQL, rec.Kid, rec.ExpiresAtMs)
	}
	for _, rec := range c.Revoked {
		batch.Queue(revokeKidSQL, rec.Kid, rec.ExpiresAtMs)
	}
	for _, rec := range c.Inserted {
		batch.Queue(insertKidSQL, rec.Kid, ring.Seal(rec.Kid, keyPartition, rec.Secret), nowMs, rec.ExpiresAtMs)
	}
	return tx.SendBatch(ctx, &batch).Close()
}
