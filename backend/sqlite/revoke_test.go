package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
	"github.com/flowfabric/flowfabric-go/kek"
)

// revokedRow reads kid's revoked flag, whether its secret is NULL and its
// expiry, around the driver.
func revokedRow(t testing.TB, b *Backend, kid string) (revoked, noSecret bool, exp sql.NullInt64) {
	t.Helper()
	err := b.db.QueryRow(`SELECT revoked, secret IS NULL, expires_at_ms FROM keystore WHERE kid = ?`, kid).Scan(&revoked, &noSecret, &exp)
	require.NoError(t, err, "keystore row of %s", kid)
	return revoked, noSecret, exp
}

// holdsPart reports whether raw holds any n consecutive bytes of s.
func holdsPart(raw, s []byte, n int) bool {
	for i := 0; i+n <= len(s); i++ {
		if bytes.Contains(raw, s[i:i+n]) {
			return true
		}
	}
	return false
}

// revokeOne revokes kid through e and requires outcome word.
func revokeOne(t testing.TB, e *engine.Engine, kid, word string) {
	t.Helper()
	r, err := e.RevokeKid(context.Background(), contracts.RevokeKidArgs{Kid: kid})
	require.NoError(t, err, "revoke %s", kid)
	require.Len(t, r.Entries, 1)
	require.Nil(t, r.Entries[0].Error, "revoke %s", kid)
	require.Equal(t, contracts.RevokeOutcome{Outcome: word, Kid: kid}, *r.Entries[0].Outcome, "revoke %s", kid)
}

// Given a file (plain or sealed) whose four secrets reached the database
// file, then revoking k1 leaves its row revoked, expired at now − 1 and
// without a secret, and neither the file, its free pages nor its WAL hold
// any 16 bytes of k1's secret in its stored form (or in plain); the other kids' rows are untouched. The
// control turns secure_delete off on the writer connection and logs
// whether the secret survives, the measurement behind the pragma.
func TestRevokeDeletesTheSecret(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		for _, secureDelete := range []bool{true, false} {
			t.Run(fmt.Sprintf("sealed=%v/secure_delete=%v", sealed, secureDelete), func(t *testing.T) {
				clock := newTestClock()
				b, path := openFile(t, WithClock(clock.Now))
				if sealed {
					b.SetKeyring(kek.NewKeyring(testKEK(t, 0x11)))
				}
				if !secureDelete {
					_, err := b.db.Exec(`PRAGMA secure_delete = OFF`)
					require.NoError(t, err)
				}
				e := engine.New(b)
				secrets := seedKids(t, e, 4)
				checkpoint(t, b)
				before := storedKeys(t, b)
				stored := before[1].secret // k1 as stored: plain or sealed
				raw := rawStore(t, path)
				require.True(t, bytes.Contains(raw, stored), "control: the file holds k1's stored form")
				if !sealed {
					require.Equal(t, 4, holding(raw, secrets), "control: the plain file holds every secret")
				}

				b.SetKeyring(nil) // a revocation opens no secret: it needs no KEK
				revokeOne(t, e, "k1", contracts.RevokeRevoked)

				revoked, noSecret, exp := revokedRow(t, b, "k1")
				require.True(t, revoked && noSecret, "k1: revoked = %v, secret NULL = %v", revoked, noSecret)
				require.Equal(t, sql.NullInt64{Int64: clock.Now().UnixMilli() - 1, Valid: true}, exp)
				after := storedKeys(t, b)
				for _, i := range []int{0, 2, 3} {
					require.Equal(t, before[i], after[i], "kid %s changed", before[i].kid)
				}
				raw = rawStore(t, path)
				left := holdsPart(raw, stored, 16) || holdsPart(raw, secrets[1], 16) || holding(raw, secrets[1:2]) != 0
				if !secureDelete {
					t.Logf("without secure_delete, 16 bytes of k1's stored secret survive the revocation and the WAL truncation: %v", left)
					return
				}
				require.False(t, left, "after the revocation the raw file (%d bytes) holds 16 bytes of k1's secret", len(raw))
				if !sealed {
					require.Equal(t, 3, holding(raw, secrets), "the other plain secrets stay")
				}
			})
		}
	}
}

// Given a revoked kid, then the keystore keeps it for good and reads it
// without a secret: the snapshot carries it revoked with its expiry, a
// rewrap neither counts nor touches it, rotations collecting every expired
// kid keep it, and rotate to its name is rotation_conflict.
func TestRevokedKidIsKeptWithoutSecret(t *testing.T) {
	clock := newTestClock()
	b, _ := openFile(t, WithClock(clock.Now))
	e, ctx := engine.New(b, engine.WithKeystoreCache(0)), context.Background()
	seedKids(t, e, 3)
	revokeOne(t, e, "k0", contracts.RevokeRevoked)
	revokeOne(t, e, "k0", contracts.RevokeNoop)

	snap := drivertest.Try(b.KeystoreSnapshot(ctx, 0)).Must(t)
	rec := snap.Keys.Find("k0")
	require.NotNil(t, rec)
	require.True(t, rec.Revoked)
	require.Nil(t, rec.Secret)
	require.Equal(t, clock.Now().UnixMilli()-1, *rec.ExpiresAtMs)

	r := drivertest.Try(b.RewrapSecrets(ctx, kek.NewKeyring(testKEK(t, 0x11)))).Must(t)
	require.Equal(t, contracts.RewrapResult{Partitions: 1, Rewrapped: 2}, r)
	b.SetKeyring(kek.NewKeyring(testKEK(t, 0x11)))
	_, noSecret, _ := revokedRow(t, b, "k0")
	require.True(t, noSecret, "the rewrap gave k0 a secret")

	clock.Advance(2 * time.Hour) // k1 is past its grace
	for i := range 3 {           // collects k1, k2 and n0, never k0
		drivertest.Try(e.RotateAll(ctx, contracts.RotateArgs{NewKid: "n" + strconv.Itoa(i), NewSecret: newSecret(t)})).Must(t)
		clock.Advance(time.Millisecond)
	}
	rows := storedKeys(t, b)
	kids := []string{}
	for _, row := range rows {
		kids = append(kids, row.kid)
	}
	require.Equal(t, []string{"k0", "n1", "n2"}, kids)
	rot := drivertest.Try(e.RotateAll(ctx, contracts.RotateArgs{NewKid: "k0", NewSecret: newSecret(t)})).Must(t)
	drivertest.WantErr(t, rot.Entries[0].Error, contracts.ErrRotationConflict)
	l := drivertest.Try(e.ListKids(ctx)).Must(t)
	for _, v := range l.Partitions[0].Verifying {
		require.NotEqual(t, "k0", v.Kid, "list_kids shows a revoked kid")
	}
}

// The schema refuses a revoked row holding a secret and a live row without
// one: the secret is deleted exactly when the kid is revoked.
func TestRevokedRowHoldsNoSecretBySchema(t *testing.T) {
	b, _ := openFile(t)
	seedKids(t, engine.New(b), 2)
	for _, stmt := range []string{
		`UPDATE keystore SET revoked = 1 WHERE kid = 'k0'`,
		`UPDATE keystore SET secret = NULL WHERE kid = 'k0'`,
		`UPDATE keystore SET revoked = 1, secret = NULL WHERE kid = 'k1'`, // the current kid has no expiry
	} {
		_, err := b.db.Exec(stmt)
		require.Error(t, err, stmt)
	}
}

// Given a reader holding a snapshot across the revocation, then the WAL
// cannot be truncated: RevokeKid commits (the kid's tokens are refused) but
// answers retryable contention, and a re-run once the reader is gone is a
// noop that clears the secret from the WAL.
func TestRevokeWithReaderRetries(t *testing.T) {
	b, path := openFile(t, WithBusyTimeout(50*time.Millisecond))
	e, ctx := engine.New(b, engine.WithKeystoreCache(0)), context.Background()
	secrets := seedKids(t, e, 2)
	msg := []byte("m")
	tok := driver.SignToken("k0", secrets[0], driver.SignatureInput("k0", "x", msg))
	tx, err := b.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	var n int
	require.NoError(t, tx.QueryRow(`SELECT count(*) FROM keystore`).Scan(&n))

	_, err = e.RevokeKid(ctx, contracts.RevokeKidArgs{Kid: "k0"})
	drivertest.WantErr(t, err, contracts.ErrSerializationRetryExhausted)
	require.NotContains(t, err.Error(), secrets[0].Hex())
	_, err = e.Verify(ctx, contracts.VerifyArgs{Scope: "x", Message: msg, Token: tok})
	drivertest.WantErr(t, err, contracts.ErrTokenExpired)

	_ = tx.Rollback()
	revokeOne(t, e, "k0", contracts.RevokeNoop)
	require.Equal(t, 0, holding(rawStore(t, path), secrets[:1]), "after the re-run the file holds k0's secret")
	require.Equal(t, 1, holding(rawStore(t, path), secrets[1:]), "control: k1's plain secret stays")
}

// A store written by schema version 3 upgrades in place: its kids keep
// their secrets, installation times and expiries, none is revoked, tokens
// still verify, and a verifying kid can then be revoked.
func TestUpgradeFromVersion3KeepsTheKeystore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ff.db")
	db := createAtVersion(t, path, 3)
	const grace = startMs + 3_600_000
	for _, stmt := range []string{
		fmt.Sprintf(`INSERT INTO keystore VALUES ('k0', X'%s', %d, %d)`, drivertest.Secret('a').Hex(), startMs-2000, grace),
		fmt.Sprintf(`INSERT INTO keystore VALUES ('k1', X'%s', %d, NULL)`, drivertest.Secret('b').Hex(), startMs-1000),
	} {
		_, err := db.Exec(stmt)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, db.Close())

	clock := conformance.NewClock(startMs)
	b, err := Open(ctx, path, WithClock(clock.Now))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	rows := storedKeys(t, b)
	require.Equal(t, []keyRow{
		{kid: "k0", secret: drivertest.Secret('a'), installedAt: startMs - 2000, expiresAt: sql.NullInt64{Int64: grace, Valid: true}},
		{kid: "k1", secret: drivertest.Secret('b'), installedAt: startMs - 1000},
	}, rows)
	for _, kid := range []string{"k0", "k1"} {
		revoked, _, _ := revokedRow(t, b, kid)
		require.False(t, revoked, "%s revoked by the upgrade", kid)
	}

	e := engine.New(b, engine.WithKeystoreCache(0))
	msg := []byte("m")
	tok := driver.SignToken("k0", drivertest.Secret('a'), driver.SignatureInput("k0", "x", msg))
	drivertest.Try(e.Verify(ctx, contracts.VerifyArgs{Scope: "x", Message: msg, Token: tok})).Must(t)
	revokeOne(t, e, "k0", contracts.RevokeRevoked)
	_, err = e.Verify(ctx, contracts.VerifyArgs{Scope: "x", Message: msg, Token: tok})
	drivertest.WantErr(t, err, contracts.ErrTokenExpired)
	r := drivertest.Try(e.RevokeKid(ctx, contracts.RevokeKidArgs{Kid: "k1"})).Must(t)
	drivertest.WantErr(t, r.Entries[0].Error, contracts.ErrKidIsCurrent)
}
