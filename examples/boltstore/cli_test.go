package boltstore_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/examples/boltstore"
)

// built is the ff binary TestMain builds once for the CLI tests, or the
// reason it could not.
var built struct {
	bin string
	err error
}

// TestMain builds ./cmd/ff — the ff command line with bolt:// built in, as
// a user builds it — once, unless -short, and removes it afterwards.
func TestMain(m *testing.M) {
	flag.Parse()
	dir := ""
	if !testing.Short() {
		dir, built.err = os.MkdirTemp("", "boltstore-ff-")
		if built.err == nil {
			built.bin = filepath.Join(dir, "ff")
			var out []byte
			out, built.err = exec.Command("go", "build", "-o", built.bin, "./cmd/ff").CombinedOutput()
			if built.err != nil {
				built.err = fmt.Errorf("go build ./cmd/ff: %w\n%s", built.err, out)
			}
		}
	}
	code := m.Run()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

// ffBinary returns the binary TestMain built.
func ffBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a binary; skipped with -short")
	}
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// ffRun is one ff process against one bolt file.
type ffRun struct {
	t   *testing.T
	bin string
	url string
	env []string // added to the environment, after FF_BACKEND_URL and FF_KEK_FILE are cleared
}

// run executes ff with args and returns its stdout and exit code. stderr is
// logged.
func (r ffRun) run(args ...string) (string, int) {
	r.t.Helper()
	cmd := exec.Command(r.bin, append([]string{"--backend", r.url}, args...)...)
	cmd.Env = append(append(os.Environ(), "FF_BACKEND_URL=", "FF_KEK_FILE="), r.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		r.t.Fatalf("ff %s: %v", strings.Join(args, " "), err)
	}
	if stderr.Len() > 0 {
		r.t.Logf("ff %s: stderr: %s", args[0], stderr.String())
	}
	return stdout.String(), code
}

// ok runs ff, wants exit 0 and one JSON envelope, and decodes it into v.
func (r ffRun) ok(v any, args ...string) {
	r.t.Helper()
	out, code := r.run(args...)
	if code != 0 {
		r.t.Fatalf("ff %s: exit %d, want 0; stdout %s", args[0], code, out)
	}
	decodeEnvelope(r.t, args[0], out, v)
}

// fails runs ff, wants exit 1 with an error envelope, and checks its error
// against want (errors.Is: kind, code and, where want has one, reason).
func (r ffRun) fails(want contracts.Sentinel, args ...string) {
	r.t.Helper()
	out, code := r.run(args...)
	if code != 1 {
		r.t.Fatalf("ff %s: exit %d, want 1; stdout %s", args[0], code, out)
	}
	var env contracts.ErrorEnvelope
	decodeEnvelope(r.t, args[0], out, &env)
	if env.Error == nil || !errors.Is(env.Error, want) {
		r.t.Fatalf("ff %s: got %s, want %v", args[0], strings.TrimSpace(out), want)
	}
}

// decodeEnvelope checks that out is exactly one JSON value and a newline,
// and decodes it strictly into v.
func decodeEnvelope(t *testing.T, cmd, out string, v any) {
	t.Helper()
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("ff %s: stdout is not one line: %q", cmd, out)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("ff %s: decoding %q: %v", cmd, out, err)
	}
}

func secretHex(fill byte) (string, contracts.Secret) {
	s := contracts.Secret(bytes.Repeat([]byte{fill}, 32))
	return hex.EncodeToString(s), s
}

// TestCLI builds the example's ff and runs every command against one
// bolt:// file, each in its own process: what one command wrote, the next
// reads after the file was closed and reopened.
func TestCLI(t *testing.T) {
	dir := t.TempDir()
	ff := ffRun{t: t, bin: ffBinary(t), url: "bolt://" + filepath.Join(dir, "ff.bolt")}
	hex1, secret1 := secretHex(0x11)
	hex2, secret2 := secretHex(0x22)
	secretFile := filepath.Join(dir, "k1.hex")
	if err := os.WriteFile(secretFile, []byte(hex1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Log("keystore: seed, sign, verify, rotate, kids")
	ff.fails(contracts.ErrHMACSecretNotInitialized, "sign", "--scope", "s", "--message", "hello")
	var seed contracts.SeedOutcome
	ff.ok(&seed, "seed", "--kid", "k1", "--secret-file", secretFile)
	if seed.Outcome != contracts.SeedSeeded || seed.CurrentKid != "k1" || seed.SameSecret != nil {
		t.Fatalf("seed: %+v", seed)
	}
	ff.ok(&seed, "seed", "--kid", "k1", "--secret-hex", strings.ToUpper(hex1))
	if seed.Outcome != contracts.SeedAlreadySeeded || seed.SameSecret == nil || !*seed.SameSecret {
		t.Fatalf("seed again: %+v", seed)
	}
	var sig contracts.SignResult
	ff.ok(&sig, "sign", "--scope", "s", "--message", "hello")
	if want := driver.SignToken("k1", secret1, driver.SignatureInput("k1", "s", []byte("hello"))); sig.Kid != "k1" || sig.Token != want {
		t.Fatalf("sign: %+v, want token %s", sig, want)
	}
	var ver contracts.VerifyResult
	ff.ok(&ver, "verify", "--scope", "s", "--message", "hello", "--token", sig.Token)
	if !ver.Valid || ver.Kid != "k1" {
		t.Fatalf("verify: %+v", ver)
	}
	ff.fails(contracts.ErrSignatureMismatch, "verify", "--scope", "s", "--message", "hellO", "--token", sig.Token)
	var rot contracts.RotateAllResult
	ff.ok(&rot, "rotate", "--kid", "k2", "--secret-hex", hex2, "--grace-ms", "3600000")
	if len(rot.Entries) != 1 || rot.Entries[0].Outcome == nil || rot.Entries[0].Outcome.Outcome != contracts.RotateRotated ||
		*rot.Entries[0].Outcome.PreviousKid != "k1" {
		t.Fatalf("rotate: %+v", rot)
	}
	out, code := ff.run("rotate", "--kid", "k1", "--secret-hex", hex1)
	if code != 1 || !strings.Contains(out, `"code":"rotation_conflict"`) {
		t.Fatalf("rotate back to k1: exit %d, %s; want exit 1 with rotation_conflict in the entry", code, out)
	}
	var kids contracts.ListKidsResult
	ff.ok(&kids, "kids")
	if p := kids.Partitions; len(p) != 1 || *p[0].CurrentKid != "k2" || len(p[0].Verifying) != 1 || p[0].Verifying[0].Kid != "k1" {
		t.Fatalf("kids: %+v", kids)
	}
	ff.ok(&ver, "verify", "--scope", "s", "--message", "hello", "--token", sig.Token)
	if !ver.Valid || ver.Kid != "k1" {
		t.Fatalf("verify in grace: %+v", ver)
	}

	t.Log("suspensions: suspend, suspended, signal, signals, claim, complete")
	var susp contracts.SuspendOutcome
	ff.ok(&susp, "suspend", "--execution", "order-1", "--waitpoint", "approve", "--waitpoint", "reject", "--idempotency-key", "s-1")
	if susp.Outcome != contracts.OutcomeSuspended || len(susp.Waitpoints) != 2 || susp.TimeoutAtMs != nil {
		t.Fatalf("suspend: %+v", susp)
	}
	for _, w := range susp.Waitpoints {
		in := driver.WaitpointInput("k2", "order-1", w.WaitpointID, w.WaitpointKey, w.CreatedAtMs)
		if w.Token != driver.SignToken("k2", secret2, in) {
			t.Fatalf("suspend: waitpoint %s's token is not signed by k2 over its message", w.WaitpointKey)
		}
	}
	var replay contracts.SuspendOutcome
	ff.ok(&replay, "suspend", "--execution", "order-1", "--waitpoint", "approve", "--waitpoint", "reject", "--idempotency-key", "s-1")
	if replay.SuspensionID != susp.SuspensionID || replay.Waitpoints[0].Token != susp.Waitpoints[0].Token {
		t.Fatalf("suspend replay: %+v, want the first outcome %+v", replay, susp)
	}
	ff.fails(contracts.ErrAlreadySuspended, "suspend", "--execution", "order-1", "--waitpoint", "again")
	var list contracts.ListSuspendedResult
	ff.ok(&list, "suspended", "--limit", "10")
	if len(list.Executions) != 1 || list.Executions[0].ExecutionID != "order-1" || list.Executions[0].Waitpoints != 2 || list.NextCursor != nil {
		t.Fatalf("suspended: %+v", list)
	}
	approve := susp.Waitpoints[0]
	ff.fails(contracts.ErrSignatureMismatch, "signal", "--execution", "order-1", "--waitpoint-id", approve.WaitpointID,
		"--token", susp.Waitpoints[1].Token, "--name", "approved")
	signal := []string{"signal", "--execution", "order-1", "--waitpoint-id", approve.WaitpointID, "--token", approve.Token,
		"--name", "approved", "--payload", `{ "by": "<alice>" }`, "--idempotency-key", "hook-1"}
	var del contracts.DeliverSignalOutcome
	ff.ok(&del, signal...)
	if del.Outcome != contracts.OutcomeAccepted || !del.Resumed {
		t.Fatalf("signal: %+v", del)
	}
	var dup contracts.DeliverSignalOutcome
	ff.ok(&dup, signal...)
	if dup.Outcome != contracts.OutcomeDuplicate || dup.SignalID != del.SignalID {
		t.Fatalf("signal replay: %+v, want duplicate of %s", dup, del.SignalID)
	}
	reject := susp.Waitpoints[1]
	ff.fails(contracts.ErrWaitpointClosed, "signal", "--execution", "order-1", "--waitpoint-id", reject.WaitpointID,
		"--token", reject.Token, "--name", "rejected")
	out, code = ff.run("signals", "--execution", "order-1")
	wantPayload := `"payload":{"by":"<alice>"}` // compact, stored and printed byte for byte, unescaped
	if code != 0 || !strings.Contains(out, `"signal_id":"`+del.SignalID+`"`) || !strings.Contains(out, wantPayload) {
		t.Fatalf("signals: exit %d, %s; want the signal with %s", code, out, wantPayload)
	}
	ff.ok(&list, "suspended")
	if len(list.Executions) != 0 {
		t.Fatalf("suspended after resume: %+v", list)
	}
	var claim contracts.ClaimOutcome
	ff.ok(&claim, "claim", "--worker", "w1", "--lease-ms", "60000")
	if claim.Outcome != contracts.OutcomeClaimed || claim.ExecutionID != "order-1" || claim.Reason != contracts.ReasonSignal ||
		len(claim.Signals) != 1 || claim.Signals[0].SignalID != del.SignalID {
		t.Fatalf("claim: %+v", claim)
	}
	if out, code := ff.run("claim", "--worker", "w2"); code != 0 || out != `{"outcome":"none"}`+"\n" {
		t.Fatalf("claim with nothing claimable: exit %d, %q", code, out)
	}
	ff.fails(contracts.ErrLeaseMismatch, "complete", "--execution", "order-1", "--lease-id", driver.NewID())
	var done contracts.CompleteOutcome
	ff.ok(&done, "complete", "--execution", "order-1", "--lease-id", claim.LeaseID)
	if done.Outcome != contracts.OutcomeCompleted || done.ExecutionID != "order-1" {
		t.Fatalf("complete: %+v", done)
	}
	ff.fails(contracts.ErrExecutionNotFound, "signals", "--execution", "order-1")

	t.Log("migrate has nothing to apply; usage errors exit 2")
	if out, code := ff.run("migrate"); code != 0 || out != `{"applied":[]}`+"\n" {
		t.Fatalf("migrate: exit %d, %q", code, out)
	}
	if _, code := ff.run("suspend", "--execution", "order-2"); code != 2 {
		t.Fatalf("suspend without --waitpoint: exit %d, want 2", code)
	}
}

// TestCLIWhileAnotherProcessHoldsTheFile checks the one-process-at-a-time
// rule: while this test process has the file open, an ff process waits for
// the lock up to the lock timeout and then fails with the retryable
// transport error backend_unreachable; once the file is closed it works.
func TestCLIWhileAnotherProcessHoldsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ff.bolt")
	ff := ffRun{t: t, bin: ffBinary(t), url: "bolt://" + path + "?lock_timeout=200ms"}
	b, err := boltstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ff.fails(contracts.ErrBackendUnreachable, "kids")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	var kids contracts.ListKidsResult
	ff.ok(&kids, "kids")
}

// rewrapEnvelope is ff rewrap's output.
type rewrapEnvelope struct {
	contracts.RewrapResult

	KEKFingerprint *string `json:"kek_fingerprint"`
}

// TestCLISecretsAtRest runs ff with a KEK on a bolt file, each command in
// its own process: seed through FF_KEK_FILE, a file that holds no secret,
// kek_mismatch without the KEK, ff rewrap to another KEK (the URL's
// kek_file names the current one) and back to plain.
func TestCLISecretsAtRest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ff.bolt")
	bin := ffBinary(t)
	fileA, fileB := kekFile(t, "a.kek", kekBytesA), kekFile(t, "b.kek", kekBytesB)
	plain := ffRun{t: t, bin: bin, url: "bolt://" + path}
	underA := ffRun{t: t, bin: bin, url: plain.url, env: []string{"FF_KEK_FILE=" + fileA}}
	underB := ffRun{t: t, bin: bin, url: plain.url + "?" + url.Values{engine.ParamKEKFile: {fileB}}.Encode()}
	hex1, secret1 := secretHex(0x5c)
	want := driver.SignToken("k1", secret1, driver.SignatureInput("k1", "s", []byte("hello")))

	var seed contracts.SeedOutcome
	underA.ok(&seed, "seed", "--kid", "k1", "--secret-hex", hex1)
	underA.ok(&seed, "seed", "--kid", "k1", "--secret-hex", hex1)
	if seed.Outcome != contracts.SeedAlreadySeeded || seed.SameSecret == nil || !*seed.SameSecret {
		t.Fatalf("seed again under A: %+v", seed)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if holdsSecret(raw, secret1) {
		t.Fatal("the bolt file sealed under KEK A holds the secret")
	}
	var sig contracts.SignResult
	underA.ok(&sig, "sign", "--scope", "s", "--message", "hello")
	if sig.Token != want {
		t.Fatal("sign under A: not the secret's token")
	}
	plain.fails(contracts.ErrKEKMismatch, "sign", "--scope", "s", "--message", "hello")

	var r rewrapEnvelope
	underA.ok(&r, "rewrap", "--new-kek-file", fileB)
	if fpB := testKey(t, kekBytesB).Fingerprint(); r.RewrapResult != (contracts.RewrapResult{Partitions: 1, Rewrapped: 1}) ||
		r.KEKFingerprint == nil || *r.KEKFingerprint != fpB {
		t.Fatalf("rewrap to B: %+v", r)
	}
	underA.fails(contracts.ErrKEKMismatch, "sign", "--scope", "s", "--message", "hello")
	underB.ok(&sig, "sign", "--scope", "s", "--message", "hello")
	if sig.Token != want {
		t.Fatal("sign under B after the rewrap: another token")
	}

	underB.ok(&r, "rewrap", "--to-plain")
	if r.RewrapResult != (contracts.RewrapResult{Partitions: 1, Rewrapped: 1}) || r.KEKFingerprint != nil {
		t.Fatalf("rewrap to plain: %+v", r)
	}
	plain.ok(&sig, "sign", "--scope", "s", "--message", "hello")
	if sig.Token != want {
		t.Fatal("sign in plain after the rewrap: another token")
	}
}
