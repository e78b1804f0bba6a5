package valkey

import (
	"crypto/tls"
	"fmt"
	"testing"

	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// family is one server family: Valkey (valkey-server) or Redis
// (redis-server). Tests that start servers of their own run on both.
type family struct{ name, bin string }

var families = []family{{"Valkey", "valkey-server"}, {"Redis", "redis-server"}}

// forEachFamily runs f as a parallel subtest per family whose server is
// installed (a missing one skips, or fails under CI=true).
func forEachFamily(t *testing.T, f func(t *testing.T, fam family)) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			f(t, fam)
		})
	}
}

// kvServer is a private server of a family (testenv.KVServer: a child
// process on a free port, killed when the test ends) with the driver's URL.
type kvServer struct{ *testenv.KVServer }

// noPersistence are the arguments of a server that keeps nothing on disk.
var noPersistence = []string{"--save", "", "--appendonly", "no"}

// startKV starts a server of fam with args and waits until it answers.
func startKV(t testing.TB, fam family, args ...string) *kvServer {
	t.Helper()
	return &kvServer{testenv.StartKVServer(t, testenv.KVBinary(t, fam.bin), testenv.KVServerOptions{Args: args})}
}

// startTLS starts a server of fam listening with TLS only, with the
// certificate, key and CA files given and client certificates not asked
// for, and waits until it answers a client that does not verify its
// certificate.
func startTLS(t testing.TB, fam family, cert, key, ca string, args ...string) *kvServer {
	t.Helper()
	all := append([]string{"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca,
		"--tls-auth-clients", "no"}, args...)
	return &kvServer{testenv.StartKVServer(t, testenv.KVBinary(t, fam.bin), testenv.KVServerOptions{Args: all,
		TLS: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}})} //nolint:gosec // the readiness probe only
}

// url is a standalone backend URL of s with the driver's options.
func (s *kvServer) url(partitions int, prefix string) string {
	return fmt.Sprintf("redis://%s/0?partitions=%d&prefix=%s", s.Addr(), partitions, prefix)
}
