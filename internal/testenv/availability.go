package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// Environment variables naming the servers tests run against.
const (
	// EnvPostgresURL is the base URL of a PostgreSQL server whose user may
	// create and drop databases, e.g.
	// postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable.
	EnvPostgresURL = "FF_TEST_POSTGRES_URL"
	// EnvValkeyURL is the URL of a standalone Valkey (or Redis) server, e.g.
	// redis://127.0.0.1:6380/0.
	EnvValkeyURL = "FF_TEST_VALKEY_URL"
	// EnvValkeyClusterURL is the URL of a Valkey (or Redis) cluster, e.g.
	// valkey+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003.
	EnvValkeyClusterURL = "FF_TEST_VALKEY_CLUSTER_URL"
	// EnvPostgresPoolerURL is the base URL of a PgBouncer in transaction
	// mode in front of the server of EnvPostgresURL that forwards every
	// database name (a "*" entry), e.g.
	// postgres://postgres@127.0.0.1:6433/postgres?sslmode=disable.
	EnvPostgresPoolerURL = "FF_TEST_POSTGRES_POOLER_URL"
)

// dockerProbeTimeout bounds how long the search for a Docker engine may take,
// so that machines without one skip (or fail) quickly.
const dockerProbeTimeout = 5 * time.Second

// InCI reports whether the tests run under continuous integration, that is
// whether the environment variable CI holds a true value ("true", "1", ...).
// Under CI a missing server fails a test instead of skipping it.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// missingServerAction is what a test does when no server is available.
type missingServerAction int

const (
	actionSkip missingServerAction = iota
	actionFail
)

// missingServer decides what a test does when envVar is unset and no Docker
// engine answered (dockerErr says why), and returns the message to report.
// Outside CI the test is skipped; under CI it fails.
func missingServer(envVar string, inCI bool, dockerErr error) (missingServerAction, string) {
	msg := fmt.Sprintf("testenv: no server: set %s (or run `make test`, which starts ephemeral servers)", envVar)
	switch {
	case errors.Is(dockerErr, errNoDockerFallback):
		msg += "; it has no container fallback"
	case dockerErr != nil:
		msg += fmt.Sprintf("; no Docker engine for testcontainers: %v", dockerErr)
	}
	if inCI {
		return actionFail, msg + "; CI=true, so this is a failure, not a skip"
	}
	return actionSkip, msg
}

// reportMissingServer skips or fails t, as decided by missingServer.
func reportMissingServer(t testing.TB, envVar string, dockerErr error) {
	t.Helper()
	action, msg := missingServer(envVar, InCI(), dockerErr)
	if action == actionFail {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// errNoDockerFallback is reported for servers that have no container fallback.
var errNoDockerFallback = errors.New("no container fallback for this server")

// dockerAvailable probes for a Docker engine once per process. It never
// panics (testcontainers-go panics when it cannot find a Docker host) and
// gives up after dockerProbeTimeout.
var dockerAvailable = sync.OnceValue(func() error {
	done := make(chan error, 1)
	go func() { done <- probeDocker() }()
	select {
	case err := <-done:
		return err
	case <-time.After(dockerProbeTimeout):
		return fmt.Errorf("no answer from a Docker engine within %s", dockerProbeTimeout)
	}
})

func probeDocker() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	provider, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return err
	}
	defer provider.Close()
	ctx, cancel := context.WithTimeout(context.Background(), dockerProbeTimeout)
	defer cancel()
	return provider.Health(ctx)
}

// containers holds the containers this process started, terminated by Main.
var containers struct {
	mu   sync.Mutex
	list []testcontainers.Container
}

func rememberContainer(c testcontainers.Container) {
	containers.mu.Lock()
	defer containers.mu.Unlock()
	containers.list = append(containers.list, c)
}

// terminateContainers stops every container this process started. Without
// Main, testcontainers' reaper removes them when the process exits.
func terminateContainers() error {
	containers.mu.Lock()
	defer containers.mu.Unlock()
	var errs []error
	for _, c := range containers.list {
		errs = append(errs, testcontainers.TerminateContainer(c))
	}
	containers.list = nil
	return errors.Join(errs...)
}
