package archtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// maxConsumerModules bounds what an application that imports engine and
// backend/sqlite pulls into its module graph, itself included.
const maxConsumerModules = 25

// forbiddenInConsumer are modules an application using the embedded
// backend must never download: other drivers' clients and test tooling.
var forbiddenInConsumer = []string{
	"github.com/docker/", "github.com/moby/", "github.com/testcontainers/",
	"github.com/jackc/pgx", "github.com/redis/go-redis", "github.com/anishathalye/porcupine",
}

// TestConsumerFootprint builds a throw-away application module that
// imports engine and backend/sqlite (with this checkout in place of the
// published module) and counts the modules of its graph.
func TestConsumerFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with the go command; skipped with -short")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module example.com/consumer\n\ngo 1.26.0\n\n"+
		"require "+module+" v0.0.0\n\nreplace "+module+" => "+root+"\n")
	// The checkout's go.sum holds every checksum the consumer needs.
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "go.sum"), string(sum))
	write(t, filepath.Join(dir, "main.go"), `package main

import (
	"context"

	_ "`+module+`/backend/sqlite"
	"`+module+`/engine"
)

func main() {
	e, err := engine.Open(context.Background(), "sqlite://./ff.db")
	if err == nil {
		_ = e.Close()
	}
}
`)
	goCmd(t, dir, "mod", "tidy")
	goCmd(t, dir, "build", "./...")
	out := goCmd(t, dir, "list", "-m", "all")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		lines = append(lines, l)
		for _, bad := range forbiddenInConsumer {
			if strings.HasPrefix(l, bad) {
				t.Errorf("the consumer's module graph holds %s", l)
			}
		}
	}
	t.Logf("go list -m all in a consumer of engine + backend/sqlite: %d modules", len(lines))
	if len(lines) > maxConsumerModules {
		t.Errorf("consumer lists %d modules, want at most %d:\n%s", len(lines), maxConsumerModules, out)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// goCmd runs the go command in dir outside any workspace and returns stdout.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}
