package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// Given a store in use, when its schema is dropped under the running
// Engine, then the next ping (what /readyz calls) and every operation
// answer unavailable / store_reset, not retryable, instead of an
// internal_error or a keystore that looks empty.
func TestDroppedSchemaIsAStoreReset(t *testing.T) {
	plain := schemaURL(t)
	e := engine.New(openURL(t, withParam(t, plain, postgres.ParamMigrate, postgres.MigrateAuto)), engine.WithKeystoreCache(0))
	seed(t, e, "kid-a", 0x01)
	ctx := context.Background()
	s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "e1", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Ping(ctx); err != nil {
		t.Fatalf("ping before: %v", err)
	}

	schema := searchPath(t, plain)
	if _, err := connect(t, testenv.PackageDatabase(t)).Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Fatal(err)
	}

	w := s.Waitpoints[0]
	for name, call := range map[string]func() error{
		"ping": func() error { return e.Ping(ctx) },
		"sign": func() error {
			_, err := e.Sign(ctx, contracts.SignArgs{Scope: "s", Message: []byte("m")})
			return err
		},
		"deliver_signal": func() error {
			_, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e1", WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"})
			return err
		},
		"claim": func() error {
			_, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 1000})
			return err
		},
	} {
		err := call()
		var ce *contracts.Error
		if !errors.Is(err, contracts.ErrStoreReset) || !errors.As(err, &ce) || ce.Retryable || !strings.Contains(ce.Detail, "tables are gone") {
			t.Errorf("%s after the schema was dropped: %v; want unavailable/store_reset", name, err)
		}
	}
}

// searchPath returns the search_path of a schema URL.
func searchPath(t *testing.T, rawURL string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.RuntimeParams["search_path"]
}
