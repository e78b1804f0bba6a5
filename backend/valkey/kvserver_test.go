package valkey

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

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

// kvServer is a server of a family that the test starts as a child
// process (never daemonized, so that it can be killed with SIGKILL), on a
// free port of 127.0.0.1, in a directory of its own, with the arguments
// the test gives (persistence included: nothing is added but the port,
// address, directory and log file). It is killed when the test ends.
type kvServer struct {
	bin, dir string
	port     int
	args     []string
	tls      *tls.Config // set when the server listens with TLS only
	cmd      *exec.Cmd
	exited   chan struct{}
}

// noPersistence are the arguments of a server that keeps nothing on disk.
var noPersistence = []string{"--save", "", "--appendonly", "no"}

// startKV starts a server of fam with args and waits until it answers.
func startKV(t testing.TB, fam family, args ...string) *kvServer {
	t.Helper()
	return launch(t, &kvServer{bin: lookBin(t, fam), dir: t.TempDir(), args: args})
}

// startTLS starts a server of fam listening with TLS only (--port 0), with
// the certificate, key and CA files given and client certificates not
// asked for, and waits until it answers a client that does not verify
// its certificate.
func startTLS(t testing.TB, fam family, cert, key, ca string, args ...string) *kvServer {
	t.Helper()
	all := append([]string{"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca,
		"--tls-auth-clients", "no"}, args...)
	return launch(t, &kvServer{bin: lookBin(t, fam), dir: t.TempDir(), args: all,
		tls: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}) //nolint:gosec // the readiness probe only
}

// lookBin finds fam's server binary, or skips t (fails it under CI=true).
func lookBin(t testing.TB, fam family) string {
	t.Helper()
	bin, err := exec.LookPath(fam.bin)
	if err != nil {
		msg := fam.bin + " not found: install it (scripts/test-servers.sh does when run as root)"
		if testenv.InCI() {
			t.Fatal(msg + "; CI=true, so this is a failure")
		}
		t.Skip(msg)
	}
	return bin
}

// launch starts s on a free port (another one when the port was taken
// meanwhile) and kills it when t ends.
func launch(t testing.TB, s *kvServer) *kvServer {
	t.Helper()
	t.Cleanup(s.kill)
	var err error
	for range 5 {
		s.port = freePort(t)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("start %s %v: %v", filepath.Base(s.bin), s.args, err)
	return nil
}

func (s *kvServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// url is a standalone backend URL of s with the driver's options.
func (s *kvServer) url(partitions int, prefix string) string {
	return fmt.Sprintf("redis://%s/0?partitions=%d&prefix=%s", s.addr(), partitions, prefix)
}

// client is an administrative client of s.
func (s *kvServer) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.addr(), TLSConfig: s.tls, MaxRetries: -1})
}

// start starts the server process (again) on its port and directory and
// waits until it answers PING.
func (s *kvServer) start() error {
	args := []string{"--bind", "127.0.0.1", "--dir", s.dir, "--daemonize", "no",
		"--logfile", filepath.Join(s.dir, "server.log")}
	if s.tls != nil {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(s.port))
	} else {
		args = append(args, "--port", strconv.Itoa(s.port))
	}
	s.cmd = exec.Command(s.bin, append(args, s.args...)...)
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return err
	}
	exited := make(chan struct{})
	s.exited = exited
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(exited) }(s.cmd)
	c := s.client()
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("exited at start-up: %s", s.logTail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("no answer on %d: %v: %s", s.port, err, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restart starts a killed server again on the same port and directory.
func (s *kvServer) restart(t testing.TB) {
	t.Helper()
	require.NoError(t, s.start(), "restart %s on %d", filepath.Base(s.bin), s.port)
}

// kill stops the server with SIGKILL (nothing is flushed) and reaps it.
func (s *kvServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// logTail is the end of the server's log, for failures.
func (s *kvServer) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
