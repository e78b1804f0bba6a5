package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// Opening with a role the server does not know is refused with
// unavailable / auth_failed (SQLSTATE 28000), not retryable, quoting the
// server's message but neither the URL nor its password. (The throw-away
// test server uses trust authentication, so a wrong password for an
// existing role cannot be tested here: trust never asks for it; 28P01 is
// mapped by the same branch.)
func TestAuthFailedUnknownRole(t *testing.T) {
	u, err := url.Parse(schemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	const password = "pw-not-to-be-echoed-7f3a"
	u.User = url.UserPassword("nosuchrole", password)
	b, err := engine.OpenBackend(context.Background(), u.String())
	if err == nil {
		defer b.Close()
		err = b.Ping(context.Background())
	}
	if !errors.Is(err, contracts.ErrAuthFailed) {
		t.Fatalf("open as an unknown role: %v, want unavailable / auth_failed", err)
	}
	ce := contracts.AsError(err)
	if ce.Kind != contracts.KindUnavailable || ce.Retryable {
		t.Fatalf("kind %v retryable %v, want unavailable, not retryable", ce.Kind, ce.Retryable)
	}
	for _, secret := range []string{password, u.Host, "postgres://"} {
		if strings.Contains(ce.Error(), secret) {
			t.Fatalf("the error quotes %q: %s", secret, ce.Error())
		}
	}
	if !strings.Contains(ce.Detail, "28000") {
		t.Fatalf("detail %q does not name SQLSTATE 28000", ce.Detail)
	}
	t.Logf("%v", ce)
}
