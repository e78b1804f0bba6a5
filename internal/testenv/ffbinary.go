package testenv

import (
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// ffBuild is cmd/ff, built once per test process by FFBinary.
var ffBuild struct {
	once     sync.Once
	dir, bin string
	err      error
	out      string
}

// FFBinary builds cmd/ff (its own module, every in-repo driver linked) once
// per test process and returns the binary's path; it fails t when the build
// fails. The binary's directory is removed when the process exits if the
// package's TestMain calls Main.
func FFBinary(t testing.TB) string {
	t.Helper()
	ffBuild.once.Do(func() {
		src, err := cmdFFDir()
		if err != nil {
			ffBuild.err = err
			return
		}
		gotool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gotool); err != nil {
			if gotool, ffBuild.err = osexec.LookPath("go"); ffBuild.err != nil {
				return
			}
		}
		if ffBuild.dir, ffBuild.err = os.MkdirTemp("", "ff-test-binary-"); ffBuild.err != nil {
			return
		}
		ffBuild.bin = filepath.Join(ffBuild.dir, "ff")
		cmd := osexec.Command(gotool, "build", "-o", ffBuild.bin, ".")
		cmd.Dir = src
		out, err := cmd.CombinedOutput()
		ffBuild.err, ffBuild.out = err, string(out)
	})
	if ffBuild.err != nil {
		t.Fatalf("testenv: go build ./cmd/ff: %v: %s", ffBuild.err, ffBuild.out)
	}
	if !mainRunning.Load() {
		t.Logf("testenv: %s will not be removed at exit: call testenv.Main from TestMain", ffBuild.dir)
	}
	return ffBuild.bin
}

// cmdFFDir finds cmd/ff above the working directory (a package directory
// of this repository, where go test runs).
func cmdFFDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		candidate := filepath.Join(dir, "cmd", "ff")
		if _, err := os.Stat(filepath.Join(candidate, "main.go")); err == nil {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cmd/ff not found above the working directory")
		}
		dir = parent
	}
}

// removeFFBinary removes what FFBinary built, if anything.
func removeFFBinary() {
	if ffBuild.dir != "" {
		_ = os.RemoveAll(ffBuild.dir)
	}
}
