package cli_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/syncbuf"
)

// The acceptance tests build the real ff binary once and run every step as
// its own process on a SQLite file, as an operator would.

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  string
}

// goTool finds the go command: GOROOT's, else the one on PATH.
func goTool() (string, error) {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); runtime.GOROOT() != "" {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("go")
}

// ffBinary builds cmd/ff (the ff binary with every in-repo driver) into a
// temporary directory, once per package run.
func ffBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		gotool, err := goTool()
		if err != nil {
			build.err = err
			return
		}
		build.dir, build.err = os.MkdirTemp("", "ff-cli-test-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "ff")
		cmd := exec.Command(gotool, "build", "-o", build.path, ".")
		cmd.Dir = filepath.Join("..", "cmd", "ff") // its own module, every driver linked
		out, err := cmd.CombinedOutput()
		build.err, build.out = err, string(out)
	})
	if build.err != nil {
		t.Fatalf("go build ./cmd/ff: %v\n%s", build.err, build.out)
	}
	return build.path
}

// removeBinary deletes the built binary; TestMain calls it.
func removeBinary() {
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
}

// proc runs the built binary in dir with the environment minus
// FF_BACKEND_URL plus env, feeding stdin, and records its output.
type proc struct {
	t   *testing.T
	bin string
	dir string
	env []string
}

func newProc(t *testing.T, env ...string) proc {
	return proc{t: t, bin: ffBinary(t), dir: t.TempDir(), env: env}
}

func (p proc) run(stdin string, args ...string) result {
	p.t.Helper()
	cmd := exec.Command(p.bin, args...)
	cmd.Dir = p.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FF_BACKEND_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, p.env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		p.t.Fatalf("running ff %v: %v", args, err)
	}
	return newResult(p.t, cmd.ProcessState.ExitCode(), out.String(), errOut.String())
}

// TestBinaryRotationGrace is the acceptance test: seed k1, sign,
// rotate to k2 with a 1.5 s grace, the old token verifies, and after the
// grace it answers token_expired with exit 1.
func TestBinaryRotationGrace(t *testing.T) {
	p := newProc(t)
	db := "sqlite://" + filepath.Join(p.dir, "ff.db")
	secretFile := filepath.Join(p.dir, "k1.hex")
	if err := os.WriteFile(secretFile, []byte(secretA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	wantStdout(t, p.run("", "--backend", db, "seed", "--kid", "k1", "--secret-file", secretFile),
		`{"outcome":"seeded","kid":"k1","current_kid":"k1","same_secret":null}`)
	signed := p.run("", "--backend", db, "sign", "--scope", "tenant-1", "--message", "hello").ok(t)
	old := str(t, signed, "token")
	if old != driver.SignToken("k1", mustSecret(t, secretA), driver.SignatureInput("k1", "tenant-1", []byte("hello"))) {
		t.Fatalf("token %q is not the signature of hello in scope tenant-1", old)
	}

	r := p.run(secretB+"\n", "--backend", db, "rotate", "--kid", "k2", "--secret-file", "-", "--grace-ms", "1500")
	rotated := time.Now()
	wantStdout(t, r, `{"entries":[{"partition":0,"outcome":{"outcome":"rotated","previous_kid":"k1","new_kid":"k2","gc_count":0},"error":null}]}`)

	r = p.run("", "--backend", db, "verify", "--scope", "tenant-1", "--message", "hello", "--token", old)
	if time.Since(rotated) < 1500*time.Millisecond {
		wantStdout(t, r, `{"valid":true,"kid":"k1"}`)
	} else {
		t.Log("the in-grace verify ran too late to check; machine too slow")
	}
	kids := p.run("", "--backend", db, "kids").ok(t)
	if str(t, kids, "partitions", 0, "current_kid") != "k2" || str(t, kids, "partitions", 0, "verifying", 0, "kid") != "k1" {
		t.Fatalf("kids: %v", kids)
	}
	newer := p.run("", "--backend", db, "sign", "--scope", "tenant-1", "--message", "hello").ok(t)
	if str(t, newer, "kid") != "k2" {
		t.Fatalf("sign after rotate: %v", newer)
	}

	time.Sleep(time.Until(rotated.Add(1600 * time.Millisecond)))
	r = p.run("", "--backend", db, "verify", "--scope", "tenant-1", "--message", "hello", "--token", old)
	r.contractErr(t, contracts.KindValidation, contracts.CodeTokenExpired)
	wantStdout(t, p.run("", "--backend", db, "verify", "--scope", "tenant-1", "--message", "hello", "--token", str(t, newer, "token")),
		`{"valid":true,"kid":"k2"}`)
	wantStdout(t, p.run("", "--backend", db, "kids"),
		`{"partitions":[{"partition":0,"current_kid":"k2","verifying":[]}]}`)
}

// TestBinarySuspendSignalClaimComplete drives one execution through its
// whole life, one process per step.
func TestBinarySuspendSignalClaimComplete(t *testing.T) {
	p := newProc(t)
	p.env = append(p.env, "FF_BACKEND_URL=sqlite://"+filepath.Join(p.dir, "flow.db"))
	p.run("", "seed", "--kid", "k1", "--generate").ok(t)

	sus := p.run("", "suspend", "--execution", "order-7", "--waitpoint", "approve", "--timeout-ms", "600000").ok(t)
	wp, token := str(t, sus, "waitpoints", 0, "waitpoint_id"), str(t, sus, "waitpoints", 0, "token")
	listed := p.run("", "suspended").ok(t)
	if str(t, listed, "executions", 0, "execution_id") != "order-7" {
		t.Fatalf("suspended: %v", listed)
	}
	sig := p.run("", "signal", "--execution", "order-7", "--waitpoint-id", wp, "--token", token,
		"--name", "approved", "--payload", `{"by":"alice"}`, "--idempotency-key", "mail-1").ok(t)
	if sig["outcome"] != "accepted" || sig["resumed"] != true {
		t.Fatalf("signal: %v", sig)
	}
	wantStdout(t, p.run("", "signal", "--execution", "order-7", "--waitpoint-id", wp, "--token", token,
		"--name", "approved", "--payload", `{"by":"alice"}`, "--idempotency-key", "mail-1"),
		`{"outcome":"duplicate","signal_id":"`+str(t, sig, "signal_id")+`"}`)

	claim := p.run("", "claim", "--worker", "w1").ok(t)
	if claim["outcome"] != "claimed" || claim["reason"] != "signal" || str(t, claim, "signals", 0, "name") != "approved" {
		t.Fatalf("claim: %v", claim)
	}
	wantStdout(t, p.run("", "claim", "--worker", "w2"), `{"outcome":"none"}`)
	wantStdout(t, p.run("", "complete", "--execution", "order-7", "--lease-id", str(t, claim, "lease_id")),
		`{"outcome":"completed","execution_id":"order-7"}`)
	p.run("", "signals", "--execution", "order-7").contractErr(t, contracts.KindNotFound, contracts.CodeExecutionNotFound)
}

// TestBinaryDefaultBackend: with no --backend and no FF_BACKEND_URL, seed
// and sign in two processes share ./ff.db.
func TestBinaryDefaultBackend(t *testing.T) {
	p := newProc(t)
	p.run(secretC, "seed", "--kid", "boot", "--secret-file", "-").ok(t)
	signed := p.run("", "sign", "--message", "m").ok(t)
	if str(t, signed, "kid") != "boot" {
		t.Fatalf("sign: %v", signed)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "ff.db")); err != nil {
		t.Fatalf("./ff.db: %v", err)
	}
	wantStdout(t, p.run("", "migrate"), `{"applied":[]}`)
}

// TestBinaryExitCodes checks the process exit codes and streams of usage
// errors, including those that involve a secret.
func TestBinaryExitCodes(t *testing.T) {
	p := newProc(t)
	r := p.run("")
	r.usage(t, "usage: ff")
	r = p.run("", "help")
	if r.code != 0 || !strings.Contains(r.stderr, "commands:") {
		t.Fatalf("help: exit %d stderr %q", r.code, r.stderr)
	}
	p.run("", "seed", "--kid", "k1", "--secret-hex", secretA, "--generate").usage(t, "give exactly one of")
	p.run("", "seed", "--kid", "k1", "--secret-hex", secretA, secretB).usage(t, "<hex redacted>")
	p.run("", "kids", "--secret-hex="+secretA).usage(t, "flag provided but not defined: -secret-hex")
	r = p.run("", "--backend", "memory://", "seed", "--kid", "k1", "--secret-hex", secretA[:63])
	r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
}

// TestBinarySignalStopsServe: SIGINT cancels the command's context, so
// `ff serve` shuts down gracefully and exits 0.
func TestBinarySignalStopsServe(t *testing.T) {
	p := newProc(t)
	cmd := exec.Command(p.bin, "--backend", "memory://", "serve", "--listen", "127.0.0.1:0")
	cmd.Dir = p.dir
	var errOut syncbuf.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitListening(t, &errOut)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		record(errOut.String())
		if err != nil {
			t.Fatalf("ff serve after SIGINT: %v; stderr %s", err, errOut.String())
		}
		if !strings.Contains(errOut.String(), `"msg":"stopped"`) {
			t.Fatalf("no graceful stop in the log: %s", errOut.String())
		}
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("ff serve did not exit after SIGINT")
	}
}
