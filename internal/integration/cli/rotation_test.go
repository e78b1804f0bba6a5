package cli_test

// Scheduled rotation and revocation (docs/spec.md §8.7) through the ff
// binary, as an operator runs them: two `ff serve --rotate-every` processes
// on one store (a SQLite file; PostgreSQL from internal/testenv) while a
// client signs and verifies through their admin routes, then `ff revoke` in
// a third process while the servers keep verifying.

import (
	"encoding/json"
	"fmt"
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

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/syncbuf"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
	"github.com/stretchr/testify/require"
)

// The schedule of the story: short periods, a grace of five periods.
const (
	rotationPeriod = 2 * time.Second
	rotationGrace  = 10 * time.Second
	// crossServerDelay is how long after signing a token is verified on
	// the other server: past the keystore cache's TTL (1 s), so that the
	// other server has seen the kid it was signed with (docs/spec.md §4.5).
	crossServerDelay = 1200 * time.Millisecond
	// revocationBound is how soon another process must answer a revoked
	// kid's token token_expired: the cache TTL (1 s), plus a margin for
	// the poll and a slow machine.
	revocationBound = 1500 * time.Millisecond
)

// adminToken is the servers' FF_ADMIN_TOKEN (at least 32 bytes).
var adminToken = strings.Repeat("integration-admin-", 2)

// rotationBackends are the shared stores of the scheduled rotation story.
var rotationBackends = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"SQLite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "ff.db") }},
	{"Postgres", func(t *testing.T) string {
		return withQuery(t, testenv.NewPostgresDatabase(t), "ff_migrate", "auto")
	}},
}

// TestScheduledRotationAcrossServers: two servers rotating every 2 s on
// one store give exactly one new current kid per period, and no token is
// refused while in grace; then ff revoke makes a verifying kid's tokens
// answer token_expired on both servers within the cache TTL.
func TestScheduledRotationAcrossServers(t *testing.T) {
	for _, bc := range rotationBackends {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			backend := bc.url(t)
			ff := binaryOn(t, backend)
			ff("seed", "--kid", "k1", "--generate").ok(t)
			servers := []*server{startServer(t, backend), startServer(t, backend)}
			c := &rotationClient{t: t, servers: servers}
			c.runPeriods(3) // the start-up rotation away from k1, then two boundaries
			c.verifyAll()
			c.checkHistory()
			checkOneRotationPerPeriod(t, servers, c.history)
			revokeWhileServing(t, ff, c)
			for _, s := range servers {
				s.stop(t)
			}
		})
	}
}

// server is one `ff serve` process and what it logged.
type server struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncbuf.Buffer
	done   chan error
}

// startServer starts `ff serve --rotate-every 2s --grace 10s` on backend
// and waits for its listening line.
func startServer(t *testing.T, backend string) *server {
	t.Helper()
	cmd := exec.Command(ffBinary(t), "--backend", backend, "serve", "--listen", "127.0.0.1:0",
		"--rotate-every", rotationPeriod.String(), "--grace", rotationGrace.String())
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FF_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "FF_ADMIN_TOKEN="+adminToken)
	s := &server{cmd: cmd, stderr: &syncbuf.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = io.Discard, s.stderr
	require.NoError(t, cmd.Start())
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.done
		}
	})
	require.Eventually(t, func() bool {
		for _, line := range s.lines(t) {
			if line["msg"] == "listening" {
				s.addr = line["addr"].(string)
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "ff serve did not listen: %s", s.stderr.String())
	return s
}

// lines decodes the server's log lines.
func (s *server) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// stop sends SIGTERM and waits for exit 0.
func (s *server) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-s.done:
		require.NoError(t, err, "ff serve: %s", s.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("ff serve did not stop on SIGTERM")
	}
	require.NotRegexp(t, regexp.MustCompile(`[0-9a-fA-F]{32,}`), s.stderr.String(), "the server logged secret-like hex")
}

// admin calls an admin route and returns the status and body.
func (s *server) admin(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// signed is one token the client holds.
type signed struct {
	kid, token, message string
	server              int
	at                  time.Time
	crossChecked        bool
}

// rotationClient signs and verifies through the servers while they rotate,
// and records the current kid it sees.
type rotationClient struct {
	t       *testing.T
	servers []*server
	tokens  []*signed
	history []string // current kids in the order first seen
	n       int
}

// runPeriods signs a token every 100 ms, alternating servers, verifies it
// on its server at once and on the other one after crossServerDelay, and
// polls list_kids, until the history holds want scheduled kids, or fails
// after a generous deadline.
func (c *rotationClient) runPeriods(want int) {
	t := c.t
	deadline := time.Now().Add(time.Duration(want+3) * rotationPeriod * 2)
	for c.autoKids() < want {
		require.True(t, time.Now().Before(deadline), "only %v after %s", c.history, time.Duration(want+3)*rotationPeriod*2)
		c.step()
		time.Sleep(100 * time.Millisecond)
	}
	// One more period of signing, so that tokens of the last kid exist.
	for end := time.Now().Add(crossServerDelay + 200*time.Millisecond); time.Now().Before(end); {
		c.step()
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *rotationClient) autoKids() int {
	n := 0
	for _, k := range c.history {
		if strings.HasPrefix(k, "auto-") {
			n++
		}
	}
	return n
}

// step signs one token, runs the due verifications and polls list_kids.
func (c *rotationClient) step() {
	t := c.t
	i := c.n % len(c.servers)
	c.n++
	msg := fmt.Sprintf("m-%d", c.n)
	status, body := c.servers[i].admin(t, "POST", "/v1/admin/sign", `{"scope":"s","message":"`+msg+`"}`)
	require.Equal(t, http.StatusOK, status, body)
	var res contracts.SignResult
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	tok := &signed{kid: res.Kid, token: res.Token, message: msg, server: i, at: time.Now()}
	c.tokens = append(c.tokens, tok)
	c.verify(tok, i)
	for _, old := range c.tokens {
		if !old.crossChecked && time.Since(old.at) >= crossServerDelay {
			c.verify(old, (old.server+1)%len(c.servers))
			old.crossChecked = true
		}
	}
	c.pollKids()
}

// verify requires that server i accepts tok, which is in grace.
func (c *rotationClient) verify(tok *signed, i int) {
	t := c.t
	require.Less(t, time.Since(tok.at), rotationGrace-time.Second, "the story outlived the grace")
	status, body := c.servers[i].admin(t, "POST", "/v1/admin/verify",
		`{"scope":"s","message":"`+tok.message+`","token":"`+tok.token+`"}`)
	require.Equal(t, http.StatusOK, status, "server %d refused a token of kid %s signed %s ago on server %d: %s",
		i, tok.kid, time.Since(tok.at).Round(time.Millisecond), tok.server, body)
	require.Equal(t, `{"valid":true,"kid":"`+tok.kid+`"}`+"\n", body)
}

// verifyAll verifies every token on every server: all are in grace.
func (c *rotationClient) verifyAll() {
	for _, tok := range c.tokens {
		for i := range c.servers {
			c.verify(tok, i)
		}
	}
}

// pollKids appends the current kid to the history when it changed.
func (c *rotationClient) pollKids() {
	t := c.t
	status, body := c.servers[c.n%len(c.servers)].admin(t, "GET", "/v1/admin/keystore/kids", "")
	require.Equal(t, http.StatusOK, status, body)
	var kids contracts.ListKidsResult
	require.NoError(t, json.Unmarshal([]byte(body), &kids))
	require.NotNil(t, kids.Partitions[0].CurrentKid)
	cur := *kids.Partitions[0].CurrentKid
	if len(c.history) == 0 || c.history[len(c.history)-1] != cur {
		require.NotContains(t, c.history, cur, "kid %s came back: %v", cur, c.history)
		c.history = append(c.history, cur)
	}
}

// kidTime parses an auto kid's period start.
func kidTime(t *testing.T, kid string) time.Time {
	t.Helper()
	at, err := time.Parse("20060102T150405Z", strings.TrimPrefix(kid, "auto-"))
	require.NoError(t, err, kid)
	return at
}

// checkHistory: after k1, one auto kid per period, periods consecutive and
// aligned on the Unix epoch.
func (c *rotationClient) checkHistory() {
	t := c.t
	autos := c.history
	if autos[0] == "k1" {
		autos = autos[1:]
	}
	require.GreaterOrEqual(t, len(autos), 3, "%v", c.history)
	for i, kid := range autos {
		at := kidTime(t, kid)
		require.Zero(t, at.UnixMilli()%rotationPeriod.Milliseconds(), "%s is not a period start", kid)
		if i > 0 {
			require.Equal(t, rotationPeriod, at.Sub(kidTime(t, autos[i-1])), "periods of %v", autos)
		}
	}
}

// checkOneRotationPerPeriod: across both servers' audit lines, each kid was
// rotated to exactly once, and every change the history saw was logged.
func checkOneRotationPerPeriod(t *testing.T, servers []*server, history []string) {
	t.Helper()
	rotated := map[string]int{}
	for _, s := range servers {
		for _, line := range s.lines(t) {
			if line["msg"] != "keystore audit" {
				continue
			}
			require.Equal(t, "rotate_all", line["op"], "%v", line)
			require.Equal(t, "scheduler", line["caller"], "%v", line)
			switch line["outcome"] {
			case contracts.RotateRotated:
				rotated[line["kid"].(string)]++
			case contracts.RotateNoop, contracts.CodeSerializationRetryExhausted: // the loser of a period; a retried contention
			default:
				t.Fatalf("a scheduled rotation failed: %v", line)
			}
		}
	}
	for kid, n := range rotated {
		require.Equal(t, 1, n, "kid %s rotated %d times: %v", kid, n, rotated)
	}
	for _, kid := range history {
		if kid != "k1" {
			require.Equal(t, 1, rotated[kid], "kid %s was current but no server logged its rotation: %v", kid, rotated)
		}
	}
}

// revokeWhileServing revokes the kid of a token that now only verifies
// with `ff revoke`, and measures how soon each server answers the token
// token_expired.
func revokeWhileServing(t *testing.T, ff runner, c *rotationClient) {
	t.Helper()
	current := c.history[len(c.history)-1]
	var tok *signed
	for i := len(c.tokens) - 1; i >= 0 && tok == nil; i-- {
		if k := c.tokens[i].kid; k != current && strings.HasPrefix(k, "auto-") {
			tok = c.tokens[i]
		}
	}
	require.NotNil(t, tok, "no token of a verifying kid")
	for i := range c.servers {
		c.verify(tok, i) // still in grace before the revocation
	}
	r := ff("revoke", "--kid", tok.kid)
	revokedAt := time.Now()
	require.Equal(t, 0, r.code, "stdout %q stderr %q", r.stdout, r.stderr)
	require.Equal(t, `{"entries":[{"partition":0,"outcome":{"outcome":"revoked","kid":"`+tok.kid+`"},"error":null}]}`+"\n", r.stdout)
	require.Empty(t, r.stderr)
	require.Len(t, r.audits, 1)
	require.Contains(t, r.audits[0], `"op":"revoke_kid","kid":"`+tok.kid+`","outcome":"revoked"`)

	for i, s := range c.servers {
		var latency time.Duration
		require.Eventually(t, func() bool {
			status, body := s.admin(t, "POST", "/v1/admin/verify", `{"scope":"s","message":"`+tok.message+`","token":"`+tok.token+`"}`)
			if status == http.StatusOK {
				return false
			}
			require.Equal(t, http.StatusUnauthorized, status, body)
			require.Contains(t, body, `"code":"token_expired"`)
			require.Contains(t, body, `was revoked`)
			latency = time.Since(revokedAt)
			return true
		}, 10*time.Second, 10*time.Millisecond)
		t.Logf("server %d answered token_expired %s after ff revoke returned", i, latency.Round(time.Millisecond))
		require.LessOrEqual(t, latency, revocationBound, "server %d", i)
	}
	// Tokens of the current kid still verify, and the revoked name is kept.
	last := c.tokens[len(c.tokens)-1]
	if last.kid != tok.kid {
		c.verify(last, last.server)
	}
	r = ff("revoke", "--kid", tok.kid)
	require.Equal(t, `{"entries":[{"partition":0,"outcome":{"outcome":"noop","kid":"`+tok.kid+`"},"error":null}]}`+"\n", r.stdout)
}
