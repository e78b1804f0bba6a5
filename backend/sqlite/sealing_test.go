package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
	"github.com/flowfabric/flowfabric-go/kek"
)

// testKEK returns a fixed KEK: failures reproduce, and it protects nothing.
func testKEK(t testing.TB, fill byte) *kek.Key {
	t.Helper()
	k, err := kek.New(bytes.Repeat([]byte{fill}, kek.Size))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rawStore returns the database file with its -wal and -shm files, read
// around the driver.
func rawStore(t testing.TB, path string) []byte {
	t.Helper()
	var raw []byte
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		data, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		raw = append(raw, data...)
	}
	return raw
}

// holding counts the secrets the raw store holds as bytes or as hex.
func holding(raw []byte, secrets []contracts.Secret) int {
	n := 0
	for _, s := range secrets {
		h := hex.EncodeToString(s)
		if bytes.Contains(raw, s) || bytes.Contains(raw, []byte(h)) || bytes.Contains(raw, []byte(strings.ToUpper(h))) {
			n++
		}
	}
	return n
}

// keyRow is one keystore row as stored.
type keyRow struct {
	kid         string
	secret      []byte
	installedAt int64
	expiresAt   sql.NullInt64
}

// storedKeys reads the keystore rows around the decisions.
func storedKeys(t testing.TB, b *Backend) []keyRow {
	t.Helper()
	rows, err := b.db.Query(`SELECT kid, secret, installed_at_ms, expires_at_ms FROM keystore ORDER BY kid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []keyRow
	for rows.Next() {
		var r keyRow
		if err := rows.Scan(&r.kid, &r.secret, &r.installedAt, &r.expiresAt); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameKeyRows requires the rows to differ at most in their secrets.
func sameKeyRows(t testing.TB, what string, a, b []keyRow) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d kids, then %d", what, len(a), len(b))
	}
	for i := range a {
		if a[i].kid != b[i].kid || a[i].installedAt != b[i].installedAt || a[i].expiresAt != b[i].expiresAt {
			t.Fatalf("%s: kid %q changed beyond its secret", what, a[i].kid)
		}
	}
}

// seedKids seeds k0 and rotates to k1..k(n-1) with an hour of grace, all
// kids remembered; it returns their secrets.
func seedKids(t testing.TB, e *engine.Engine, n int) []contracts.Secret {
	t.Helper()
	ctx := context.Background()
	var secrets []contracts.Secret
	for i := range n {
		s := newSecret(t)
		secrets = append(secrets, s)
		kid := "k" + strconv.Itoa(i)
		var err error
		if i == 0 {
			_, err = e.Seed(ctx, contracts.SeedArgs{Kid: kid, Secret: s})
		} else {
			_, err = e.RotateAll(ctx, contracts.RotateArgs{NewKid: kid, NewSecret: s, GraceMs: time.Hour.Milliseconds()})
		}
		if err != nil {
			t.Fatalf("install %s: %v", kid, err)
		}
	}
	return secrets
}

// checkpoint moves the WAL into the database file, as SQLite's automatic
// checkpoints eventually do.
func checkpoint(t testing.TB, b *Backend) {
	t.Helper()
	if _, err := b.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
}

// Given a file sealed under a KEK from its first write, then every stored
// secret is in sealed form, every operation works, and the file, its WAL
// and its -shm hold no secret as bytes or hex; without a KEK they do (the
// control that the scan sees what is stored).
func TestSealedFileHoldsNoSecret(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "sealed"}[sealed], func(t *testing.T) {
			b, path := openFile(t)
			if sealed {
				b.SetKeyring(kek.NewKeyring(testKEK(t, 0x11)))
			}
			e, ctx := engine.New(b, engine.WithKeystoreCache(0)), context.Background()
			secrets := seedKids(t, e, 4)
			s := drivertest.Try(e.Suspend(ctx, drivertest.SuspendArgs("e1", "a"))).Must(t)
			d := drivertest.Try(e.DeliverSignal(ctx, drivertest.DeliverArgs(s, 0, ""))).Must(t)
			if !d.Resumed {
				t.Fatalf("deliver = %+v", d)
			}
			snap := drivertest.Try(b.KeystoreSnapshot(ctx, 0)).Must(t)
			if !snap.Keys.Current.Secret.Equal(secrets[3]) || len(snap.Keys.Verifying) != 3 {
				t.Fatal("snapshot: not the opened secrets")
			}
			for _, r := range storedKeys(t, b) {
				if kek.IsSealed(r.secret) != sealed {
					t.Fatalf("kid %s: stored sealed = %v, want %v", r.kid, !sealed, sealed)
				}
			}
			want := 0
			if !sealed {
				want = len(secrets)
			}
			if got := holding(rawStore(t, path), secrets); got != want {
				t.Fatalf("raw file holds %d of %d secrets, want %d", got, len(secrets), want)
			}
		})
	}
}

// Given a file sealed under KEK A, then under KEK B or no KEK sign, verify,
// suspend, deliver, the snapshot and a rewrap fail with kek_mismatch (no
// secret in the detail) and change nothing; list_kids answers, and a kid
// whose secret is not needed (unknown, expired) answers as without a KEK.
func TestKEKMismatch(t *testing.T) {
	clock := newTestClock()
	b, _ := openFile(t, WithClock(clock.Now))
	ringA := kek.NewKeyring(testKEK(t, 0x11))
	b.SetKeyring(ringA)
	e, ctx := engine.New(b, engine.WithKeystoreCache(0)), context.Background()
	secrets := seedKids(t, e, 2)
	msg := []byte("m")
	tok := drivertest.Try(e.Sign(ctx, contracts.SignArgs{Scope: "x", Message: msg})).Must(t).Token
	s := drivertest.Try(e.Suspend(ctx, drivertest.SuspendArgs("e1", "a"))).Must(t)
	before := storedKeys(t, b)

	for name, ring := range map[string]*kek.Keyring{"no KEK": nil, "KEK B": kek.NewKeyring(testKEK(t, 0x22))} {
		b.SetKeyring(ring)
		mismatch := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, contracts.ErrKEKMismatch) {
				t.Fatalf("%s: %s: %v, want kek_mismatch", name, what, err)
			}
			for _, sec := range secrets {
				if strings.Contains(err.Error(), sec.Hex()) {
					t.Fatalf("%s: %s: the error quotes a secret", name, what)
				}
			}
		}
		_, err := e.Sign(ctx, contracts.SignArgs{Scope: "x", Message: msg})
		mismatch("sign", err)
		_, err = e.Verify(ctx, contracts.VerifyArgs{Scope: "x", Message: msg, Token: tok})
		mismatch("verify", err)
		_, err = e.Suspend(ctx, drivertest.SuspendArgs("e2", "a"))
		mismatch("suspend", err)
		_, err = e.DeliverSignal(ctx, drivertest.DeliverArgs(s, 0, ""))
		mismatch("deliver", err)
		_, err = b.KeystoreSnapshot(ctx, 0)
		mismatch("snapshot", err)
		_, err = b.RewrapSecrets(ctx, kek.NewKeyring(testKEK(t, 0x33))) // must open to re-seal
		mismatch("rewrap", err)
		if _, err := e.ListKids(ctx); err != nil {
			t.Fatalf("%s: list_kids: %v", name, err)
		}
		_, err = e.Verify(ctx, contracts.VerifyArgs{Scope: "x", Message: msg, Token: driver.SignToken("nope", secrets[0], driver.SignatureInput("nope", "x", msg))})
		drivertest.WantErr(t, err, contracts.ErrUnknownKid)
		sameKeyRows(t, name, before, storedKeys(t, b))
	}
	clock.Advance(2 * time.Hour) // k0 is past its grace: no secret needed to refuse its token
	_, err := e.Verify(ctx, contracts.VerifyArgs{Scope: "x", Message: msg, Token: driver.SignToken("k0", secrets[0], driver.SignatureInput("k0", "x", msg))})
	drivertest.WantErr(t, err, contracts.ErrTokenExpired)

	b.SetKeyring(ringA)
	drivertest.Try(e.DeliverSignal(ctx, drivertest.DeliverArgs(s, 0, ""))).Must(t)
	if !bytes.Equal(storedKeys(t, b)[1].secret, before[1].secret) {
		t.Fatal("the refused calls changed a stored secret")
	}
}

// newTestClock returns a manual clock at a fixed start.
func newTestClock() *manualClock { return &manualClock{ms: 1767225600000} }

type manualClock struct {
	mu sync.Mutex
	ms int64
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.UnixMilli(c.ms)
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ms += d.Milliseconds()
}

// Given a plain file with 10 kids, then RewrapSecrets counts and re-seals
// every secret, a re-run changes nothing, a rewrap to another KEK (opened
// through the installed one) and back to plain moves them all, and no kid,
// installed_at or expiry ever changes. Seeding and rotating again under a
// keyring with the other KEK primary compare the opened secrets.
func TestRewrapCounts(t *testing.T) {
	b, _ := openFile(t)
	e, ctx := engine.New(b, engine.WithKeystoreCache(0)), context.Background()
	secrets := seedKids(t, e, 10)
	before := storedKeys(t, b)
	ringA, ringB := kek.NewKeyring(testKEK(t, 0x11)), kek.NewKeyring(testKEK(t, 0x22))
	rewrap := func(to *kek.Keyring, rewrapped, unchanged int) {
		t.Helper()
		r, err := b.RewrapSecrets(ctx, to)
		if want := (contracts.RewrapResult{Partitions: 1, Rewrapped: rewrapped, Unchanged: unchanged}); err != nil || r != want {
			t.Fatalf("RewrapSecrets(%v) = %+v, %v; want %+v", to, r, err, want)
		}
		sameKeyRows(t, "rewrap", before, storedKeys(t, b))
		for _, row := range storedKeys(t, b) {
			if !to.SealedUnderPrimary(row.secret) {
				t.Fatalf("after RewrapSecrets(%v): kid %s not in its form", to, row.kid)
			}
		}
	}
	rewrap(ringA, 10, 0)
	rewrap(ringA, 0, 10)
	b.SetKeyring(ringA)
	rewrap(ringB, 10, 0)
	b.SetKeyring(kek.NewKeyring(ringB.Primary(), ringA.Primary()))
	seed := drivertest.Try(e.Seed(ctx, contracts.SeedArgs{Kid: "k0", Secret: secrets[0]})).Must(t)
	if seed.SameSecret == nil || !*seed.SameSecret {
		t.Fatalf("re-seed under another keyring = %+v, want same_secret true", seed)
	}
	rot := drivertest.Try(e.RotateAll(ctx, contracts.RotateArgs{NewKid: "k9", NewSecret: secrets[9], GraceMs: 1})).Must(t)
	if rot.Entries[0].Outcome == nil || rot.Entries[0].Outcome.Outcome != contracts.RotateNoop {
		t.Fatalf("re-run rotation under another keyring = %+v, want noop", rot.Entries[0])
	}
	rewrap(nil, 10, 0)
	for i, row := range storedKeys(t, b) {
		if !bytes.Equal(row.secret, before[i].secret) {
			t.Fatalf("kid %s: the rewrap to plain does not give back the bytes stored without a KEK", row.kid)
		}
	}
}

// Given a plain file whose secrets reached the database file, then
// RewrapSecrets leaves none of them in the file, its free pages or its WAL
// (secure_delete and the WAL truncation). The control turns secure_delete
// off on the writer connection and logs how many survive, the measurement
// behind both.
func TestRewrapLeavesNoPreviousForm(t *testing.T) {
	for _, secureDelete := range []bool{true, false} {
		t.Run("secure_delete="+strconv.FormatBool(secureDelete), func(t *testing.T) {
			b, path := openFile(t)
			if !secureDelete {
				if _, err := b.db.Exec(`PRAGMA secure_delete = OFF`); err != nil {
					t.Fatal(err)
				}
			}
			secrets := seedKids(t, engine.New(b), 10)
			checkpoint(t, b)
			if got := holding(rawStore(t, path), secrets); got != len(secrets) {
				t.Fatalf("control: the plain file holds %d of %d secrets", got, len(secrets))
			}
			drivertest.Try(b.RewrapSecrets(context.Background(), kek.NewKeyring(testKEK(t, 0x11)))).Must(t)
			got := holding(rawStore(t, path), secrets)
			if !secureDelete {
				t.Logf("without secure_delete, %d of %d plain secrets survive the rewrap and the WAL truncation", got, len(secrets))
				return
			}
			if got != 0 {
				t.Fatalf("after the rewrap the file holds %d of %d secrets in plain", got, len(secrets))
			}
		})
	}
}

// Given a reader holding a snapshot across the rewrap, then the WAL cannot
// be truncated: RewrapSecrets commits but answers retryable contention, and
// a re-run once the reader is gone finds every secret rewrapped and clears
// their previous form from the WAL.
func TestRewrapWithReaderRetries(t *testing.T) {
	b, path := openFile(t, WithBusyTimeout(50*time.Millisecond))
	secrets := seedKids(t, engine.New(b), 3)
	ctx := context.Background()
	tx, err := b.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM keystore`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	ring := kek.NewKeyring(testKEK(t, 0x11))
	_, err = b.RewrapSecrets(ctx, ring)
	drivertest.WantErr(t, err, contracts.ErrSerializationRetryExhausted)
	_ = tx.Rollback()
	r := drivertest.Try(b.RewrapSecrets(ctx, ring)).Must(t)
	if r != (contracts.RewrapResult{Partitions: 1, Rewrapped: 0, Unchanged: 3}) {
		t.Fatalf("re-run = %+v", r)
	}
	if got := holding(rawStore(t, path), secrets); got != 0 {
		t.Fatalf("after the re-run the file holds %d secrets in plain", got)
	}
}

// SetKeyring may run while operations do (run with -race): each operation
// uses one keyring throughout, and every keyring here opens the store.
func TestSetKeyringConcurrent(t *testing.T) {
	b, _ := openFile(t)
	a, c := testKEK(t, 0x11), testKEK(t, 0x22)
	b.SetKeyring(kek.NewKeyring(a))
	e, ctx := engine.New(b, engine.WithKeystoreCache(0)), context.Background()
	seedKids(t, e, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 50 {
			b.SetKeyring([]*kek.Keyring{kek.NewKeyring(a), kek.NewKeyring(c, a)}[i%2])
		}
	})
	for range 50 {
		drivertest.Try(e.Sign(ctx, contracts.SignArgs{Scope: "x", Message: []byte("m")})).Must(t)
	}
	wg.Wait()
}

// Given a sqlite URL with kek_file, then engine.Open removes it before the
// driver's URL parser (which refuses query parameters) and installs the
// keyring: the seeded secret is stored sealed under that KEK.
func TestURLKEKFile(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "kek")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("11", kek.Size)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e, err := engine.Open(ctx, "sqlite://"+filepath.Join(dir, "ff.db")+"?kek_file="+url.QueryEscape(keyFile))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	drivertest.Try(e.Seed(ctx, contracts.SeedArgs{Kid: "k0", Secret: newSecret(t)})).Must(t)
	rows := storedKeys(t, e.Backend().(*Backend))
	if fp := kek.SealedFingerprint(rows[0].secret); fp != testKEK(t, 0x11).Fingerprint() {
		t.Fatalf("stored under kek %q, want the kek_file's %s", fp, testKEK(t, 0x11).Fingerprint())
	}
}
