package valkey

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

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
	bin, err := exec.LookPath("valkey-server")
	if err != nil {
		if bin, err = exec.LookPath("redis-server"); err != nil {
			msg := "valkey-server / redis-server not found: install it (scripts/test-servers.sh does when run as root)"
			if testenv.InCI() {
				t.Fatal(msg + "; CI=true, so this is a failure")
			}
			t.Skip(msg)
		}
	}
	dir := t.TempDir()
	port := freePort(t)
	s := &privateServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", filepath.Join(dir, "server.log")}
	if requirePass {
		s.password = randomToken(t)
		args = append(args, "--requirepass", s.password)
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := s.client()
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("private server on %s never answered: %v", s.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
