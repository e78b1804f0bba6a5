package boltstore_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/examples/boltstore"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Test KEKs: fixed, so that failures reproduce; they protect nothing.
var (
	kekBytesA = bytes.Repeat([]byte{0x11}, kek.Size)
	kekBytesB = bytes.Repeat([]byte{0x22}, kek.Size)
	kekBytesC = bytes.Repeat([]byte{0x33}, kek.Size)
)

var fx2 = contracts.RotateArgs{NewKid: "k2", NewSecret: contracts.Secret("fedcba9876543210fedcba9876543210"), GraceMs: time.Hour.Milliseconds()}

// kekFile writes a KEK file (64 hex digits and a newline) and returns its
// path.
func kekFile(t *testing.T, name string, key []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func testKey(t *testing.T, key []byte) *kek.Key {
	t.Helper()
	k, err := kek.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// openURL opens an Engine on the bolt file at path with the URL's query
// (lock_timeout, kek_file, kek_previous_file), closed when the test ends.
func openURL(t *testing.T, path string, query url.Values) *engine.Engine {
	t.Helper()
	u := "bolt://" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	e, err := engine.Open(ctx, u)
	if err != nil {
		t.Fatalf("engine.Open: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// holdsSecret reports whether raw holds s as bytes, hex or base64 (the
// keystore document's encoding).
func holdsSecret(raw []byte, s contracts.Secret) bool {
	for _, form := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s)} {
		if bytes.Contains(raw, []byte(form)) {
			return true
		}
	}
	return false
}

// Given a store opened with ?kek_file=A (next to lock_timeout, which the
// driver still reads), then the file holds no secret, survives a reopen
// under A, refuses sign without a KEK (while list_kids answers), opens
// under B with A previous, and Engine.RewrapSecrets moves it to B alone.
func TestKEKFileThroughURL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ff.bolt")
	fileA, fileB := kekFile(t, "a.kek", kekBytesA), kekFile(t, "b.kek", kekBytesB)
	msg := []byte("m")
	tok1 := driver.SignToken(fx.Kid, fx.Secret, driver.SignatureInput(fx.Kid, "", msg))
	tok2 := driver.SignToken(fx2.NewKid, fx2.NewSecret, driver.SignatureInput(fx2.NewKid, "", msg))

	e := openURL(t, path, url.Values{"lock_timeout": {"1s"}, engine.ParamKEKFile: {fileA}})
	if _, err := e.Seed(ctx, fx); err != nil {
		t.Fatal(err)
	}
	if r, err := e.RotateAll(ctx, fx2); err != nil || r.Failed() {
		t.Fatalf("rotate: %+v, %v", r, err)
	}
	_ = e.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if holdsSecret(raw, fx.Secret) || holdsSecret(raw, fx2.NewSecret) {
		t.Fatal("the bolt file sealed under KEK A holds a secret")
	}

	e = openURL(t, path, url.Values{engine.ParamKEKFile: {fileA}})
	if got, err := e.Sign(ctx, contracts.SignArgs{Message: msg}); err != nil || got.Token != tok2 {
		t.Fatalf("sign after reopening under A: %+v, %v", got, err)
	}
	_ = e.Close()

	e = openURL(t, path, nil)
	_, err = e.Sign(ctx, contracts.SignArgs{Message: msg})
	wantErr(t, "sign without a KEK", err, contracts.ErrKEKMismatch)
	if strings.Contains(err.Error(), string(fx2.NewSecret)) {
		t.Fatal("the kek_mismatch error quotes the secret")
	}
	if l, err := e.ListKids(ctx); err != nil || *l.Partitions[0].CurrentKid != fx2.NewKid {
		t.Fatalf("list_kids without a KEK: %+v, %v", l, err)
	}
	_ = e.Close()

	e = openURL(t, path, url.Values{engine.ParamKEKFile: {fileB}, engine.ParamKEKPreviousFile: {fileA}})
	if _, err := e.Verify(ctx, contracts.VerifyArgs{Message: msg, Token: tok1}); err != nil {
		t.Fatalf("verify under B with A previous: %v", err)
	}
	r, err := e.RewrapSecrets(ctx, kek.NewKeyring(testKey(t, kekBytesB)))
	if want := (contracts.RewrapResult{Partitions: 1, Rewrapped: 2}); err != nil || r != want {
		t.Fatalf("rewrap to B: %+v, %v; want %+v", r, err, want)
	}
	_ = e.Close()

	e = openURL(t, path, url.Values{engine.ParamKEKFile: {fileB}})
	for _, tok := range []string{tok1, tok2} {
		if _, err := e.Verify(ctx, contracts.VerifyArgs{Message: msg, Token: tok}); err != nil {
			t.Fatalf("verify under B alone after the rewrap: %v", err)
		}
	}
}

// Given a store with k1 sealed under A and k2 under B, when a Backend
// holding only B rewraps to C, then it fails with kek_mismatch and the file
// is byte for byte as before: the rewrap is one transaction.
func TestRewrapIsOneTransaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ff.bolt")
	b, err := boltstore.Open(ctx, path, boltstore.WithoutSync())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	keyA, keyB, keyC := testKey(t, kekBytesA), testKey(t, kekBytesB), testKey(t, kekBytesC)
	b.SetKeyring(kek.NewKeyring(keyA))
	if _, err := b.Seed(ctx, fx); err != nil {
		t.Fatal(err)
	}
	b.SetKeyring(kek.NewKeyring(keyB, keyA))
	if r, err := b.RotateAll(ctx, fx2); err != nil || r.Failed() {
		t.Fatalf("rotate: %+v, %v", r, err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b.SetKeyring(kek.NewKeyring(keyB))
	_, err = b.RewrapSecrets(ctx, kek.NewKeyring(keyC))
	wantErr(t, "rewrap with KEK A missing", err, contracts.ErrKEKMismatch)
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("a failed rewrap changed the file")
	}

	b.SetKeyring(kek.NewKeyring(keyB, keyA))
	r, err := b.RewrapSecrets(ctx, kek.NewKeyring(keyB))
	if want := (contracts.RewrapResult{Partitions: 1, Rewrapped: 1, Unchanged: 1}); err != nil || r != want {
		t.Fatalf("rewrap of a mixed store: %+v, %v; want %+v", r, err, want)
	}
}

// Given an empty store, then a rewrap counts the one partition and writes
// nothing; on a closed backend it answers backend_closed.
func TestRewrapEmptyAndClosed(t *testing.T) {
	b, err := boltstore.Open(ctx, filepath.Join(t.TempDir(), "ff.bolt"), boltstore.WithoutSync())
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.RewrapSecrets(ctx, kek.NewKeyring(testKey(t, kekBytesA)))
	if want := (contracts.RewrapResult{Partitions: 1}); err != nil || r != want {
		t.Fatalf("rewrap of an empty store: %+v, %v; want %+v", r, err, want)
	}
	_ = b.Close()
	_, err = b.RewrapSecrets(ctx, nil)
	wantErr(t, "rewrap after close", err, contracts.ErrBackendClosed)
}
