// Package storereset tests a store that loses its data under running
// processes (docs/spec.md §6.1): a Valkey or Redis server without
// persistence killed with SIGKILL and restarted empty on the same port,
// under an Engine with the HTTP API, and under the real ff serve.
package storereset

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	_ "github.com/flowfabric/flowfabric-go/backend/valkey" // valkey://, redis://
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// TestMain removes the ff binary the tests built. (The tests start their
// own servers: nothing of testenv.Main's to clean up.)
func TestMain(m *testing.M) {
	code := m.Run()
	if ff.dir != "" {
		_ = os.RemoveAll(ff.dir)
	}
	os.Exit(code)
}

// family is one server family.
type family struct{ name, bin string }

var families = []family{{"Valkey", "valkey-server"}, {"Redis", "redis-server"}}

// kvServer is a private server without persistence (--save "",
// --appendonly no), run as a child process of the test on a free port of
// 127.0.0.1, so that the test can kill it with SIGKILL and start it again,
// empty, on the same port. It is killed when the test ends.
type kvServer struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
	exited   chan struct{}
}

// startKV starts a server of fam, or skips t (fails it under CI=true) when
// the binary is missing.
func startKV(t *testing.T, fam family) *kvServer {
	t.Helper()
	bin, err := exec.LookPath(fam.bin)
	if err != nil {
		msg := fam.bin + " not found: install it (scripts/test-servers.sh does when run as root)"
		if testenv.InCI() {
			t.Fatal(msg + "; CI=true, so this is a failure")
		}
		t.Skip(msg)
	}
	s := &kvServer{bin: bin, dir: t.TempDir()}
	t.Cleanup(s.kill)
	for range 5 { // a port taken between freePort and the bind: try another
		s.port = freePort(t)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("start %s: %v", fam.bin, err)
	return nil
}

func (s *kvServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// url is a backend URL of s.
func (s *kvServer) url(partitions int) string {
	return fmt.Sprintf("redis://%s/0?partitions=%d&prefix=reset:", s.addr(), partitions)
}

func (s *kvServer) start() error {
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", filepath.Join(s.dir, "server.log"))
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return err
	}
	exited := make(chan struct{})
	s.exited = exited
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(exited) }(s.cmd)
	c := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			s.cmd = nil
			log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
			return fmt.Errorf("exited at start-up: %s", log)
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
			return fmt.Errorf("no answer on %d: %v", s.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restartEmpty kills the server with SIGKILL and starts it again on the
// same port: without persistence it comes back empty.
func (s *kvServer) restartEmpty(t *testing.T) {
	t.Helper()
	s.kill()
	require.NoError(t, s.start(), "restart %s on %d", filepath.Base(s.bin), s.port)
	n, err := redis.NewClient(&redis.Options{Addr: s.addr()}).DBSize(context.Background()).Result()
	require.NoError(t, err)
	require.Zero(t, n, "the restarted server is empty")
}

func (s *kvServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ff is cmd/ff (every in-repo driver linked), built once per package run.
var ff struct {
	once     sync.Once
	dir, bin string
	err      error
	out      string
}

func ffBinary(t *testing.T) string {
	t.Helper()
	ff.once.Do(func() {
		gotool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gotool); err != nil {
			if gotool, ff.err = exec.LookPath("go"); ff.err != nil {
				return
			}
		}
		if ff.dir, ff.err = os.MkdirTemp("", "ff-storereset-"); ff.err != nil {
			return
		}
		ff.bin = filepath.Join(ff.dir, "ff")
		cmd := exec.Command(gotool, "build", "-o", ff.bin, ".")
		cmd.Dir = filepath.Join("..", "..", "..", "cmd", "ff")
		out, err := cmd.CombinedOutput()
		ff.err, ff.out = err, string(out)
	})
	require.NoError(t, ff.err, "go build ./cmd/ff: %s", ff.out)
	return ff.bin
}

// lockedBuffer is a bytes.Buffer safe for a process writing and a test
// reading.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
