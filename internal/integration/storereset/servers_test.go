// Package storereset tests a store that loses its data under running
// processes (docs/spec.md §6.1): a Valkey or Redis server without
// persistence killed with SIGKILL and restarted empty on the same port,
// under an Engine with the HTTP API, and under the real ff serve.
package storereset

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/flowfabric/flowfabric-go/backend/valkey" // valkey://, redis://
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// family is one server family.
type family struct{ name, bin string }

var families = []family{{"Valkey", "valkey-server"}, {"Redis", "redis-server"}}

// kvServer is a private server without persistence (testenv.KVServer with
// --save "" --appendonly no), so that the test can kill it with SIGKILL and
// start it again, empty, on the same port.
type kvServer struct{ *testenv.KVServer }

// startKV starts a server of fam, or skips t (fails it under CI=true) when
// the binary is missing.
func startKV(t *testing.T, fam family) *kvServer {
	t.Helper()
	return &kvServer{testenv.StartKVServer(t, testenv.KVBinary(t, fam.bin),
		testenv.KVServerOptions{Args: []string{"--save", "", "--appendonly", "no"}})}
}

// url is a backend URL of s.
func (s *kvServer) url(partitions int) string {
	return fmt.Sprintf("redis://%s/0?partitions=%d&prefix=reset:", s.Addr(), partitions)
}

// restartEmpty kills the server with SIGKILL and starts it again on the
// same port: without persistence it comes back empty.
func (s *kvServer) restartEmpty(t *testing.T) {
	t.Helper()
	s.Kill()
	s.Restart(t)
	c := s.Client()
	defer c.Close()
	n, err := c.DBSize(context.Background()).Result()
	require.NoError(t, err)
	require.Zero(t, n, "the restarted server is empty")
}

// ffBinary is cmd/ff, built once per package run.
func ffBinary(t *testing.T) string { return testenv.FFBinary(t) }
