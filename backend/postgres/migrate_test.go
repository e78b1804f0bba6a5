package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/migrations"
)

// Environment of the re-executed test binary (helper processes).
const (
	envHelper    = "FF_PG_HELPER"     // what to do: "migrate" or "claim"
	envHelperURL = "FF_PG_HELPER_URL" // the backend URL
	envHelperAt  = "FF_PG_HELPER_AT"  // start time, Unix nanoseconds
)

// helperProcess, in a test binary re-executed as a helper process, waits
// for the agreed start time, runs its job, prints the result as JSON and
// exits. In a normal test run it returns false.
func helperProcess() bool {
	job := os.Getenv(envHelper)
	if job == "" {
		return false
	}
	u := os.Getenv(envHelperURL)
	at, _ := strconv.ParseInt(os.Getenv(envHelperAt), 10, 64)
	time.Sleep(time.Until(time.Unix(0, at)))
	var result any
	var err error
	switch job {
	case "migrate":
		result, err = engine.Migrate(context.Background(), u)
	case "claim":
		result, err = claimAll(u, 4)
	default:
		err = fmt.Errorf("unknown helper job %q", job)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(result)
	os.Exit(0)
	return true
}

// runHelpers starts n helper processes for job on rawURL, released together
// at a moment after they started, and decodes each one's output into a new
// T. startAt is that moment, for goroutines of the test to join in.
func runHelpers[T any](t *testing.T, job, rawURL string, n int) (results func() []T, startAt time.Time) {
	t.Helper()
	at := time.Now().Add(2 * time.Second) // after the helper processes started
	outs := make([]T, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envHelper+"="+job, envHelperURL+"="+rawURL,
				envHelperAt+"="+strconv.FormatInt(at.UnixNano(), 10))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("%s process %d: %v: %s", job, i, err, stderr.String())
				return
			}
			if err := json.Unmarshal(out, &outs[i]); err != nil {
				t.Errorf("%s process %d: output %q: %v", job, i, out, err)
			}
		})
	}
	return func() []T { wg.Wait(); return outs }, at
}

func allMigrations(t *testing.T) []migrations.Migration {
	t.Helper()
	all, err := migrations.Postgres()
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// Given an empty schema, when two processes and two goroutines of this one
// run `ff migrate` (engine.Migrate) at the same moment, then all four
// succeed and every migration is applied and recorded exactly once.
func TestTwoProcessesMigrateAtOnce(t *testing.T) {
	u := schemaURL(t)
	results, at := runHelpers[[]string](t, "migrate", u, 2)
	var (
		mu      sync.Mutex
		applied []string
		wg      sync.WaitGroup
	)
	for i := range 2 {
		wg.Go(func() {
			time.Sleep(time.Until(at))
			names, err := engine.Migrate(context.Background(), u)
			if err != nil {
				t.Errorf("goroutine %d: %v", i, err)
				return
			}
			mu.Lock()
			applied = append(applied, names...)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, names := range results() {
		applied = append(applied, names...)
	}
	all := allMigrations(t)
	if len(applied) != len(all) {
		t.Fatalf("applied %v in all, want each of the %d migrations once", applied, len(all))
	}
	var recorded int
	if err := connect(t, u).QueryRow(context.Background(), `SELECT count(*) FROM ff_schema_migrations`).Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded != len(all) {
		t.Fatalf("%d migrations recorded, want %d", recorded, len(all))
	}
	openURL(t, u) // no longer pending
}

// Given a schema that was never migrated, Open without ff_migrate=auto
// fails naming `ff migrate`; after engine.Migrate it opens; with
// ff_migrate=auto it migrates by itself.
func TestOpenRefusesPendingMigrations(t *testing.T) {
	ctx := context.Background()
	u := schemaURL(t)
	_, err := engine.OpenBackend(ctx, u)
	if err == nil || !strings.Contains(err.Error(), "ff migrate") || !strings.Contains(err.Error(), "ff_migrate=auto") {
		t.Fatalf("open of an unmigrated schema: got %v, want an error naming `ff migrate`", err)
	}
	var ce *contracts.Error
	if !errors.As(err, &ce) {
		t.Fatalf("not a contract error: %#v", err)
	}
	names, err := engine.Migrate(ctx, u)
	if err != nil || len(names) != len(allMigrations(t)) {
		t.Fatalf("migrate: %v %v", names, err)
	}
	if again, err := engine.Migrate(ctx, u); err != nil || len(again) != 0 {
		t.Fatalf("second migrate: %v %v, want nothing applied", again, err)
	}
	openURL(t, u)

	auto := withParam(t, schemaURL(t), postgres.ParamMigrate, postgres.MigrateAuto)
	openURL(t, auto)
}

// Given a migrated schema, Open refuses it once it records a version the
// binary does not know, or a checksum that differs from the binary's; with
// ff_migrate=auto too, and so does `ff migrate`.
func TestOpenRefusesMismatchedSchema(t *testing.T) {
	cases := map[string]struct{ tamper, want string }{
		"NewerSchema":     {`INSERT INTO ff_schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')`, "newer than this binary"},
		"ChangedChecksum": {`UPDATE ff_schema_migrations SET checksum = 'edited' WHERE version = 1`, "was changed after it was applied"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			u := schemaURL(t)
			if _, err := engine.Migrate(ctx, u); err != nil {
				t.Fatal(err)
			}
			if _, err := connect(t, u).Exec(ctx, c.tamper); err != nil {
				t.Fatal(err)
			}
			for _, open := range []string{u, withParam(t, u, postgres.ParamMigrate, postgres.MigrateAuto)} {
				if _, err := engine.OpenBackend(ctx, open); !errors.Is(err, contracts.ErrSchemaMismatch) || !strings.Contains(err.Error(), c.want) {
					t.Errorf("open %s: got %v, want schema_mismatch containing %q", open, err, c.want)
				}
			}
			if _, err := engine.Migrate(ctx, u); !errors.Is(err, contracts.ErrSchemaMismatch) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("migrate: got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// An unknown ff_migrate value is invalid input naming the parameter.
func TestOpenRejectsUnknownMigrateValue(t *testing.T) {
	_, err := engine.OpenBackend(context.Background(), "postgres://127.0.0.1:1/x?ff_migrate=always")
	if !errors.Is(err, contracts.ErrInvalidInput) || !strings.Contains(err.Error(), "ff_migrate") {
		t.Fatalf("got %v, want validation / invalid_input naming ff_migrate", err)
	}
}

// The one-current-kid invariant is the database's: a second current row is
// refused even when written behind the driver's back.
func TestDatabaseEnforcesOneCurrentKid(t *testing.T) {
	e, u := newEngine(t)
	seed(t, e, "kid-a", 0x01)
	_, err := connect(t, u).Exec(context.Background(), `INSERT INTO ff_keys VALUES ('kid-b', '\x00', 0, NULL)`)
	if err == nil || !strings.Contains(err.Error(), "ff_keys_one_current") {
		t.Fatalf("second current row: got %v, want a violation of ff_keys_one_current", err)
	}
}

// postgresql:// opens the same driver and migrates like postgres://.
func TestPostgresqlSchemeAlias(t *testing.T) {
	u := schemaURL(t)
	alias := postgres.SchemeAlias + strings.TrimPrefix(u, postgres.Scheme)
	if alias == u {
		t.Fatalf("%s does not start with %s", u, postgres.Scheme)
	}
	if names, err := engine.Migrate(context.Background(), alias); err != nil || len(names) != len(allMigrations(t)) {
		t.Fatalf("migrate %s: %v %v", alias, names, err)
	}
	e := engine.New(openURL(t, alias))
	if caps := e.Capabilities(); caps != (driver.Capabilities{Partitions: 1, Persistent: true, SharedAcrossProcesses: true}) {
		t.Fatalf("capabilities %+v", caps)
	}
	seed(t, e, "kid-a", 1)
}
