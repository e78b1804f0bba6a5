package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// The keystore's single partition, loaded whole: it holds one current kid,
// the verifying kids not yet collected by a rotation and every revoked kid
// (kept for good, with a NULL secret; schema version 4).
const selectKeys = `SELECT kid, secret, expires_at_ms, revoked FROM keystore ORDER BY kid`

const (
	deleteKey       = `DELETE FROM keystore WHERE kid = ?`
	updateKeyExpiry = `UPDATE keystore SET expires_at_ms = ? WHERE kid = ?`
	insertKey       = `INSERT INTO keystore (kid, secret, installed_at_ms, expires_at_ms) VALUES (?, ?, ?, ?)`
	// revokeKey marks a kid revoked and deletes its secret in the same row
	// write; with secure_delete on, the page's freed space (the secret's
	// old cell) is zeroed. It touches only a kid not yet revoked.
	revokeKey = `UPDATE keystore SET secret = NULL, revoked = 1, expires_at_ms = ? WHERE kid = ? AND revoked = 0`
)

// keyPartition is the partition index the single keystore partition seals
// its secrets for (kek binds a sealed secret to its kid and partition).
const keyPartition = 0

// loadKeys reads the partition's keystore. Secrets are in their stored form
// (sealed when a keyring wrote them): open the ones a decision reads with
// the keyring's OpenKid, OpenRecord or OpenKeys (package kek), or with
// openVerifying. list_kids reads no secret, so it answers whatever KEK
// sealed them.
func loadKeys(q txn) (driver.PartitionKeys, error) {
	var k driver.PartitionKeys
	rows, err := q.query(selectKeys)
	if err != nil {
		return k, err
	}
	defer rows.Close()
	for rows.Next() {
		var rec driver.KidRecord
		var secret []byte // nil for a revoked kid
		var exp sql.NullInt64
		if err := rows.Scan(&rec.Kid, &secret, &exp, &rec.Revoked); err != nil {
			return k, err
		}
		rec.Secret = contracts.Secret(secret)
		if exp.Valid {
			rec.ExpiresAtMs = &exp.Int64
			k.Verifying = append(k.Verifying, rec)
		} else {
			r := rec
			k.Current = &r
		}
	}
	return k, rows.Err()
}

// storeKeys writes next over prev: kids that disappeared are deleted, kids
// whose expiry changed (the outgoing current kid) are updated, newly revoked
// kids lose their secret, new kids are inserted with installed_at_ms =
// nowMs. Deletes and updates run before inserts, so the one-current-kid
// index holds at every statement.
func storeKeys(q txn, prev, next driver.PartitionKeys, nowMs int64) error {
	c := driver.DiffKeys(prev, next)
	for _, kid := range c.Deleted {
		if _, err := q.exec(deleteKey, kid); err != nil {
			return err
		}
	}
	for _, rec := range c.Expiry {
		if _, err := q.exec(updateKeyExpiry, nullInt(rec.ExpiresAtMs), rec.Kid); err != nil {
			return err
		}
	}
	for _, rec := range c.Revoked {
		if err := storeRevoked(q, rec); err != nil {
			return err
		}
	}
	for _, rec := range c.Inserted {
		// Inserted kids come from the call's arguments, in plain.
		if _, err := q.exec(insertKey, rec.Kid, q.ring.Seal(rec.Kid, keyPartition, rec.Secret), nowMs, nullInt(rec.ExpiresAtMs)); err != nil {
			return err
		}
	}
	return nil
}

// openVerifying returns k with the secret opened that verifying token at
// nowMs checks the MAC with: the token's kid, when the keystore is initialized and the kid
// is known and usable (driver.CheckToken decides the other cases without
// a secret, so a kid sealed under a KEK no longer configured still answers
// unknown_kid or token_expired). A malformed token opens nothing; the
// decision reports it.
func openVerifying(q txn, k driver.PartitionKeys, token string, nowMs int64) (driver.PartitionKeys, error) {
	t, err := contracts.ParseToken("token", token)
	if err != nil || k.Current == nil {
		return k, nil
	}
	if rec := k.Find(t.Kid); rec != nil && rec.Usable(nowMs) {
		return driver.OpenKid(q.ring, keyPartition, k, t.Kid)
	}
	return k, nil
}

// storeRevoked writes rec, a kid that PlanRevoke just revoked: revoked, its
// expiry set, its secret deleted. Exactly one row must change.
func storeRevoked(q txn, rec driver.KidRecord) error {
	res, err := q.exec(revokeKey, nullInt(rec.ExpiresAtMs), rec.Kid)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("sqlite: revocation of kid %q updated %d rows (%v)", rec.Kid, n, err)
	}
	return nil
}

func nullInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// Seed installs args.Kid as the current kid when the keystore is empty, in
// one write transaction; otherwise it reports already_seeded (with
// same_secret) or already_initialized and writes nothing.
func (b *Backend) Seed(ctx context.Context, args contracts.SeedArgs) (contracts.SeedOutcome, error) {
	var out contracts.SeedOutcome
	err := b.write(ctx, func(q txn, nowMs int64) error {
		k, err := loadKeys(q)
		if err != nil {
			return err
		}
		// same_secret compares the opened secret, so a seed re-run under
		// another KEK is still already_seeded with same_secret true.
		if k, err = driver.OpenKid(q.ring, keyPartition, k, args.Kid); err != nil {
			return err
		}
		next, o, changed := driver.PlanSeed(k, args)
		out = o
		if !changed {
			return nil
		}
		return storeKeys(q, k, next, nowMs)
	})
	if err != nil {
		return contracts.SeedOutcome{}, err
	}
	return out, nil
}

// RotateAll rotates the single partition atomically: expired verifying kids
// are collected, the current kid starts its grace window, args.NewKid becomes
// current. A rotation conflict is reported in the partition's entry; a
// storage failure (contention past the busy timeout, a canceled context) is
// the call's error and changes nothing.
func (b *Backend) RotateAll(ctx context.Context, args contracts.RotateArgs) (contracts.RotateAllResult, error) {
	var entry contracts.RotateEntry
	err := b.write(ctx, func(q txn, nowMs int64) error {
		k, err := loadKeys(q)
		if err != nil {
			return err
		}
		// noop or rotation_conflict compares the opened current secret. A
		// secret that does not open is the call's error, like a storage
		// failure: nothing is decided.
		if k.Current != nil && k.Current.Kid == args.NewKid {
			if k.Current, err = driver.OpenRecord(q.ring, keyPartition, k.Current); err != nil {
				return err
			}
		}
		var next driver.PartitionKeys
		var changed bool
		entry, next, changed = driver.RotatePartition(0, k, args, nowMs)
		if !changed {
			return nil
		}
		return storeKeys(q, k, next, nowMs)
	})
	if err != nil {
		return contracts.RotateAllResult{}, err
	}
	return contracts.RotateAllResult{Entries: []contracts.RotateEntry{entry}}, nil
}

// ListKids lists the current kid and the unexpired verifying kids, from one
// read snapshot.
func (b *Backend) ListKids(ctx context.Context, _ contracts.ListKidsArgs) (contracts.ListKidsResult, error) {
	var res contracts.ListKidsResult
	err := b.read(ctx, func(q txn, nowMs int64) error {
		k, err := loadKeys(q)
		if err != nil {
			return err
		}
		res = contracts.ListKidsResult{Partitions: []contracts.PartitionKids{driver.ListPartition(0, k, nowMs)}}
		return nil
	})
	if err != nil {
		return contracts.ListKidsResult{}, err
	}
	return res, nil
}

// Sign signs args.Message with the current kid (every scope routes to the
// one partition).
func (b *Backend) Sign(ctx context.Context, args contracts.SignArgs) (contracts.SignResult, error) {
	var res contracts.SignResult
	err := b.read(ctx, func(q txn, _ int64) error {
		k, err := loadKeys(q)
		if err != nil {
			return err
		}
		if k.Current, err = driver.OpenRecord(q.ring, keyPartition, k.Current); err != nil {
			return err
		}
		res, err = driver.SignWith(k, args)
		return err
	})
	if err != nil {
		return contracts.SignResult{}, err
	}
	return res, nil
}

// Verify checks args.Token against the keystore at the backend's clock.
func (b *Backend) Verify(ctx context.Context, args contracts.VerifyArgs) (contracts.VerifyResult, error) {
	var res contracts.VerifyResult
	err := b.read(ctx, func(q txn, nowMs int64) error {
		k, err := loadKeys(q)
		if err != nil {
			return err
		}
		if k, err = openVerifying(q, k, args.Token, nowMs); err != nil {
			return err
		}
		res, err = driver.VerifyWith(k, args, nowMs)
		return err
	})
	if err != nil {
		return contracts.VerifyResult{}, err
	}
	return res, nil
}
