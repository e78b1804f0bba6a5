package postgres_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

// revoke revokes kid through e and requires the one entry to carry outcome
// word.
func revoke(t *testing.T, e *engine.Engine, kid, word string) {
	t.Helper()
	r, err := e.RevokeKid(context.Background(), contracts.RevokeKidArgs{Kid: kid})
	require.NoError(t, err, "revoke %s", kid)
	require.Len(t, r.Entries, 1)
	require.Nil(t, r.Entries[0].Error, "revoke %s", kid)
	require.Equal(t, contracts.RevokeOutcome{Outcome: word, Kid: kid}, *r.Entries[0].Outcome, "revoke %s", kid)
}

// keyRow is one row of ff_keys as stored.
type keyRow struct {
	secret      []byte
	expiresAtMs *int64
	revoked     bool
}

// readKeyRow reads kid's row of ff_keys around the driver.
func readKeyRow(t *testing.T, plainURL, kid string) keyRow {
	t.Helper()
	var r keyRow
	err := connect(t, plainURL).QueryRow(context.Background(),
		`SELECT secret, expires_at_ms, revoked FROM ff_keys WHERE kid = $1`, kid).Scan(&r.secret, &r.expiresAtMs, &r.revoked)
	require.NoError(t, err, "read the row of %s", kid)
	return r
}

// Given kid-a sealed under a KEK and rotated out, when it is revoked, then
// its row keeps the kid, revoked, with an expiry just before the
// revocation and no secret: the raw schema holds neither the secret (raw or
// hex) nor the sealed form the row held before, while kid-b's sealed form
// is still there. A rewrap then moves kid-b only, and leaves kid-a's row
// without a secret.
func TestRevokedKidRowHoldsNoSecret(t *testing.T) {
	ctx := context.Background()
	kA, kB := testKEK(t, 0x5a), testKEK(t, 0xa5)
	e, _, plain := sealedEngine(t, kek.NewKeyring(kA))
	seed(t, e, "kid-a", 0x11)
	rotate(t, e, "kid-b", 0x22)
	sealedA := storedSecret(t, plain, "kid-a")
	require.True(t, kek.IsSealed(sealedA), "positive control: kid-a is stored sealed")
	before := time.Now().UnixMilli()

	revoke(t, e, "kid-a", contracts.RevokeRevoked)

	row := readKeyRow(t, plain, "kid-a")
	require.True(t, row.revoked)
	require.Nil(t, row.secret, "the revoked row holds no secret")
	require.NotNil(t, row.expiresAtMs)
	require.GreaterOrEqual(t, *row.expiresAtMs, before-1-1000, "expiry now - 1 (server clock, within a second of ours)")
	require.Less(t, *row.expiresAtMs, time.Now().UnixMilli()+1000)
	raw := rawSchema(t, plain)
	for name, form := range map[string][]byte{
		"the secret":              secret(0x11),
		"the secret in hex":       []byte(hex.EncodeToString(secret(0x11))),
		"the sealed form it held": []byte(hex.EncodeToString(sealedA)),
	} {
		require.False(t, bytes.Contains(raw, form), "the raw schema holds %s of the revoked kid", name)
	}
	require.True(t, bytes.Contains(raw, []byte(hex.EncodeToString(storedSecret(t, plain, "kid-b")))),
		"positive control: the raw schema holds kid-b's sealed form")

	res, err := e.RewrapSecrets(ctx, kek.NewKeyring(kB, kA))
	require.NoError(t, err)
	require.Equal(t, 1, res.Rewrapped, "only kid-b has a secret to rewrap")
	require.Equal(t, 0, res.Unchanged)
	require.Nil(t, readKeyRow(t, plain, "kid-a").secret)
}

// Given a store sealed under a KEK, a process without any KEK still
// revokes (it opens no secret) and lists the kids.
func TestRevokeOpensNoSecret(t *testing.T) {
	e, b, _ := sealedEngine(t, kek.NewKeyring(testKEK(t, 0x5a)))
	seed(t, e, "kid-a", 0x11)
	rotate(t, e, "kid-b", 0x22)
	b.SetKeyring(nil)
	revoke(t, e, "kid-a", contracts.RevokeRevoked)
	l, err := e.ListKids(context.Background())
	require.NoError(t, err)
	require.Equal(t, "kid-b", *l.Partitions[0].CurrentKid)
	require.Empty(t, l.Partitions[0].Verifying)
}

// Given the same sequence of calls on the memory reference and on
// Postgres, the envelopes and errors are identical: a kid revoked, then
// seeded again (already_seeded, not the same secret), rotated to
// (rotation_conflict), verified and used by a suspend replay (expired),
// revoked again (noop), the current kid refused (kid_is_current), rotated
// past (kept, not collected) and rotated to again (rotation_conflict).
func TestRevokeMatchesTheReference(t *testing.T) {
	mem := engine.New(memory.New(), engine.WithKeystoreCache(0))
	pg, _ := newEngine(t)
	require.Equal(t, revokeStory(t, mem), revokeStory(t, pg))
}

// revokeStory runs the calls of TestRevokeMatchesTheReference on e and
// returns each call's result or error as JSON (of list_kids, the current
// kid only: expiries differ between runs).
func revokeStory(t *testing.T, e *engine.Engine) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	add := func(v any, err error) {
		if err != nil {
			v = contracts.AsError(err)
		}
		b, mErr := json.Marshal(v)
		require.NoError(t, mErr)
		out = append(out, string(b))
	}
	seed(t, e, "kid-a", 0x11)
	sig, err := e.Sign(ctx, contracts.SignArgs{Scope: "s", Message: []byte("m")})
	require.NoError(t, err)
	sus, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-1", Condition: contracts.ConditionAny,
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, IdempotencyKey: "idem-1"})
	require.NoError(t, err)
	rotate(t, e, "kid-b", 0x22)
	add(e.RevokeKid(ctx, contracts.RevokeKidArgs{Kid: "kid-a"}))
	add(e.Seed(ctx, contracts.SeedArgs{Kid: "kid-a", Secret: secret(0x11)}))
	add(e.RotateAll(ctx, contracts.RotateArgs{NewKid: "kid-a", NewSecret: secret(0x11), GraceMs: 1000}))
	add(e.Verify(ctx, contracts.VerifyArgs{Scope: "s", Message: []byte("m"), Token: sig.Token}))
	add(e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-1", WaitpointID: sus.Waitpoints[0].WaitpointID,
		Token: sus.Waitpoints[0].Token, Name: "go"}))
	_, err = e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-1", Condition: contracts.ConditionAny,
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, IdempotencyKey: "idem-1"})
	add(nil, err)
	add(e.RevokeKid(ctx, contracts.RevokeKidArgs{Kid: "kid-a"}))
	add(e.RevokeKid(ctx, contracts.RevokeKidArgs{Kid: "kid-b"}))
	r, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: "kid-c", NewSecret: secret(0x33), GraceMs: 0})
	require.NoError(t, err)
	require.Equal(t, 0, r.Entries[0].Outcome.GCCount, "kid-a is revoked, not collected")
	time.Sleep(2 * time.Millisecond)
	r, err = e.RotateAll(ctx, contracts.RotateArgs{NewKid: "kid-d", NewSecret: secret(0x44), GraceMs: 0})
	require.NoError(t, err)
	require.Equal(t, 1, r.Entries[0].Outcome.GCCount, "kid-b is collected, kid-a is kept")
	add(e.RotateAll(ctx, contracts.RotateArgs{NewKid: "kid-a", NewSecret: secret(0x11), GraceMs: 1000}))
	l, err := e.ListKids(ctx)
	require.NoError(t, err)
	add(l.Partitions[0].CurrentKid, nil)
	return out
}

// Given two Engines on one schema with hour-long keystore caches, a's
// holding kid-a, a revocation through b reaches a's cache by the push of
// migration 0003's trigger: a refuses kid-a's signature with token_expired
// within pushDeadline (its TTL is an hour). A noop revocation writes
// nothing, so it notifies nothing.
func TestRevokePushedToAnotherEngine(t *testing.T) {
	ctx := context.Background()
	w := newWatched(t)
	seed(t, w.b, "kid-a", 1)
	w.listener(t)
	sig, err := w.a.Sign(ctx, contracts.SignArgs{Scope: "s", Message: []byte("m")})
	require.NoError(t, err)
	w.seen(t, "kid-b", 2) // rotates through b; a's cache now holds kid-b and kid-a
	verify := func() error {
		_, err := w.a.Verify(ctx, contracts.VerifyArgs{Scope: "s", Message: []byte("m"), Token: sig.Token})
		return err
	}
	require.NoError(t, verify(), "a's cache holds kid-a")

	revoke(t, w.b, "kid-a", contracts.RevokeRevoked)
	start := time.Now()
	for verify() == nil {
		require.Less(t, time.Since(start), pushDeadline, "engine a still accepts kid-a (cache TTL 1h)")
		time.Sleep(100 * time.Microsecond)
	}
	t.Logf("push latency of a revocation: %.2f ms", ms(time.Since(start)))
	require.ErrorIs(t, verify(), contracts.ErrTokenExpired)

	l := connect(t, w.admin)
	_, err = l.Exec(ctx, "LISTEN ff_keystore")
	require.NoError(t, err)
	revoke(t, w.b, "kid-a", contracts.RevokeNoop)
	revoke(t, w.b, "kid-unknown", contracts.RevokeNoop)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if n, err := l.WaitForNotification(short); err == nil {
		t.Fatalf("a noop revocation notified %q", n.Payload)
	}
}

// Given kid-a rotated out, when 16 revocations of it run at once with a
// rotation, then none fails (keystore writers queue behind the table lock),
// exactly one answers revoked and the rest noop.
func TestConcurrentRevocationsRevokeOnce(t *testing.T) {
	e, _ := newEngine(t)
	seed(t, e, "kid-a", 0x01)
	rotate(t, e, "kid-b", 0x02)
	const n = 16
	results := make([]contracts.RevokeKidResult, n)
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = e.RevokeKid(context.Background(), contracts.RevokeKidArgs{Kid: "kid-a"})
		})
	}
	wg.Go(func() {
		_, errs[n] = e.RotateAll(context.Background(), contracts.RotateArgs{NewKid: "kid-c", NewSecret: secret(0x03), GraceMs: 60_000})
	})
	wg.Wait()
	count := map[string]int{}
	for i := range n {
		require.NoError(t, errs[i], "revocation %d", i)
		require.Nil(t, results[i].Entries[0].Error, "revocation %d", i)
		count[results[i].Entries[0].Outcome.Outcome]++
	}
	require.NoError(t, errs[n], "the rotation")
	require.Equal(t, map[string]int{contracts.RevokeRevoked: 1, contracts.RevokeNoop: n - 1}, count)
}

// Given a schema at version 0005 holding a current and a verifying kid,
// when 0006 is applied, then neither is revoked, both keep their secrets,
// the verifying kid's token verifies until it is revoked, and the database
// refuses a row whose secret and revoked flag disagree.
func TestMigration0006UpgradesKeysAt0005(t *testing.T) {
	ctx := context.Background()
	plain := schemaURL(t)
	c := connect(t, plain)
	migrateTo(t, c, 5)
	_, err := c.Exec(ctx, `INSERT INTO ff_keys (kid, secret, installed_at_ms, expires_at_ms) VALUES
		('kid-a', $1, 0, $3), ('kid-b', $2, 0, NULL)`, []byte(secret(1)), []byte(secret(2)), time.Now().UnixMilli()+3_600_000)
	require.NoError(t, err)

	applied, err := engine.Migrate(ctx, plain)
	require.NoError(t, err)
	require.Equal(t, []string{"0006_revoked_kids", "0007_claim_order", "0008_compact_rows"}, applied)

	for kid, fill := range map[string]byte{"kid-a": 1, "kid-b": 2} {
		row := readKeyRow(t, plain, kid)
		require.False(t, row.revoked, kid)
		require.Equal(t, []byte(secret(fill)), row.secret, kid)
	}
	e := engine.New(openURL(t, plain), engine.WithKeystoreCache(0))
	tok := driver.SignToken("kid-a", secret(1), driver.SignatureInput("kid-a", "s", []byte("m")))
	_, err = e.Verify(ctx, contracts.VerifyArgs{Scope: "s", Message: []byte("m"), Token: tok})
	require.NoError(t, err)
	revoke(t, e, "kid-a", contracts.RevokeRevoked)
	_, err = e.Verify(ctx, contracts.VerifyArgs{Scope: "s", Message: []byte("m"), Token: tok})
	require.ErrorIs(t, err, contracts.ErrTokenExpired)

	for what, stmt := range map[string]string{
		"a revoked row with a secret":     `UPDATE ff_keys SET revoked = true WHERE kid = 'kid-b'`,
		"a row without a secret":          `UPDATE ff_keys SET secret = NULL WHERE kid = 'kid-b'`,
		"a revoked current kid":           `UPDATE ff_keys SET expires_at_ms = NULL WHERE kid = 'kid-a'`,
		"an unrevoked row without secret": `UPDATE ff_keys SET revoked = false WHERE kid = 'kid-a'`,
	} {
		_, err := c.Exec(ctx, stmt)
		require.ErrorContains(t, err, "ff_keys_revoked_check", what)
	}
}
