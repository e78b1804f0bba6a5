package valkey

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// privateServer is a valkey-server (or redis-server) this test starts as a
// child process on a free port, without persistence, and kills when the
// test ends. Tests may reconfigure it (ACL, SCRIPT FLUSH, ...): no other
// test shares it.
type privateServer struct {
	addr     string
	password string // "" when started without requirepass
}

// startPrivateServer starts a private server; with requirePass, it
// requires a random password (s.password).
func startPrivateServer(t testing.TB, requirePass bool) *privateServer {
	t.Helper()
	name := "valkey-server"
	if _, err := exec.LookPath(name); err != nil {
		name = "redis-server"
	}
	o := testenv.KVServerOptions{Args: noPersistence}
	if requirePass {
		o.Password = randomToken(t)
	}
	srv := testenv.StartKVServer(t, testenv.KVBinary(t, name), o)
	return &privateServer{addr: srv.Addr(), password: srv.Password}
}

// client is an administrative client of s (authenticated as default).
func (s *privateServer) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.addr, Password: s.password})
}

// url is a server URL for s with the given user info ("" for none), in the
// form of testenv.ValkeyURL.
func (s *privateServer) url(userinfo string) string {
	if userinfo != "" {
		userinfo += "@"
	}
	return fmt.Sprintf("redis://%s%s/0", userinfo, s.addr)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "pw" + hex.EncodeToString(b)
}
