package storereset

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/cli"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/syncbuf"
)

// served is one ff serve process and its log.
type served struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	stdout *syncbuf.Buffer
	addr   string
	done   chan error
}

// startServe runs the real ff binary: `ff serve` on backend, seeding from
// FF_WAITPOINT_HMAC_KID and FF_WAITPOINT_HMAC_SECRET_FILE (a 0600 file),
// with extra flags, and waits for its listening line.
func startServe(t *testing.T, backend string, flags ...string) *served {
	t.Helper()
	secretFile := filepath.Join(t.TempDir(), "secret.hex")
	require.NoError(t, os.WriteFile(secretFile, []byte(secretHex+"\n"), 0o600))
	args := append([]string{"--backend", backend, "serve", "--listen", "127.0.0.1:0"}, flags...)
	cmd := exec.Command(ffBinary(t), args...)
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FF_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "FF_ADMIN_TOKEN="+adminToken, cli.SeedKidEnv+"=k1", cli.SeedSecretEnv+"="+secretFile)
	s := &served{t: t, cmd: cmd, stderr: &syncbuf.Buffer{}, stdout: &syncbuf.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	require.NoError(t, cmd.Start())
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.done
		}
	})
	require.Eventually(t, func() bool {
		if l := s.line("listening"); l != nil {
			s.addr = l["addr"].(string)
			return true
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "ff serve did not listen: %s", s.stderr.String())
	return s
}

// lines decodes the server's JSON log lines.
func (s *served) lines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// line returns the first log line whose message starts with prefix.
func (s *served) line(prefix string) map[string]any {
	for _, l := range s.lines() {
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, prefix) {
			return l
		}
	}
	return nil
}

// call sends a request to the server and returns the status and body.
func (s *served) call(method, path, body string) (int, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	require.NoError(s.t, err)
	if strings.HasPrefix(path, "/v1/admin/") {
		req.Header.Set("Authorization", "Bearer "+adminToken)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	var m map[string]any
	require.NoError(s.t, json.Unmarshal(b, &m), "body %q", b)
	return resp.StatusCode, m
}

// code is the error code of an error envelope ("" for none).
func code(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// stop sends SIGTERM, waits for exit 0, and checks that no secret (the
// seed's secret, the admin token, anything like a 32-byte hex) was
// written to stdout or stderr.
func (s *served) stop() {
	s.t.Helper()
	require.NoError(s.t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-s.done:
		require.NoError(s.t, err, "ff serve: %s", s.stderr.String())
	case <-time.After(20 * time.Second):
		s.t.Fatalf("ff serve did not stop on SIGTERM")
	}
	out := s.stdout.String() + s.stderr.String()
	require.NotContains(s.t, out, secretHex)
	require.NotContains(s.t, out, adminToken)
	require.NotRegexp(s.t, regexp.MustCompile(`[0-9a-fA-F]{32,}`), out, "the server logged secret-like hex")
}

// ff serve on a Valkey server without persistence, restarted empty:
// it warns at start-up that the store does not persist; after the loss
// /readyz answers 503 store_reset at once, and its watch (every
// cli.ResetCheckInterval) logs an ERROR "store: it lost its data…".
// Without --reseed-on-reset it stays so; with it the watch takes the
// emptied store, seeds it again from the environment (WARN "store: took
// the emptied store and seeded it again"), /readyz answers 200 and tokens
// signed before the loss verify again (same kid, same secret).
func TestServeStoreReset(t *testing.T) {
	for _, c := range []struct {
		name   string
		reseed bool
	}{{"ReportOnly", false}, {"ReseedOnReset", true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := startKV(t, family{"Valkey", "valkey-server"})
			var flags []string
			if c.reseed {
				flags = append(flags, "--reseed-on-reset")
			}
			s := startServe(t, srv.url(8), flags...)
			warn := s.line("the store does not persist its data")
			require.NotNil(t, warn, "the persistence warning: %s", s.stderr.String())
			require.Equal(t, "WARN", warn["level"])

			st, body := s.call(http.MethodGet, "/readyz", "")
			require.Equal(t, http.StatusOK, st, "%v", body)
			st, signed := s.call(http.MethodPost, "/v1/admin/sign", `{"scope":"s","message":"m"}`)
			require.Equal(t, http.StatusOK, st, "%v", signed)
			token := signed["token"].(string)

			srv.restartEmpty(t)
			lost := time.Now()

			st, body = s.call(http.MethodGet, "/readyz", "")
			if !c.reseed || st != http.StatusOK { // the watch may have reseeded already
				require.Equal(t, http.StatusServiceUnavailable, st, "%v", body)
				require.Equal(t, contracts.CodeStoreReset, code(body))
			}
			require.Eventually(t, func() bool { return s.line("store: it lost its data") != nil },
				3*cli.ResetCheckInterval, 50*time.Millisecond, "no store-reset line: %s", s.stderr.String())
			l := s.line("store: it lost its data")
			require.Equal(t, "ERROR", l["level"])
			require.Contains(t, l["error"], "the store's marker for partition")
			t.Logf("the watch reported the loss %v after it", time.Since(lost).Round(100*time.Millisecond))

			if !c.reseed {
				st, body = s.call(http.MethodGet, "/readyz", "")
				require.Equal(t, http.StatusServiceUnavailable, st)
				require.Equal(t, contracts.CodeStoreReset, code(body))
				st, body = s.call(http.MethodPost, "/v1/admin/sign", `{"scope":"s","message":"m"}`)
				require.Equal(t, http.StatusServiceUnavailable, st)
				require.Equal(t, contracts.CodeStoreReset, code(body), "no call works on the lost store")
				require.Nil(t, s.line("store: took the emptied store"))
				s.stop()
				return
			}
			require.Eventually(t, func() bool { return s.line("store: took the emptied store and seeded it again") != nil },
				3*cli.ResetCheckInterval, 50*time.Millisecond, "no reseed line: %s", s.stderr.String())
			require.Equal(t, "WARN", s.line("store: took the emptied store and seeded it again")["level"])
			st, body = s.call(http.MethodGet, "/readyz", "")
			require.Equal(t, http.StatusOK, st, "%v", body)
			st, body = s.call(http.MethodPost, "/v1/admin/sign", `{"scope":"s","message":"m"}`)
			require.Equal(t, http.StatusOK, st, "%v", body)
			st, body = s.call(http.MethodPost, "/v1/admin/verify", `{"scope":"s","message":"m","token":"`+token+`"}`)
			require.Equal(t, http.StatusOK, st, "%v", body)
			require.Equal(t, true, body["valid"], "the same kid and secret seeded again: %v", body)
			s.stop()
		})
	}
}
