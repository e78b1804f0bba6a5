package cli_test

// Fuzz targets for the CLI's input decoding: the --payload JSON flag, the
// --idempotency-key and --name flags of `ff signal`, and the message bytes
// of `ff sign` / `ff verify` given inline or through --message-file. Every
// run must exit 0, 1 or 2 with exactly one envelope line on stdout (0, 1)
// or nothing on stdout (2); an accepted signal must read back through
// `ff signals` byte for byte; a message must be signed over its exact bytes;
// and no output may contain the secret.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/cli"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// fzScheme serves one memory store per name to every Run of these targets,
// as a SQLite file would serve separate processes.
const fzScheme = "clifuzz"

const fzCLISecretHex = "c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c"

var fzStores sync.Map // name -> fzStore

// fzStore is a memory backend whose Close is a no-op.
type fzStore struct{ *memory.Backend }

func (fzStore) Close() error { return nil }

func init() {
	engine.Register(fzScheme, func(_ context.Context, u *url.URL) (driver.Backend, error) {
		b, ok := fzStores.Load(u.Host)
		if !ok {
			return nil, contracts.Invalid("backend_url", "no such fuzz store")
		}
		return b.(fzStore), nil
	})
}

// fzCLI is a seeded store and the CLI runs against it.
type fzCLI struct {
	url    string
	e      *engine.Engine
	secret contracts.Secret
	n      int
}

func newFzCLI(tb testing.TB, name string) *fzCLI {
	b := memory.New()
	fzStores.Store(name, fzStore{b})
	secret, _ := contracts.ParseSecretHex("secret_hex", fzCLISecretHex)
	e := engine.New(b)
	if _, err := e.Seed(context.Background(), contracts.SeedArgs{Kid: "k1", Secret: secret}); err != nil {
		tb.Fatal(err)
	}
	return &fzCLI{url: fzScheme + "://" + name, e: e, secret: secret}
}

// run executes one CLI command line against the store and checks the
// shape of what it printed.
func (c *fzCLI) run(t *testing.T, stdin []byte, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), append([]string{"--backend", c.url}, args...), bytes.NewReader(stdin), &out, &errOut)
	stdout, stderr := out.String(), errOut.String()
	for _, form := range []string{fzCLISecretHex, strings.ToUpper(fzCLISecretHex), fzCLISecretHex[:32]} {
		if strings.Contains(stdout+stderr, form) {
			t.Fatalf("ff %q printed the secret", args)
		}
	}
	switch code {
	case cli.ExitOK, cli.ExitContract:
		if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") || !json.Valid([]byte(stdout)) {
			t.Fatalf("ff %q: exit %d with stdout %q: not one JSON line", args, code, stdout)
		}
		if code == cli.ExitContract && !strings.HasPrefix(stdout, `{"error":{`) {
			t.Fatalf("ff %q: exit 1 without an error envelope: %q", args, stdout)
		}
	case cli.ExitUsage:
		if stdout != "" || stderr == "" {
			t.Fatalf("ff %q: exit 2 with stdout %q, stderr %q", args, stdout, stderr)
		}
	default:
		t.Fatalf("ff %q: exit %d", args, code)
	}
	return code, stdout
}

// suspend opens a fresh execution with two waitpoints under condition all,
// so one signal does not resume it.
func (c *fzCLI) suspend(t *testing.T) contracts.SuspendOutcome {
	c.n++
	out, err := c.e.Suspend(context.Background(), contracts.SuspendArgs{
		ExecutionID: "fz-" + strings.Repeat("x", c.n%7) + string(rune('a'+c.n%26)) + "-" + fzItoa(c.n),
		Waitpoints:  []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}, Condition: contracts.ConditionAll,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fzItoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func FuzzCLISignalInput(f *testing.F) {
	for _, s := range []struct{ payload, name, idem string }{
		{`{"by":"ann"}`, "approved", "i1"},
		{`  [1, 2 ,3]  `, "n", ""},
		{`"\u0000'); DROP TABLE ff_signals; --"`, "n", "]]\r\n$4\r\nQUIT"},
		{`{"a":1}{"b":2}`, "n", ""},
		{`nul`, "n", ""},
		{`"\xff"`, "n:1", "\x00"},
		{``, "bad name", "i"},
		{`1`, "n", strings.Repeat("i", 257)},
	} {
		f.Add(s.payload, s.name, s.idem, true)
	}
	c := newFzCLI(f, "signal")
	f.Fuzz(func(t *testing.T, payload, name, idem string, withPayload bool) {
		if c.n%500 == 0 { // a fresh store now and then keeps memory bounded
			c = newFzCLI(t, "signal")
		}
		sus := c.suspend(t)
		wp := sus.Waitpoints[0]
		args := []string{"signal", "--execution", sus.ExecutionID, "--waitpoint-id", wp.WaitpointID, "--token", wp.Token, "--name", name, "--idempotency-key", idem}
		if withPayload {
			args = append(args, "--payload", payload)
		}
		code, stdout := c.run(t, nil, args...)
		p := []byte(payload)
		// The idempotency key: at most 256 bytes of valid UTF-8 without NUL.
		idemOK := len(idem) <= contracts.MaxIdempotencyKeyLen && utf8.ValidString(idem) && !strings.Contains(idem, "\x00")
		// The payload: absent, or one I-JSON value of at most 64 KiB (its
		// own fuzz target, in contracts, checks that rule); a payload that
		// is valid implies an argument of valid UTF-8.
		valid := contracts.ValidateIdentifier("name", name) == nil && idemOK &&
			(!withPayload || contracts.ValidatePayload("payload", p) == nil)
		if valid != (code == cli.ExitOK) {
			t.Fatalf("ff signal (valid input: %v) exit %d: %s", valid, code, stdout)
		}
		if code != cli.ExitOK {
			return
		}
		c.checkStored(t, sus.ExecutionID, withPayload, p, name, idem)
	})
}

// checkStored reads the execution's one signal back with `ff signals` and
// checks its name, payload (compact JSON, null when none) and key.
func (c *fzCLI) checkStored(t *testing.T, exec string, withPayload bool, payload []byte, name, idem string) {
	t.Helper()
	code, stdout := c.run(t, nil, "signals", "--execution", exec)
	if code != cli.ExitOK {
		t.Fatalf("ff signals: exit %d %s", code, stdout)
	}
	// The Go API keeps every byte; the JSON envelope can only carry valid
	// UTF-8 (docs/reliability.md, "Findings"), so compare through the engine.
	got, err := c.e.ObserveSignals(context.Background(), contracts.ObserveSignalsArgs{ExecutionID: exec})
	if err != nil || len(got.Signals) != 1 {
		t.Fatalf("observe: %v %+v", err, got)
	}
	s := got.Signals[0]
	want := "null"
	if withPayload && len(payload) > 0 {
		var buf bytes.Buffer
		_ = json.Compact(&buf, payload)
		want = buf.String()
	}
	gotPayload := string(s.Payload)
	if gotPayload == "" {
		gotPayload = "null"
	}
	if s.Name != name || s.IdempotencyKey != idem || gotPayload != want {
		t.Fatalf("stored signal %+v; want name %q key %q payload %s", s, name, idem, want)
	}
}

func FuzzCLIMessageInput(f *testing.F) {
	for _, m := range []string{"", "m", "\x00\x01\xff", "line\r\n", "'); DROP TABLE ff_keys; --", "[==[ ]==]", strings.Repeat("m", 1000)} {
		f.Add([]byte(m), "scope", uint8(0))
	}
	c := newFzCLI(f, "message")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, message []byte, scope string, how uint8) {
		src := []string{"--message-file", filepath.Join(dir, "m")}
		var stdin []byte
		switch how % 3 {
		case 0:
			if err := os.WriteFile(src[1], message, 0o600); err != nil {
				t.Fatal(err)
			}
		case 1:
			src, stdin = []string{"--message-file", "-"}, message
		case 2:
			src = []string{"--message", string(message)}
		}
		code, stdout := c.run(t, stdin, append([]string{"sign", "--scope", scope}, src...)...)
		// Arguments are text (valid UTF-8); a message file is bytes.
		valid := len(scope) <= contracts.MaxScopeLen && len(message) <= contracts.MaxMessageLen &&
			utf8.ValidString(scope) && (how%3 != 2 || utf8.Valid(message))
		if valid != (code == cli.ExitOK) {
			t.Fatalf("ff sign (valid input: %v) exit %d: %s", valid, code, stdout)
		}
		if code != cli.ExitOK {
			return
		}
		var signed contracts.SignResult
		if err := json.Unmarshal([]byte(stdout), &signed); err != nil {
			t.Fatal(err)
		}
		if signed.Token != driver.SignToken("k1", c.secret, driver.SignatureInput("k1", scope, message)) {
			t.Fatalf("ff sign did not sign the exact message bytes")
		}
		if how%3 == 1 {
			stdin = message
		}
		code, stdout = c.run(t, stdin, append([]string{"verify", "--scope", scope, "--token", signed.Token}, src...)...)
		if code != cli.ExitOK || !strings.Contains(stdout, `"valid":true`) {
			t.Fatalf("ff verify of its own token: exit %d %s", code, stdout)
		}
	})
}
