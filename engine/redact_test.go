package engine

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// The secret every redaction test hides, in the forms a URL or a DSN
// carries it.
const redactSecret = "hunter2-S3cr3t"

// RedactURL hides the password of the user info, every query parameter
// named like a secret (any letter case), the kek file parameters and the
// secret values of a key/value DSN, and keeps the rest readable.
func TestRedactURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		keep []string // parts that must survive
	}{
		{"postgres://ff:" + redactSecret + "@db:5432/ff?sslmode=require", []string{"postgres://ff:xxxxx@db:5432/ff", "sslmode=require"}},
		{"postgres://db/ff?password=" + redactSecret + "&sslmode=disable", []string{"postgres://db/ff?", "password=xxxxx", "sslmode=disable"}},
		{"postgresql://db/ff?PassWord=" + redactSecret, []string{"PassWord=xxxxx"}},
		{"postgres://db/ff?sslpassword=" + redactSecret + "&sslkey=/etc/k.pem", []string{"sslpassword=xxxxx", "sslkey=/etc/k.pem"}},
		{"postgres://db/ff?pwd=" + redactSecret, []string{"pwd=xxxxx"}},
		{"postgres://db/ff?client_secret=" + redactSecret, []string{"client_secret=xxxxx"}},
		{"redis://cache:6379/0?auth_token=" + redactSecret + "&pool_size=4", []string{"auth_token=xxxxx", "pool_size=4"}},
		{"valkey://:" + redactSecret + "@cache:6379?Token=" + redactSecret, []string{"valkey://:xxxxx@cache:6379", "Token=xxxxx"}},
		{"valkey://cache?pass=" + url.QueryEscape(redactSecret+"&x=y"), []string{"pass=xxxxx"}},
		{"sqlite://./ff.db?kek_file=" + redactSecret, []string{"sqlite://./ff.db", "kek_file=xxxxx"}},
		{"sqlite://./ff.db?kek_previous_file=" + redactSecret, []string{"kek_previous_file=xxxxx"}},
		{"postgres://db/ff#" + redactSecret, []string{"postgres://db/ff#xxxxx"}},
		{"postgres:ff:" + redactSecret + "@db/ff", []string{"postgres:xxxxx@db/ff"}},
		{"host=db port=5432 user=ff password=" + redactSecret + " dbname=ff", []string{"host=db port=5432 user=ff password=xxxxx dbname=ff"}},
		{"host=db password = '" + strings.ReplaceAll(redactSecret, "-", " ") + "' dbname=ff", []string{"host=db password = xxxxx dbname=ff"}},
		{`user=ff password='it\'s ` + redactSecret + `' sslpassword=` + redactSecret, []string{"user=ff password=xxxxx sslpassword=xxxxx"}},
		{"host=db PASSWORD=" + redactSecret, []string{"PASSWORD=xxxxx"}},
		{"host=db password=" + redactSecret + " dangling", []string{"host=db password=xxxxx"}},
		{"postgres://ff:" + redactSecret + "@db:port/ff", []string{"postgres://(unparsable URL, redacted)"}},
		{"postgres://ff:" + redactSecret + "%zz@db/ff", []string{"postgres://(unparsable URL, redacted)"}},
	} {
		got := RedactURL(c.in)
		if strings.Contains(got, redactSecret) || strings.Contains(got, "hunter2") || strings.Contains(got, "S3cr3t") {
			t.Errorf("RedactURL(%q) = %q: the secret shows", c.in, got)
		}
		for _, k := range c.keep {
			if !strings.Contains(got, k) {
				t.Errorf("RedactURL(%q) = %q; want it to contain %q", c.in, got, k)
			}
		}
	}
	// Nothing to hide: the string comes back as written.
	for _, s := range []string{"memory://", "sqlite://./ff.db", "sqlite:///var/lib/ff/ff.db", "sqlite://:memory:",
		"postgres://ff@db/ff?sslmode=require&application_name=x", "/var/lib/ff/ff.db", "valkey://a,b,c?cluster=true", "host=db user=ff"} {
		if got := RedactURL(s); got != s {
			t.Errorf("RedactURL(%q) = %q; want it unchanged", s, got)
		}
	}
}

// A driver that quotes its whole URL in an error (password, query password,
// kek file) does not get it into the Engine's error: OpenBackend passes
// opener errors through RedactError.
func TestOpenBackendRedactsOpenerErrors(t *testing.T) {
	Register("enginetest-careless", func(_ context.Context, u *url.URL) (driver.Backend, error) {
		p, _ := u.User.Password()
		return nil, contracts.ErrBackendUnreachable.With("cannot reach %s (password %s, query %s)", u.String(), p, u.Query().Get("sslpassword"))
	})
	raw := "enginetest-careless://ff:" + redactSecret + "@db/ff?sslpassword=" + redactSecret + "&x=1"
	_, err := Open(context.Background(), raw)
	if !errors.Is(err, contracts.ErrBackendUnreachable) {
		t.Fatalf("err = %v, want backend_unreachable", err)
	}
	if msg := err.Error(); strings.Contains(msg, redactSecret) || !strings.Contains(msg, "enginetest-careless://ff:xxxxx@db/ff") {
		t.Fatalf("error %q: want the URL redacted and no secret", msg)
	}
}

// An unknown scheme, or a key/value DSN where a URL is expected, is named
// redacted: a password in the query or in the DSN does not show.
func TestUnknownSchemeRedactsQueryAndDSN(t *testing.T) {
	for _, raw := range []string{
		"nosuch://db/ff?password=" + redactSecret,
		"nosuch://db/ff?sslpassword=" + redactSecret,
		"host=db user=ff password=" + redactSecret + " dbname=ff",
		"host=db user=ff password='" + redactSecret + " with spaces' dbname=ff",
	} {
		for name, call := range map[string]func() error{
			"Open":    func() error { _, err := Open(context.Background(), raw); return err },
			"Migrate": func() error { _, err := Migrate(context.Background(), raw); return err },
		} {
			err := call()
			if !errors.Is(err, contracts.ErrInvalidInput) {
				t.Fatalf("%s(%q) = %v, want invalid_input", name, raw, err)
			}
			if strings.Contains(err.Error(), redactSecret) {
				t.Errorf("%s(%q): error %q quotes the password", name, raw, err)
			}
		}
	}
	_, err := Open(context.Background(), "host=db password="+redactSecret)
	if !strings.Contains(err.Error(), "key/value DSN") || !strings.Contains(err.Error(), "host=db password=xxxxx") {
		t.Errorf("DSN error %q: want it named redacted and the URL form suggested", err)
	}
}

// A kek_file that cannot be read is not quoted: the value could be a key
// pasted where a path belongs.
func TestOpenBackendDoesNotQuoteKEKFile(t *testing.T) {
	Register("enginetest-kek", func(context.Context, *url.URL) (driver.Backend, error) { return &sealingBackend{}, nil })
	pasted := strings.Repeat("ab", 32)
	_, err := Open(context.Background(), "enginetest-kek://x?kek_file="+pasted)
	if !errors.Is(err, contracts.ErrInvalidInput) || strings.Contains(err.Error(), pasted) || !strings.Contains(err.Error(), ParamKEKFile) {
		t.Fatalf("err = %v: want invalid_input naming kek_file, without its value", err)
	}
	bad := filepath.Join(t.TempDir(), "not-a-key-"+redactSecret)
	if err := os.WriteFile(bad, []byte("nonsense"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), "enginetest-kek://x?kek_file="+url.QueryEscape(bad))
	if err == nil || strings.Contains(err.Error(), redactSecret) {
		t.Fatalf("err = %v: want an error without the file's name", err)
	}
}

// RedactError leaves errors without secrets alone and never changes the
// error it is given.
func TestRedactErrorCopies(t *testing.T) {
	orig := contracts.ErrInternal.With("failed at db with " + redactSecret)
	got := RedactError(orig, "postgres://u:"+redactSecret+"@db/ff")
	if strings.Contains(got.Error(), redactSecret) || !strings.Contains(orig.Detail, redactSecret) {
		t.Fatalf("got %v, original %v: want a redacted copy", got, orig)
	}
	if !errors.Is(got, contracts.ErrInternal) {
		t.Fatalf("got %v: the kind and code changed", got)
	}
	plain := contracts.ErrInternal.With("nothing secret")
	if RedactError(plain, "postgres://db/ff") != error(plain) {
		t.Fatal("an error without secrets was copied")
	}
	if RedactError(nil, "x") != nil {
		t.Fatal("nil error")
	}
}
