package kek_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/kek"
)

func key(t testing.TB, fill byte) *kek.Key {
	t.Helper()
	k, err := kek.New(bytes.Repeat([]byte{fill}, kek.Size))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var secret = bytes.Repeat([]byte{0xAB}, 32)

func TestSealOpenRoundTrip(t *testing.T) {
	r := kek.NewKeyring(key(t, 1))
	for _, n := range []int{contracts.MinSecretBytes, 48, contracts.MaxSecretBytes} {
		s := bytes.Repeat([]byte{0x5C}, n)
		stored := r.Seal("k1", 7, s)
		if !kek.IsSealed(stored) {
			t.Fatalf("%d-byte secret: stored form not recognised as sealed (%d bytes)", n, len(stored))
		}
		if bytes.Contains(stored, s[:16]) {
			t.Fatalf("%d-byte secret: stored form contains secret bytes", n)
		}
		got, err := r.Open("k1", 7, stored)
		if err != nil || !bytes.Equal(got, s) {
			t.Fatalf("%d-byte secret: Open = %v, %v", n, got.Hex() == hex.EncodeToString(s), err)
		}
	}
}

func TestSealIsDeterministicPerKidAndPartition(t *testing.T) {
	r := kek.NewKeyring(key(t, 1))
	a, b := r.Seal("k1", 3, secret), r.Seal("k1", 3, secret)
	if !bytes.Equal(a, b) {
		t.Fatal("the same secret, kid and partition sealed to different bytes: stores could not compare stored forms")
	}
	for name, other := range map[string][]byte{
		"another partition": r.Seal("k1", 4, secret),
		"another kid":       r.Seal("k2", 3, secret),
		"another secret":    r.Seal("k1", 3, bytes.Repeat([]byte{0xAC}, 32)),
	} {
		if bytes.Equal(a[:len(a)-16], other[:len(other)-16]) || bytes.Equal(a[4+8:4+8+12], other[4+8:4+8+12]) {
			t.Errorf("%s: same nonce or ciphertext as the original", name)
		}
	}
}

func TestOpenBindsKidAndPartition(t *testing.T) {
	r := kek.NewKeyring(key(t, 1))
	stored := r.Seal("k1", 3, secret)
	for _, c := range []struct {
		kid string
		p   int
	}{{"k2", 3}, {"k1", 4}, {"k1", 0}} {
		_, err := r.Open(c.kid, c.p, stored)
		if !errors.Is(err, contracts.ErrKEKMismatch) || !strings.Contains(err.Error(), "altered, or sealed for another kid or partition") {
			t.Errorf("Open(%q, %d) of k1/3's secret: err = %v, want kek_mismatch naming a moved secret", c.kid, c.p, err)
		}
	}
}

func TestOpenDetectsTampering(t *testing.T) {
	r := kek.NewKeyring(key(t, 1))
	stored := r.Seal("k1", 0, secret)
	for i := 4 + 8; i < len(stored); i++ { // every byte after the fingerprint
		bad := bytes.Clone(stored)
		bad[i] ^= 0x01
		if _, err := r.Open("k1", 0, bad); !errors.Is(err, contracts.ErrKEKMismatch) {
			t.Fatalf("byte %d flipped: err = %v, want kek_mismatch", i, err)
		}
	}
}

func TestOpenNamesTheMissingKEK(t *testing.T) {
	old, cur := key(t, 1), key(t, 2)
	stored := kek.NewKeyring(old).Seal("k1", 0, secret)

	_, err := (*kek.Keyring)(nil).Open("k1", 0, stored)
	if !errors.Is(err, contracts.ErrKEKMismatch) || !strings.Contains(err.Error(), old.Fingerprint()) || !strings.Contains(err.Error(), "no kek_file is configured") {
		t.Fatalf("no keyring: err = %v", err)
	}
	_, err = kek.NewKeyring(cur).Open("k1", 0, stored)
	if !errors.Is(err, contracts.ErrKEKMismatch) || !strings.Contains(err.Error(), old.Fingerprint()) || !strings.Contains(err.Error(), cur.Fingerprint()) {
		t.Fatalf("another kek: err = %v", err)
	}
	got, err := kek.NewKeyring(cur, old).Open("k1", 0, stored)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("old kek as previous: err = %v", err)
	}
}

func TestPlainSecretsPassThrough(t *testing.T) {
	var none *kek.Keyring
	stored := none.Seal("k1", 0, secret)
	if !bytes.Equal(stored, secret) || &stored[0] == &secret[0] {
		t.Fatal("nil keyring: Seal must return a copy of the secret")
	}
	for _, r := range []*kek.Keyring{none, kek.NewKeyring(key(t, 1))} {
		got, err := r.Open("k1", 0, secret)
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("%v: plain secret: err = %v", r, err)
		}
	}
	if _, err := none.Open("k1", 0, []byte("short")); !errors.Is(err, contracts.ErrInternal) {
		t.Fatalf("5-byte stored secret: err = %v, want internal_error", err)
	}
}

func TestSealedUnderPrimary(t *testing.T) {
	old, cur := key(t, 1), key(t, 2)
	r := kek.NewKeyring(cur, old)
	var none *kek.Keyring
	cases := []struct {
		ring   *kek.Keyring
		stored []byte
		want   bool
	}{
		{r, r.Seal("k", 0, secret), true},
		{r, kek.NewKeyring(old).Seal("k", 0, secret), false},
		{r, secret, false},
		{none, secret, true},
		{none, r.Seal("k", 0, secret), false},
	}
	for i, c := range cases {
		if got := c.ring.SealedUnderPrimary(c.stored); got != c.want {
			t.Errorf("case %d: SealedUnderPrimary = %v, want %v", i, got, c.want)
		}
	}
	if fp := kek.SealedFingerprint(r.Seal("k", 0, secret)); fp != cur.Fingerprint() {
		t.Errorf("SealedFingerprint = %q, want %q", fp, cur.Fingerprint())
	}
}

func TestParseAndLoadFile(t *testing.T) {
	raw := bytes.Repeat([]byte{0x11}, 32)
	hexForm := hex.EncodeToString(raw)
	want := key(t, 0x11).Fingerprint()
	for name, data := range map[string][]byte{
		"hex":             []byte(hexForm),
		"hex, newline":    []byte(hexForm + "\n"),
		"hex, upper case": []byte(strings.ToUpper(hexForm) + "\r\n"),
		"raw bytes":       raw,
	} {
		k, err := kek.Parse("kek_file", data)
		if err != nil || k.Fingerprint() != want {
			t.Errorf("%s: Parse = %v, %v", name, k, err)
		}
	}
	for name, data := range map[string][]byte{
		"empty":      nil,
		"short hex":  []byte(hexForm[:62]),
		"long hex":   []byte(hexForm + "00"),
		"not hex":    []byte(strings.Repeat("zz", 32)),
		"31 raw":     raw[:31],
		"passphrase": []byte("correct horse battery staple"),
	} {
		_, err := kek.Parse("kek_file", data)
		if !errors.Is(err, contracts.ErrInvalidInput) || !strings.Contains(err.Error(), "kek_file") {
			t.Errorf("%s: err = %v, want invalid_input naming kek_file", name, err)
		}
		if len(data) > 4 && strings.Contains(fmt.Sprint(err), string(data)) {
			t.Errorf("%s: the error quotes the file's content", name)
		}
	}

	dir := t.TempDir()
	good := filepath.Join(dir, "kek")
	if err := os.WriteFile(good, []byte(hexForm+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := kek.LoadFile("kek_file", good); err != nil || k.Fingerprint() != want {
		t.Fatalf("LoadFile: %v, %v", k, err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("not-a-key-but-secret-text"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, frag := range map[string]string{bad: bad + ": must hold", filepath.Join(dir, "missing"): "cannot read"} {
		_, err := kek.LoadFile("kek_file", path)
		if !errors.Is(err, contracts.ErrInvalidInput) || !strings.Contains(err.Error(), frag) || strings.Contains(err.Error(), "secret-text") {
			t.Errorf("LoadFile(%s): err = %v, want invalid_input containing %q", path, err, frag)
		}
	}
}

func TestKeyNeverPrints(t *testing.T) {
	raw := bytes.Repeat([]byte{0x42}, 32)
	k, err := kek.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	r := kek.NewKeyring(k)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		for _, v := range []any{k, r, *r} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, hex.EncodeToString(raw)) || strings.Contains(out, string(raw)) || strings.Contains(strings.ToLower(out), "4242424242") {
				t.Errorf("fmt %s of %T prints key bytes: %s", verb, v, out)
			}
		}
	}
}

func FuzzOpen(f *testing.F) {
	r := kek.NewKeyring(key(f, 1))
	f.Add("k1", 0, r.Seal("k1", 0, secret))
	f.Add("k1", 1, secret)
	f.Add("", 0, []byte("ffs1"))
	f.Fuzz(func(t *testing.T, kid string, p int, stored []byte) {
		got, err := r.Open(kid, p, stored)
		if err != nil {
			if ce := contracts.AsError(err); ce.Code != contracts.CodeKEKMismatch && ce.Code != contracts.CodeInternal {
				t.Fatalf("Open: unexpected error %v", err)
			}
			return
		}
		if kek.IsSealed(stored) && !bytes.Equal(r.Seal(kid, p, got), stored) {
			t.Fatal("a sealed form that opens did not come from Seal")
		}
	})
}
