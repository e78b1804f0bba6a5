package engine

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// sealingBackend records the URL its opener saw and the keyrings installed.
type sealingBackend struct {
	driver.Backend

	seen    string
	rings   []*kek.Keyring
	closed  bool
	rewraps []*kek.Keyring
}

func (b *sealingBackend) SetKeyring(r *kek.Keyring) { b.rings = append(b.rings, r) }

func (b *sealingBackend) RewrapSecrets(_ context.Context, to *kek.Keyring) (contracts.RewrapResult, error) {
	b.rewraps = append(b.rewraps, to)
	return contracts.RewrapResult{Partitions: 1, Rewrapped: 2}, nil
}

func (b *sealingBackend) Close() error { b.closed = true; return nil }

// plainBackend cannot seal.
type plainBackend struct {
	driver.Backend

	closed bool
}

func (b *plainBackend) Close() error { b.closed = true; return nil }

var lastOpened struct {
	sealing *sealingBackend
	plain   *plainBackend
}

func init() {
	Register("enginetest-sealing", func(_ context.Context, u *url.URL) (driver.Backend, error) {
		lastOpened.sealing = &sealingBackend{seen: u.String()}
		return lastOpened.sealing, nil
	})
	Register("enginetest-plain", func(_ context.Context, u *url.URL) (driver.Backend, error) {
		lastOpened.plain = &plainBackend{}
		return lastOpened.plain, nil
	})
}

func writeKEKFile(t *testing.T, fill byte) (string, string) {
	t.Helper()
	raw := bytes.Repeat([]byte{fill}, kek.Size)
	p := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(p, []byte(hex.EncodeToString(raw)), 0o600); err != nil {
		t.Fatal(err)
	}
	k, _ := kek.New(raw)
	return p, k.Fingerprint()
}

func TestOpenBackendInstallsTheURLKeyring(t *testing.T) {
	a, fpA := writeKEKFile(t, 1)
	b, fpB := writeKEKFile(t, 2)
	_, err := OpenBackend(context.Background(), "enginetest-sealing://host/db?x=1&kek_file="+url.QueryEscape(a)+"&kek_previous_file="+url.QueryEscape(b))
	if err != nil {
		t.Fatal(err)
	}
	got := lastOpened.sealing
	if strings.Contains(got.seen, "kek") || !strings.Contains(got.seen, "x=1") {
		t.Fatalf("the opener saw %q: want the kek parameters removed and the others kept", got.seen)
	}
	if len(got.rings) != 1 || got.rings[0].String() != "kek "+fpA+", "+fpB {
		t.Fatalf("installed keyrings %v, want one with %s primary and %s previous", got.rings, fpA, fpB)
	}

	if _, err := OpenBackend(context.Background(), "enginetest-sealing://host/db"); err != nil || len(lastOpened.sealing.rings) != 0 {
		t.Fatalf("without kek_file: err %v, keyrings installed %d; want none", err, len(lastOpened.sealing.rings))
	}
}

func TestOpenBackendRefusesKEKItCannotHonour(t *testing.T) {
	a, _ := writeKEKFile(t, 1)
	_, err := OpenBackend(context.Background(), "enginetest-plain://h?kek_file="+url.QueryEscape(a))
	if !errors.Is(err, contracts.ErrInvalidInput) || !strings.Contains(err.Error(), "cannot seal secrets at rest") {
		t.Fatalf("err = %v, want invalid_input: the driver cannot seal", err)
	}
	if !lastOpened.plain.closed {
		t.Fatal("the refused backend was not closed")
	}
	for name, q := range map[string]string{
		"missing file":           "kek_file=" + url.QueryEscape(filepath.Join(t.TempDir(), "none")),
		"previous without file":  "kek_previous_file=" + url.QueryEscape(a),
		"kek_file given twice":   "kek_file=" + url.QueryEscape(a) + "&kek_file=" + url.QueryEscape(a),
		"previous file missing":  "kek_file=" + url.QueryEscape(a) + "&kek_previous_file=%2Fnonexistent",
		"kek_file empty":         "kek_file=",
		"kek_file not a kek":     "kek_file=" + url.QueryEscape(os.Args[0]),
		"kek_previous_file junk": "kek_file=" + url.QueryEscape(a) + "&kek_previous_file=" + url.QueryEscape(os.Args[0]),
	} {
		lastOpened.sealing = nil
		_, err := OpenBackend(context.Background(), "enginetest-sealing://h?"+q)
		if !errors.Is(err, contracts.ErrInvalidInput) || !strings.Contains(err.Error(), "kek") {
			t.Errorf("%s: err = %v, want invalid_input naming the kek parameter", name, err)
		}
		if lastOpened.sealing != nil {
			t.Errorf("%s: the driver was opened before the KEK was loaded", name)
		}
	}
}

func TestEngineRewrapInstallsTheNewKeyring(t *testing.T) {
	b := &sealingBackend{}
	to := kek.NewKeyring(mustKEK(t, 3))
	r, err := New(b, WithKeystoreCache(0)).RewrapSecrets(context.Background(), to)
	if err != nil || r.Rewrapped != 2 {
		t.Fatalf("RewrapSecrets = %+v, %v", r, err)
	}
	if len(b.rewraps) != 1 || b.rewraps[0] != to || len(b.rings) != 1 || b.rings[0] != to {
		t.Fatalf("rewraps %v, installed %v: want one rewrap to the keyring, then it installed", b.rewraps, b.rings)
	}
	_, err = New(&plainBackend{}, WithKeystoreCache(0)).RewrapSecrets(context.Background(), to)
	if !errors.Is(err, contracts.ErrInvalidInput) {
		t.Fatalf("rewrap on a backend that cannot seal: %v", err)
	}
}

func mustKEK(t *testing.T, fill byte) *kek.Key {
	k, err := kek.New(bytes.Repeat([]byte{fill}, kek.Size))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
