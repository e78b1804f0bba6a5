package reliability

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// server is a private, ephemeral server this test started and may restart
// (the shared servers of internal/testenv are never restarted).
type server interface {
	// url is the backend URL of the server for a FlowFabric store.
	url() string
	// crash stops the server abruptly (SIGKILL-like; durable data stays).
	crash(t testing.TB)
	// start starts it again on the same port and data directory.
	start(t testing.TB)
}

// missingBinary skips t (fails it under CI=true) when a server binary is
// missing.
func missingBinary(t testing.TB, what string) {
	t.Helper()
	msg := fmt.Sprintf("%s not found: install it (scripts/test-servers.sh does when run as root)", what)
	if testenv.InCI() {
		t.Fatal(msg + "; CI=true, so this is a failure")
	}
	t.Skip(msg)
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls ok every 50 ms for up to d.
func waitFor(d time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// ------------------------------------------------------------- postgres --

// pgServer is a private PostgreSQL cluster: initdb into a temporary
// directory, run as the postgres user when the test runs as root (initdb
// and postgres refuse root), fsync and synchronous_commit on.
type pgServer struct {
	bin, dir string
	port     int
	asUser   []string // runuser prefix when root
}

func findPgBin() string {
	if b := os.Getenv("FF_PG_BIN"); b != "" {
		return b
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) < pgVersion(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func newPgServer(t testing.TB) *pgServer {
	t.Helper()
	bin := findPgBin()
	if bin == "" {
		missingBinary(t, "PostgreSQL (initdb)")
	}
	dir, err := os.MkdirTemp("", "ffrel-pg-")
	if err != nil {
		t.Fatal(err)
	}
	s := &pgServer{bin: bin, dir: dir, port: freePort(t)}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user for initdb: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		s.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	t.Cleanup(func() {
		_ = s.run("pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "-t", "30", "stop")
		_ = os.RemoveAll(dir)
	})
	if err := s.run("initdb", "-D", s.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions"); err != nil {
		t.Fatalf("initdb: %v", err)
	}
	s.start(t)
	return s
}

func (s *pgServer) data() string { return filepath.Join(s.dir, "data") }

func (s *pgServer) run(tool string, args ...string) error {
	argv := append(append([]string{}, s.asUser...), append([]string{filepath.Join(s.bin, tool)}, args...)...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", tool, err, out)
	}
	return nil
}

func (s *pgServer) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&ff_migrate=auto", s.port)
}

func (s *pgServer) start(t testing.TB) {
	t.Helper()
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=on -c synchronous_commit=on -c max_connections=100", s.port, s.dir)
	if err := s.run("pg_ctl", "-D", s.data(), "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60", "start", "-o", opts); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	plain := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	if !waitFor(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, plain)
		if err == nil {
			_ = c.Close(ctx)
		}
		return err == nil
	}) {
		t.Fatalf("postgres on %d never answered", s.port)
	}
}

// crash stops postgres in immediate mode: no checkpoint, WAL replay at the
// next start, as after a power cut (with fsync on, committed data is safe).
func (s *pgServer) crash(t testing.TB) {
	t.Helper()
	if err := s.run("pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "-t", "30", "stop"); err != nil {
		t.Fatalf("stop postgres: %v", err)
	}
}

// ---------------------------------------------------------------- valkey --

// redisServer is a private redis-server (or valkey-server) with
// appendonly yes and appendfsync always (testenv.KVServer).
type redisServer struct{ *testenv.KVServer }

func newRedisServer(t testing.TB) *redisServer {
	t.Helper()
	name := "redis-server"
	if _, err := exec.LookPath(name); err != nil {
		name = "valkey-server"
	}
	return &redisServer{testenv.StartKVServer(t, testenv.KVBinary(t, name), testenv.KVServerOptions{
		Args: []string{"--appendonly", "yes", "--appendfsync", "always", "--save", ""}})}
}

func (s *redisServer) url() string {
	return fmt.Sprintf("redis://%s/0?partitions=%d&prefix=rel:", s.Addr(), valkeyPartitions)
}

// start starts the server again after a crash: it replays its
// append-only file.
func (s *redisServer) start(t testing.TB) { s.Restart(t) }

// crash kills the server with SIGKILL; the append-only file, fsynced on
// every write, is replayed at the next start.
func (s *redisServer) crash(testing.TB) { s.Kill() }
