package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/cli"
	"github.com/flowfabric/flowfabric-go/internal/syncbuf"
)

func TestDemo(t *testing.T) {
	t.Setenv(cli.BackendEnv, "")
	t.Chdir(t.TempDir())
	r := run(t, "", "demo", "--grace-ms", "100")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "demo finished") || !strings.Contains(r.stdout, "token_expired") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat("ff.db"); err == nil {
		t.Fatal("the demo wrote ./ff.db; it should use a temporary store")
	}
	if len(r.audits) != 2 || r.audits[0]["op"] != "seed" || r.audits[1]["op"] != "rotate_all" || r.audits[1]["outcome"] != "rotated" {
		t.Fatalf("the demo's seed and rotation should log one audit line each: %v", r.audits)
	}
	run(t, "", "demo", "--grace-ms", "0").usage(t, "--grace-ms must be from 1 to 60000")
}

func TestServe(t *testing.T) {
	t.Run("ServesUntilCancelledThenExits0", func(t *testing.T) {
		secretFile := writeFile(t, secretA+"\n")
		t.Setenv("FF_WAITPOINT_HMAC_KID", "k1")
		t.Setenv("FF_WAITPOINT_HMAC_SECRET_FILE", secretFile)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errOut syncbuf.Buffer
		db := "sqlite://" + filepath.Join(t.TempDir(), "serve.db")
		done := make(chan int, 1)
		go func() {
			done <- cli.Run(ctx, []string{"--backend", db, "serve", "--listen", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
		}()
		addr := waitListening(t, &errOut)
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/healthz: %d %s", resp.StatusCode, body)
		}
		cancel()
		select {
		case code := <-done:
			if code != cli.ExitOK {
				t.Fatalf("serve exited %d; stderr %s", code, errOut.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not stop after cancellation")
		}
		record(out.String(), errOut.String())
		if strings.Contains(errOut.String(), "does not persist") {
			t.Fatalf("a SQLite store persists, yet serve warned: %s", errOut.String())
		}
		// The seed from the environment reached the store.
		wantStdout(t, run(t, "", "--backend", db, "seed", "--kid", "k1", "--secret-hex", secretA),
			`{"outcome":"already_seeded","kid":"k1","current_kid":"k1","same_secret":true}`)
	})
	t.Run("WarnsWhenTheStoreDoesNotPersist", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errOut syncbuf.Buffer
		done := make(chan int, 1)
		go func() {
			done <- cli.Run(ctx, []string{"--backend", "memory://", "serve", "--listen", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
		}()
		waitListening(t, &errOut)
		cancel()
		<-done
		record(out.String(), errOut.String())
		var warned bool
		for _, line := range strings.Split(errOut.String(), "\n") {
			var l struct{ Level, Msg string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Level == "WARN" && strings.Contains(l.Msg, "does not persist") {
				warned = true
			}
		}
		if !warned {
			t.Fatalf("no WARN line about persistence for memory://; stderr %s", errOut.String())
		}
	})
	t.Run("ReseedOnResetNeedsTheSeed", func(t *testing.T) {
		t.Setenv("FF_WAITPOINT_HMAC_KID", "")
		t.Setenv("FF_WAITPOINT_HMAC_SECRET_FILE", "")
		run(t, "", "--backend", "memory://", "serve", "--reseed-on-reset").usage(t, "--reseed-on-reset needs $FF_WAITPOINT_HMAC_KID")
	})
	t.Run("HalfSeedEnvironmentIsUsageError", func(t *testing.T) {
		t.Setenv("FF_WAITPOINT_HMAC_KID", "k1")
		t.Setenv("FF_WAITPOINT_HMAC_SECRET_FILE", "")
		run(t, "", "--backend", "memory://", "serve", "--listen", "127.0.0.1:0").usage(t, "set both")
	})
}

// waitListening waits for serve's "listening" log line and returns its address.
func waitListening(t *testing.T, stderr *syncbuf.Buffer) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "listening" {
				return l.Addr
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("serve did not log listening; stderr %s", stderr.String())
	return ""
}
