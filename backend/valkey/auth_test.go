package valkey

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// openOrPing opens rawURL and pings it; it returns the first error (the
// backend, if opened, is closed when t ends).
func openOrPing(t *testing.T, rawURL string) error {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(context.Background(), u)
	if err != nil {
		return err
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.Ping(context.Background())
}

// wantAuthFailed checks that err is unavailable / auth_failed, not
// retryable, and that neither its text nor its detail holds any of secrets.
func wantAuthFailed(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if !errors.Is(err, contracts.ErrAuthFailed) {
		t.Fatalf("got %v, want unavailable / auth_failed", err)
	}
	ce := contracts.AsError(err)
	if ce.Kind != contracts.KindUnavailable || ce.Retryable {
		t.Fatalf("got kind %v retryable %v, want unavailable, not retryable", ce.Kind, ce.Retryable)
	}
	for _, s := range secrets {
		if strings.Contains(ce.Detail, s) || strings.Contains(ce.Error(), s) {
			t.Fatalf("the error quotes a password: %q", ce.Error())
		}
	}
	t.Logf("%v", ce)
}

// A server that requires a password refuses the driver opened without one
// or with a wrong one: unavailable / auth_failed, naming no password.
func TestAuthFailedWrongOrMissingPassword(t *testing.T) {
	s := startPrivateServer(t, true)
	wrong := randomToken(t)
	prefix := testenv.KeyPrefix(t)
	t.Run("NoPassword", func(t *testing.T) {
		wantAuthFailed(t, openOrPing(t, backendURL(t, s.url(""), 4, prefix)), s.password)
	})
	t.Run("WrongPassword", func(t *testing.T) {
		wantAuthFailed(t, openOrPing(t, backendURL(t, s.url(":"+wrong), 4, prefix)), s.password, wrong)
	})
	t.Run("WrongUserPassword", func(t *testing.T) {
		wantAuthFailed(t, openOrPing(t, backendURL(t, s.url("default:"+wrong), 4, prefix)), s.password, wrong)
	})
	t.Run("RightPassword", func(t *testing.T) {
		if err := openOrPing(t, backendURL(t, s.url(":"+s.password), 4, prefix)); err != nil {
			t.Fatalf("with the password: %v", err)
		}
	})
}

// An ACL user that may not run EVALSHA (or EVAL) gets unavailable /
// auth_failed (NOPERM) from an operation that runs a script.
func TestAuthFailedNoPermission(t *testing.T) {
	s := startPrivateServer(t, false)
	admin := s.client()
	defer admin.Close()
	pw := randomToken(t)
	if err := admin.Do(context.Background(), "ACL", "SETUSER", "limited", "on", ">"+pw,
		"~*", "&*", "+@all", "-evalsha", "-eval").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	u, err := url.Parse(backendURL(t, s.url("limited:"+pw), 4, testenv.KeyPrefix(t)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(context.Background(), u)
	if err != nil {
		t.Fatalf("open as limited: %v", err)
	}
	defer b.Close()
	if err := b.Ping(context.Background()); err != nil {
		t.Fatalf("ping as limited: %v", err)
	}
	r, err := b.RotateAll(context.Background(), contracts.RotateArgs{NewKid: "kid-a", NewSecret: secret(1), GraceMs: 1000})
	if err == nil {
		if len(r.Entries) == 0 {
			t.Fatalf("rotate_all as limited: no error and no entries")
		}
		for _, e := range r.Entries {
			if e.Error == nil {
				t.Fatalf("partition %d: %+v, want auth_failed", e.Partition, e)
			}
		}
		err = r.Entries[0].Error
	}
	wantAuthFailed(t, err, pw)
	if !strings.Contains(contracts.AsError(err).Detail, "NOPERM") {
		t.Fatalf("detail %q does not quote the server's NOPERM", contracts.AsError(err).Detail)
	}
}
