package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
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

// A role that is no superuser and owns one database (CREATE ROLE ... LOGIN;
// CREATE DATABASE ... OWNER) is enough: it migrates the schema and runs a
// whole cycle, as docs/operations.md promises. One it does not own answers
// auth_failed naming the missing permission.
func TestLeastPrivilegeRoleOwningOneDatabase(t *testing.T) {
	ctx := context.Background()
	admin := connect(t, testenv.PostgresURL(t))
	role := "ff_lp_" + strings.ReplaceAll(driver.NewID()[:8], "-", "")
	if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	db := testenv.NewPostgresDatabase(t) // dropped first: cleanups run last-in first-out
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.User = url.User(role)

	// Not the owner yet: no permission to create the tables.
	_, err = engine.OpenBackend(ctx, withParam(t, u.String(), postgres.ParamMigrate, postgres.MigrateAuto))
	if !errors.Is(err, contracts.ErrAuthFailed) || !strings.Contains(contracts.AsError(err).Detail, "42501") {
		t.Fatalf("migrate as a role without privileges: %v, want auth_failed (SQLSTATE 42501)", err)
	}

	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" OWNER TO "+role); err != nil {
		t.Fatal(err)
	}
	e := engine.New(openURL(t, withParam(t, u.String(), postgres.ParamMigrate, postgres.MigrateAuto)))
	seed(t, e, "kid-a", 0x01)
	if err := suspendAndSignal(ctx, e, "e1"); err != nil {
		t.Fatal(err)
	}
	id, err := claimAndComplete(ctx, e, "w")
	if err != nil || id != "e1" {
		t.Fatalf("claim and complete as the owning role: %q, %v", id, err)
	}
}
