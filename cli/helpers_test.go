package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	_ "github.com/flowfabric/flowfabric-go/backend/sqlite" // sqlite://, the default backend
	"github.com/flowfabric/flowfabric-go/cli"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// Secrets used by the tests. TestMain fails the package if any of them, in
// either letter case, appears in anything the CLI printed.
const (
	secretA = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	secretB = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
	secretC = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// transcript collects every stdout and stderr the CLI produced in this
// package, in-process and from the built binary, for the secret scan.
var transcript struct {
	sync.Mutex
	out     strings.Builder
	secrets []string // generated secrets read back from --generate-to files
}

func record(s ...string) {
	transcript.Lock()
	defer transcript.Unlock()
	for _, x := range s {
		transcript.out.WriteString(x)
		transcript.out.WriteByte('\n')
	}
}

func rememberSecret(hex string) {
	transcript.Lock()
	defer transcript.Unlock()
	transcript.secrets = append(transcript.secrets, hex)
}

// TestMain runs the tests, then greps all CLI output for the secrets used.
func TestMain(m *testing.M) {
	code := m.Run()
	removeBinary()
	if leaked := leakedSecrets(); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: CLI output contains %d secret(s) used by the tests\n", len(leaked))
		code = 1
	}
	os.Exit(code)
}

func leakedSecrets() []string {
	transcript.Lock()
	defer transcript.Unlock()
	out := transcript.out.String()
	if out == "" {
		fmt.Fprintln(os.Stderr, "secret scan: no CLI output was recorded")
	}
	var leaked []string
	for _, s := range append([]string{secretA, secretB, secretC}, transcript.secrets...) {
		for _, form := range []string{strings.ToLower(s), strings.ToUpper(s), s[:32]} {
			if strings.Contains(out, form) {
				leaked = append(leaked, form[:4]+"…")
			}
		}
	}
	return leaked
}

// result is what one CLI run produced. The keystore audit lines that seed,
// rotate and revoke log on stderr are kept apart in audits (decoded), so
// that stderr holds everything else.
type result struct {
	code           int
	stdout, stderr string
	audits         []map[string]any
}

// newResult records what a run printed, then splits its audit lines off.
func newResult(t *testing.T, code int, stdout, stderr string) result {
	t.Helper()
	record(stdout, stderr)
	r := result{code: code, stdout: stdout}
	var rest strings.Builder
	for _, line := range strings.SplitAfter(stderr, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "keystore audit" {
			r.audits = append(r.audits, m)
			continue
		}
		rest.WriteString(line)
	}
	r.stderr = rest.String()
	return r
}

// audit asserts that the run logged exactly one keystore audit line and
// returns it.
func (r result) audit(t *testing.T) map[string]any {
	t.Helper()
	if len(r.audits) != 1 {
		t.Fatalf("%d keystore audit lines, want 1; stdout %q stderr %q", len(r.audits), r.stdout, r.stderr)
	}
	return r.audits[0]
}

// run executes the CLI in-process with stdin and args.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runCtx(t, context.Background(), stdin, args...)
}

func runCtx(t *testing.T, ctx context.Context, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return newResult(t, code, out.String(), errOut.String())
}

// ok asserts exit 0 with one envelope line and nothing on stderr, and
// decodes the envelope into a generic map.
func (r result) ok(t *testing.T) map[string]any {
	t.Helper()
	if r.code != cli.ExitOK || r.stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 0 and an empty stderr", r.code, r.stdout, r.stderr)
	}
	return envelope(t, r.stdout)
}

// contractErr asserts exit 1 with an error envelope of kind/code and
// returns the error object.
func (r result) contractErr(t *testing.T, kind contracts.Kind, code string) *contracts.Error {
	t.Helper()
	if r.code != cli.ExitContract || r.stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and an empty stderr", r.code, r.stdout, r.stderr)
	}
	envelope(t, r.stdout)
	var env contracts.ErrorEnvelope
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil || env.Error == nil {
		t.Fatalf("stdout %q is not an error envelope: %v", r.stdout, err)
	}
	if env.Error.Kind != kind || env.Error.Code != code {
		t.Fatalf("error %s/%s (%s); want %s/%s", env.Error.Kind, env.Error.Code, env.Error.Detail, kind, code)
	}
	return env.Error
}

// usage asserts exit 2 with nothing on stdout and a message on stderr
// containing want.
func (r result) usage(t *testing.T, want string) {
	t.Helper()
	if r.code != cli.ExitUsage || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and an empty stdout", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr %q does not contain %q", r.stderr, want)
	}
}

// envelope checks that stdout is exactly one JSON value and a newline.
func envelope(t *testing.T, stdout string) map[string]any {
	t.Helper()
	if !strings.HasSuffix(stdout, "\n") || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("stdout %q is not one line ending in a newline", stdout)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("stdout %q is not a JSON object: %v", stdout, err)
	}
	return m
}

// str reads a string at a path of keys and indexes in a decoded envelope.
func str(t *testing.T, v any, path ...any) string {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("value at %v is %T, not a string", path, v)
	}
	return s
}

// testScheme is a driver registered only in these tests: every Open of
// clitest://NAME returns the same memory backend, whose clock the test
// moves, so several Run calls share one store as separate processes share
// a SQLite file. It shows how a custom binary adds a scheme.
const testScheme = "clitest"

var stores sync.Map // name -> *sharedStore

// sharedStore is a memory backend whose Close is a no-op, so it outlives
// the one Run that opened it.
type sharedStore struct{ *memory.Backend }

func (sharedStore) Close() error { return nil }

func init() {
	engine.Register(testScheme, func(_ context.Context, u *url.URL) (driver.Backend, error) {
		b, ok := stores.Load(u.Host)
		if !ok {
			return nil, contracts.Invalid("backend_url", "no such test store")
		}
		return b.(sharedStore), nil
	})
}

// newStore returns the --backend URL of a fresh shared store and its clock.
func newStore(t *testing.T) (string, *clock) {
	c := &clock{}
	c.ms.Store(clockStartMs)
	name := strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name()))
	stores.Store(name, sharedStore{memory.New(memory.WithClock(c.Now))})
	t.Cleanup(func() { stores.Delete(name) })
	return testScheme + "://" + name, c
}

// clockStartMs is where test clocks start: 2026-01-01T00:00:00Z.
const clockStartMs = 1767225600000

// clock is a manual clock the tests move forward.
type clock struct{ ms atomic.Int64 }

func (c *clock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) NowMs() int64            { return c.ms.Load() }
func (c *clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// watchScheme opens the store of testScheme wrapped in a backend that is
// also a driver.KeystoreWatcher and counts the listeners started.
const watchScheme = "clitestwatch"

var watchesStarted atomic.Int64

type watchedStore struct{ sharedStore }

func (watchedStore) WatchKeystore(ctx context.Context, _ func()) error {
	watchesStarted.Add(1)
	<-ctx.Done()
	return nil
}

func init() {
	engine.Register(watchScheme, func(_ context.Context, u *url.URL) (driver.Backend, error) {
		b, ok := stores.Load(u.Host)
		if !ok {
			return nil, contracts.Invalid("backend_url", "no such test store")
		}
		return watchedStore{b.(sharedStore)}, nil
	})
}
