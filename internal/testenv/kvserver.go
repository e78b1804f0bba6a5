package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// KVServer is a private valkey-server or redis-server that a test starts,
// kills and starts again: a child process of the test (never daemonized,
// so that SIGKILL, SIGSTOP and SIGCONT reach it) on a free port of
// 127.0.0.1, in a directory of its own, with the arguments the test gives
// (persistence included: nothing is added but the port, address,
// directory and log file). The shared servers of KV tests are never
// restarted; these are. It is killed when the test ends.
type KVServer struct {
	Bin     string
	Dir     string
	Port    int
	BusPort int         // cluster bus port; 0 for a standalone server
	TLS     *tls.Config // set when the server listens with TLS only
	Args    []string    // the test's arguments, kept for restarts
	// Password is the default user's password (--requirepass), "" for none.
	Password string
	cmd      *osexec.Cmd
	exited   chan struct{} // closed once cmd exited
}

// KVServerOptions are the test's choices for StartKVServer.
type KVServerOptions struct {
	// Args are appended to the server's command line.
	Args []string
	// Cluster enables cluster mode with a bus port of its own.
	Cluster bool
	// TLS, when set, makes the server listen with TLS only (--port 0,
	// --tls-port; the certificate arguments go in Args), and is the
	// configuration of the readiness probe and of Client.
	TLS *tls.Config
	// Password, when set, is required of every client (--requirepass);
	// Client and the readiness probe use it.
	Password string
}

// KVBinary finds the server binary name (valkey-server, redis-server,
// valkey-cli, ...), or skips t (fails it under CI=true) when it is missing.
func KVBinary(t testing.TB, name string) string {
	t.Helper()
	bin, err := osexec.LookPath(name)
	if err != nil {
		msg := name + " not found: install it (scripts/test-servers.sh does when run as root)"
		if InCI() {
			t.Fatal(msg + "; CI=true, so this is a failure")
		}
		t.Skip(msg)
	}
	return bin
}

// StartKVServer starts bin on a free port (others when a port was taken
// meanwhile) and waits until it answers PING.
func StartKVServer(t testing.TB, bin string, o KVServerOptions) *KVServer {
	t.Helper()
	s := &KVServer{Bin: bin, Dir: t.TempDir(), TLS: o.TLS, Args: o.Args, Password: o.Password}
	t.Cleanup(s.Kill)
	var err error
	for range 5 {
		s.Port = freeKVPort(t)
		if o.Cluster {
			s.BusPort = freeKVPort(t)
		}
		if err = s.Start(); err == nil {
			return s
		}
	}
	t.Fatalf("start %s %v: %v", filepath.Base(bin), o.Args, err)
	return nil
}

func freeKVPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is the server's host:port.
func (s *KVServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Client is an administrative client of this server alone.
func (s *KVServer) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr(), TLSConfig: s.TLS, Password: s.Password, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 5 * time.Second, DisableIdentity: true})
}

// Start starts the server process (again) on its ports and directory and
// waits until it answers PING.
func (s *KVServer) Start() error {
	args := []string{"--bind", "127.0.0.1", "--dir", s.Dir, "--daemonize", "no",
		"--logfile", filepath.Join(s.Dir, "server.log")}
	if s.TLS != nil {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(s.Port))
	} else {
		args = append(args, "--port", strconv.Itoa(s.Port))
	}
	if s.Password != "" {
		args = append(args, "--requirepass", s.Password)
	}
	if s.BusPort != 0 {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(s.BusPort))
	}
	s.cmd = osexec.Command(s.Bin, append(args, s.Args...)...)
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return err
	}
	exited := make(chan struct{})
	s.exited = exited
	go func(cmd *osexec.Cmd) { _ = cmd.Wait(); close(exited) }(s.cmd)
	c := s.Client()
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("exited at start-up: %s", s.LogTail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("no answer on %d: %v: %s", s.Port, err, s.LogTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running reports whether the server process runs (it was not killed).
func (s *KVServer) Running() bool { return s.cmd != nil }

// Restart starts a killed server again on the same ports and directory.
func (s *KVServer) Restart(t testing.TB) {
	t.Helper()
	if err := s.Start(); err != nil {
		t.Fatalf("restart %s on %d: %v", filepath.Base(s.Bin), s.Port, err)
	}
}

// Kill stops the server with SIGKILL (nothing is flushed; a SIGSTOPped
// process too) and reaps it.
func (s *KVServer) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Signal sends sig (SIGSTOP, SIGCONT) to the server.
func (s *KVServer) Signal(sig syscall.Signal) error {
	if s.cmd == nil {
		return fmt.Errorf("signal %v: server %d is not running", sig, s.Port)
	}
	return s.cmd.Process.Signal(sig)
}

// LogTail is the last lines of the server's log, for failure messages.
func (s *KVServer) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}
