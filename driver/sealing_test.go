package driver

import (
	"bytes"
	"errors"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/kek"
)

func sec(fill byte) contracts.Secret { return contracts.Secret(bytes.Repeat([]byte{fill}, 32)) }

func TestPartitionKeysHelpers(t *testing.T) {
	a, b := kek.NewKeyring(key(t, 1)), kek.NewKeyring(key(t, 2))
	exp := int64(1000)
	stored := PartitionKeys{
		Current:   &KidRecord{Kid: "cur", Secret: a.Seal("cur", 3, sec(0xc))},
		Verifying: []KidRecord{{Kid: "old", Secret: a.Seal("old", 3, sec(0xd)), ExpiresAtMs: &exp}},
	}
	orig := stored.Verifying[0].Secret

	// OpenKid opens only the named kid and leaves the input alone.
	k, err := OpenKid(a, 3, stored, "old")
	if err != nil || !bytes.Equal(k.Verifying[0].Secret, sec(0xd)) || !bytes.Equal(k.Current.Secret, stored.Current.Secret) {
		t.Fatalf("OpenKid: %v", err)
	}
	if !bytes.Equal(stored.Verifying[0].Secret, orig) {
		t.Fatal("OpenKid modified its argument")
	}

	// OpenForCheck does not open what the check answers without a secret.
	for name, c := range map[string]struct {
		init bool
		rec  *KidRecord
		now  int64
	}{"uninitialized": {false, stored.Current, 0}, "unknown": {true, nil, 0}, "expired": {true, &stored.Verifying[0], 2000}} {
		got, err := OpenForCheck(b, 3, c.init, c.rec, c.now) // b cannot open: must not try
		if err != nil || got != c.rec {
			t.Errorf("%s: OpenForCheck = %v, %v; want the record unopened", name, got, err)
		}
	}
	if _, err := OpenForCheck(b, 3, true, &stored.Verifying[0], 500); !errors.Is(err, contracts.ErrKEKMismatch) {
		t.Fatalf("OpenForCheck of a usable kid under another KEK: %v", err)
	}

	// OpenKeys opens all or fails.
	if all, err := OpenKeys(a, 3, stored); err != nil || !bytes.Equal(all.Current.Secret, sec(0xc)) || *all.Verifying[0].ExpiresAtMs != exp {
		t.Fatalf("OpenKeys: %v", err)
	}
	if _, err := OpenKeys(b, 3, stored); !errors.Is(err, contracts.ErrKEKMismatch) {
		t.Fatalf("OpenKeys under another KEK: %v", err)
	}

	// SealNew keeps the stored form of kept kids and seals new ones.
	next := PartitionKeys{
		Current:   &KidRecord{Kid: "new", Secret: sec(0xe)},
		Verifying: []KidRecord{{Kid: "cur", Secret: sec(0xc), ExpiresAtMs: &exp}},
	}
	out := SealNew(b, 3, stored, next)
	if !bytes.Equal(out.Verifying[0].Secret, stored.Current.Secret) {
		t.Fatal("SealNew changed the stored form of a kept kid")
	}
	if !bytes.Equal(out.Current.Secret, b.Seal("new", 3, sec(0xe))) {
		t.Fatal("SealNew did not seal the inserted kid under its keyring")
	}

	// RewrapKeys counts and re-seals; a re-run changes nothing.
	moved, n, same, err := RewrapKeys(a, b, 3, stored)
	if err != nil || n != 2 || same != 0 {
		t.Fatalf("RewrapKeys A→B = %d, %d, %v", n, same, err)
	}
	if _, n, same, err = RewrapKeys(b, b, 3, moved); err != nil || n != 0 || same != 2 {
		t.Fatalf("RewrapKeys B→B = %d, %d, %v", n, same, err)
	}
	if plain, _, _, err := RewrapKeys(b, nil, 3, moved); err != nil || !bytes.Equal(plain.Current.Secret, sec(0xc)) {
		t.Fatalf("RewrapKeys B→plain: %v", err)
	}
	if _, _, _, err := RewrapKeys(b, nil, 3, stored); !errors.Is(err, contracts.ErrKEKMismatch) {
		t.Fatalf("RewrapKeys with a keyring that cannot open: %v", err)
	}
}

func key(t testing.TB, fill byte) *kek.Key {
	t.Helper()
	k, err := kek.New(bytes.Repeat([]byte{fill}, kek.Size))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
