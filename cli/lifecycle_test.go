package cli_test

// Tests of the commands of version 2 of the waitpoint lifecycle
// (docs/spec.md §8): ff waitpoint create|get, extend, release, cancel, and
// suspend's --pending, --count and --tag and suspended's --tag. Every
// refused argument names its field (or flag) and changes nothing.

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// ffOn returns a runner of ff commands on backend b.
func ffOn(t *testing.T, b string) func(args ...string) result {
	return func(args ...string) result {
		t.Helper()
		return run(t, "", append([]string{"--backend", b}, args...)...)
	}
}

// TestApprovalMailBeforeTheWait is the story of docs/spec.md §8.1: the
// execution opens a pending waitpoint and mails its token; the approver
// answers before the execution suspends; the suspend that uses the
// waitpoint answers already_satisfied with that signal.
func TestApprovalMailBeforeTheWait(t *testing.T) {
	b, clock := seeded(t)
	ff := ffOn(t, b)
	now := itoa(clock.NowMs())
	day := itoa(clock.NowMs() + 24*3600*1000)

	created := ff("waitpoint", "create", "--execution", "order-7", "--key", "approve", "--expires-in", "24h", "--tag", "mail").ok(t)
	wp, token := str(t, created, "waitpoint_id"), str(t, created, "token")
	if want := driver.SignToken("k1", mustSecret(t, secretA), driver.WaitpointInput("k1", "order-7", wp, "approve", clock.NowMs())); token != want {
		t.Fatalf("token is not the waitpoint token of order-7/%s/approve", wp)
	}
	wantStdout(t, ff("waitpoint", "get", "--execution", "order-7", "--waitpoint-id", wp),
		`{"execution_id":"order-7","waitpoint_id":"`+wp+`","waitpoint_key":"approve","status":"pending","created_at_ms":`+now+
			`,"expires_at_ms":`+day+`,"signals":0,"token_fingerprint":"`+driver.TokenFingerprint(token)+`","tags":["mail"]}`)
	ff("signals", "--execution", "order-7").contractErr(t, contracts.KindNotFound, contracts.CodeExecutionNotFound)

	// The approver answers the mail before the execution suspends.
	clock.Advance(time.Second)
	sig := ff("signal", "--execution", "order-7", "--waitpoint-id", wp, "--token", token,
		"--name", "approved", "--payload", `{"by":"ana"}`, "--idempotency-key", "mail-1").ok(t)
	if sig["outcome"] != "accepted" || sig["resumed"] != false {
		t.Fatalf("signal to a pending waitpoint: %v", sig)
	}
	signal := `{"signal_id":"` + str(t, sig, "signal_id") + `","waitpoint_id":"` + wp + `","waitpoint_key":"approve","name":"approved",` +
		`"payload":{"by":"ana"},"idempotency_key":"mail-1","delivered_at_ms":` + itoa(clock.NowMs()) + `}`
	if got := ff("waitpoint", "get", "--execution", "order-7", "--waitpoint-id", wp).ok(t); got["signals"] != float64(1) || got["status"] != "pending" {
		t.Fatalf("get after the signal: %v", got)
	}

	// The execution suspends on the waitpoint and does not wait.
	clock.Advance(time.Second)
	sus := ff("suspend", "--execution", "order-7", "--pending", wp, "--idempotency-key", "s1")
	done := sus.ok(t)
	wantStdout(t, sus, `{"outcome":"already_satisfied","execution_id":"order-7","suspension_id":"`+str(t, done, "suspension_id")+
		`","signals":[`+signal+`]}`)
	again := ff("suspend", "--execution", "order-7", "--pending", wp, "--idempotency-key", "s1")
	if again.stdout != sus.stdout {
		t.Fatalf("replay differs:\n%s%s", sus.stdout, again.stdout)
	}
	wantStdout(t, ff("signals", "--execution", "order-7"),
		`{"execution_id":"order-7","suspension_id":"`+str(t, done, "suspension_id")+`","signals":[`+signal+`],"next_cursor":null}`)
	if got := ff("waitpoint", "get", "--execution", "order-7", "--waitpoint-id", wp).ok(t); got["status"] != "closed" {
		t.Fatalf("get after already_satisfied: %v", got)
	}
	ff("signal", "--execution", "order-7", "--waitpoint-id", wp, "--token", token, "--name", "approved").
		contractErr(t, contracts.KindState, contracts.CodeWaitpointClosed)
	wantStdout(t, ff("suspended"), `{"executions":[],"next_cursor":null}`)
	wantStdout(t, ff("claim", "--worker", "w1"), `{"outcome":"none"}`)
}

// TestSuspendPendingCountAndTags: --waitpoint and --pending items keep
// their command-line order, --count N is the condition {"count":N}, --tag
// is echoed and filters ff suspended.
func TestSuspendPendingCountAndTags(t *testing.T) {
	b, clock := seeded(t)
	ff := ffOn(t, b)
	p := ff("waitpoint", "create", "--execution", "e1", "--key", "legal", "--expires-in-ms", "60000", "--tag", "mail").ok(t)
	sus := ff("suspend", "--execution", "e1", "--waitpoint", "cfo", "--pending", str(t, p, "waitpoint_id"), "--waitpoint", "ceo",
		"--count", "2", "--tag", "approval", "--tag", "q3").ok(t)
	if sus["outcome"] != "suspended" || sus["condition"].(map[string]any)["count"] != float64(2) {
		t.Fatalf("suspend: %v", sus)
	}
	keys := []string{str(t, sus, "waitpoints", 0, "waitpoint_key"), str(t, sus, "waitpoints", 1, "waitpoint_key"), str(t, sus, "waitpoints", 2, "waitpoint_key")}
	if strings.Join(keys, ",") != "cfo,legal,ceo" || str(t, sus, "waitpoints", 1, "waitpoint_id") != str(t, p, "waitpoint_id") {
		t.Fatalf("waitpoints out of command-line order: %v", sus["waitpoints"])
	}
	if str(t, sus, "waitpoints", 1, "token") != str(t, p, "token") {
		t.Fatal("the pending waitpoint's token changed without a rotation")
	}
	if tags := sus["tags"].([]any); len(tags) != 2 || tags[0] != "approval" || tags[1] != "q3" {
		t.Fatalf("tags: %v", sus["tags"])
	}
	clock.Advance(time.Millisecond)
	ff("suspend", "--execution", "e2", "--waitpoint", "w", "--tag", "q4").ok(t)

	listed := ff("suspended", "--tag", "q3").ok(t)
	if rows := listed["executions"].([]any); len(rows) != 1 || str(t, rows[0], "execution_id") != "e1" || len(rows[0].(map[string]any)["tags"].([]any)) != 2 {
		t.Fatalf("suspended --tag q3: %v", listed)
	}
	wantStdout(t, ff("suspended", "--tag", "none-such"), `{"executions":[],"next_cursor":null}`)
	if rows := ff("suspended").ok(t)["executions"].([]any); len(rows) != 2 {
		t.Fatalf("suspended: %v", rows)
	}

	// Two of three: one signal does not resume, the second does.
	deliver := func(i int) map[string]any {
		return ff("signal", "--execution", "e1", "--waitpoint-id", str(t, sus, "waitpoints", i, "waitpoint_id"),
			"--token", str(t, sus, "waitpoints", i, "token"), "--name", "ok").ok(t)
	}
	if d := deliver(0); d["resumed"] != false {
		t.Fatalf("first of 2: %v", d)
	}
	if d := deliver(2); d["resumed"] != true {
		t.Fatalf("second of 2: %v", d)
	}
}

// TestExtendReleaseCancel: cancel makes the execution claimable with reason
// cancelled; extend is a heartbeat; release gives it back with its reason,
// and the released lease holds nothing any more.
func TestExtendReleaseCancel(t *testing.T) {
	b, clock := seeded(t)
	ff := ffOn(t, b)
	sus := ff("suspend", "--execution", "e", "--waitpoint", "w").ok(t)
	wantStdout(t, ff("cancel", "--execution", "e"), `{"outcome":"cancelled","execution_id":"e","suspension_id":"`+str(t, sus, "suspension_id")+`"}`)
	ff("cancel", "--execution", "e").contractErr(t, contracts.KindConflict, contracts.CodeNotSuspended)
	ff("signal", "--execution", "e", "--waitpoint-id", str(t, sus, "waitpoints", 0, "waitpoint_id"),
		"--token", str(t, sus, "waitpoints", 0, "token"), "--name", "late").contractErr(t, contracts.KindState, contracts.CodeWaitpointClosed)

	claim := ff("claim", "--worker", "w1").ok(t)
	if claim["reason"] != "cancelled" {
		t.Fatalf("claim after cancel: %v", claim)
	}
	lease := str(t, claim, "lease_id")
	clock.Advance(time.Second)
	wantStdout(t, ff("extend", "--execution", "e", "--lease-id", lease, "--lease-ms", "5000"),
		`{"outcome":"extended","execution_id":"e","lease_expires_at_ms":`+itoa(clock.NowMs()+5000)+`}`)
	wantStdout(t, ff("extend", "--execution", "e", "--lease-id", lease),
		`{"outcome":"extended","execution_id":"e","lease_expires_at_ms":`+itoa(clock.NowMs()+contracts.DefaultLeaseMs)+`}`)
	wantStdout(t, ff("release", "--execution", "e", "--lease-id", lease), `{"outcome":"released","execution_id":"e"}`)
	ff("extend", "--execution", "e", "--lease-id", lease).contractErr(t, contracts.KindConflict, contracts.CodeLeaseMismatch)
	ff("release", "--execution", "e", "--lease-id", lease).contractErr(t, contracts.KindConflict, contracts.CodeLeaseMismatch)

	again := ff("claim", "--worker", "w2").ok(t)
	if again["reason"] != "cancelled" || again["lease_id"] == lease {
		t.Fatalf("claim after release: %v", again)
	}
	ff("complete", "--execution", "e", "--lease-id", str(t, again, "lease_id")).ok(t)
	ff("extend", "--execution", "e", "--lease-id", lease).contractErr(t, contracts.KindNotFound, contracts.CodeExecutionNotFound)
	ff("release", "--execution", "e", "--lease-id", lease).contractErr(t, contracts.KindNotFound, contracts.CodeExecutionNotFound)
	ff("cancel", "--execution", "e").contractErr(t, contracts.KindNotFound, contracts.CodeExecutionNotFound)
}

// TestLifecycleRefusals: each refused argument is a validation envelope
// naming its field (exit 1), or a usage error naming the flag (exit 2),
// and the store is unchanged afterwards.
func TestLifecycleRefusals(t *testing.T) {
	b, _ := seeded(t)
	ff := ffOn(t, b)
	p := ff("waitpoint", "create", "--execution", "e", "--key", "k", "--expires-in", "1h").ok(t)
	pending := str(t, p, "waitpoint_id")
	before := ff("waitpoint", "get", "--execution", "e", "--waitpoint-id", pending).stdout

	elevenTags := []string{}
	for i := range 11 {
		elevenTags = append(elevenTags, "--tag", "t"+itoa(int64(i)))
	}
	for _, c := range []struct {
		field string
		args  []string
	}{
		{"condition.count", []string{"suspend", "--execution", "e", "--pending", pending, "--count", "0"}},
		{"condition.count", []string{"suspend", "--execution", "e", "--pending", pending, "--waitpoint", "w", "--count", "3"}},
		{"condition.count", []string{"suspend", "--execution", "e", "--pending", pending, "--count", "-1"}},
		{"condition.count", []string{"suspend", "--execution", "e", "--pending", pending, "--count", "4294967297"}},
		{"condition", []string{"suspend", "--execution", "e", "--pending", pending, "--condition", "most"}},
		{"tags", append([]string{"suspend", "--execution", "e", "--pending", pending}, elevenTags...)},
		{"tags", []string{"suspend", "--execution", "e", "--pending", pending, "--tag", "a", "--tag", "a"}},
		{"tags", []string{"suspend", "--execution", "e", "--pending", pending, "--tag", "has space"}},
		{"tags", []string{"suspend", "--execution", "e", "--pending", pending, "--tag", strings.Repeat("t", 65)}},
		{"waitpoints.pending", []string{"suspend", "--execution", "e", "--pending", "not-a-uuid"}},
		{"waitpoints.pending", []string{"suspend", "--execution", "e", "--pending", pending, "--pending", pending}},
		{"waitpoints", []string{"suspend", "--execution", "e", "--pending", pending,
			"--waitpoint", "a", "--waitpoint", "b", "--waitpoint", "c", "--waitpoint", "d", "--waitpoint", "e", "--waitpoint", "f",
			"--waitpoint", "g", "--waitpoint", "h", "--waitpoint", "i", "--waitpoint", "j", "--waitpoint", "k2", "--waitpoint", "l",
			"--waitpoint", "m", "--waitpoint", "n", "--waitpoint", "o", "--waitpoint", "p"}},
		{"waitpoints.key", []string{"suspend", "--execution", "e", "--pending", pending, "--waitpoint", ".."}},
		{"expires_in_ms", []string{"waitpoint", "create", "--execution", "e", "--key", "k", "--expires-in", "0s"}},
		{"expires_in_ms", []string{"waitpoint", "create", "--execution", "e", "--key", "k", "--expires-in", "500us"}},
		{"expires_in_ms", []string{"waitpoint", "create", "--execution", "e", "--key", "k", "--expires-in-ms", "-5"}},
		{"key", []string{"waitpoint", "create", "--execution", "e", "--key", "a b", "--expires-in", "1h"}},
		{"lease_id", []string{"waitpoint", "create", "--execution", "e", "--key", "k", "--expires-in", "1h", "--lease-id", "nope"}},
		{"tags", append([]string{"waitpoint", "create", "--execution", "e", "--key", "k", "--expires-in", "1h"}, elevenTags...)},
		{"waitpoint_id", []string{"waitpoint", "get", "--execution", "e", "--waitpoint-id", "nope"}},
		{"execution_id", []string{"waitpoint", "get", "--execution", ".", "--waitpoint-id", pending}},
		{"lease_id", []string{"extend", "--execution", "e", "--lease-id", "nope"}},
		{"lease_ms", []string{"extend", "--execution", "e", "--lease-id", driver.NewID(), "--lease-ms", "-1"}},
		{"lease_id", []string{"release", "--execution", "e", "--lease-id", "nope"}},
		{"execution_id", []string{"cancel", "--execution", "a b"}},
		{"tag", []string{"suspended", "--tag", "has space"}},
	} {
		e := ff(c.args...).contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		if !strings.HasPrefix(e.Detail, c.field+": ") {
			t.Errorf("ff %s: detail %q does not name %s", strings.Join(c.args, " "), e.Detail, c.field)
		}
	}
	for _, c := range []struct {
		want string
		args []string
	}{
		{"missing --waitpoint (or --pending)", []string{"suspend", "--execution", "e"}},
		{"give at most one of --condition, --count", []string{"suspend", "--execution", "e", "--pending", pending, "--count", "1", "--condition", "all"}},
		{"give at most one of --condition, --count", []string{"suspend", "--execution", "e", "--pending", pending, "--count", "1", "--condition", "any"}},
		{"-count", []string{"suspend", "--execution", "e", "--pending", pending, "--count", "two"}},
		{"missing --execution, --key", []string{"waitpoint", "create", "--expires-in", "1h"}},
		{"missing --expires-in (or --expires-in-ms)", []string{"waitpoint", "create", "--execution", "e", "--key", "k"}},
		{"give at most one of --expires-in, --expires-in-ms", []string{"waitpoint", "create", "--execution", "e", "--key", "k", "--expires-in", "1h", "--expires-in-ms", "5"}},
		{"-expires-in", []string{"waitpoint", "create", "--execution", "e", "--key", "k", "--expires-in", "tomorrow"}},
		{"missing --waitpoint-id", []string{"waitpoint", "get", "--execution", "e"}},
		{"missing --lease-id", []string{"extend", "--execution", "e"}},
		{"missing --execution, --lease-id", []string{"release"}},
		{"missing --execution", []string{"cancel"}},
		{`ff waitpoint: unknown subcommand "delete"`, []string{"waitpoint", "delete"}},
		{"usage: ff [--backend URL] waitpoint <subcommand>", []string{"waitpoint"}},
		{`unexpected argument "x"`, []string{"waitpoint", "get", "--execution", "e", "--waitpoint-id", pending, "x"}},
	} {
		ff(c.args...).usage(t, c.want)
	}

	// Nothing changed: no suspension, no second waitpoint, the first as it was.
	wantStdout(t, ff("suspended"), `{"executions":[],"next_cursor":null}`)
	if got := ff("waitpoint", "get", "--execution", "e", "--waitpoint-id", pending).stdout; got != before {
		t.Fatalf("the pending waitpoint changed:\n%s%s", before, got)
	}
	ff("signals", "--execution", "e").contractErr(t, contracts.KindNotFound, contracts.CodeExecutionNotFound)
}

// TestLifecycleStateErrors: the new error codes reach the envelope.
func TestLifecycleStateErrors(t *testing.T) {
	b, _ := seeded(t)
	ff := ffOn(t, b)
	ff("waitpoint", "get", "--execution", "e", "--waitpoint-id", driver.NewID()).
		contractErr(t, contracts.KindNotFound, contracts.CodeWaitpointNotFound)
	ff("suspend", "--execution", "e", "--pending", driver.NewID()).
		contractErr(t, contracts.KindConflict, contracts.CodePendingWaitpointUnavailable)
	for range contracts.MaxPendingWaitpoints {
		ff("waitpoint", "create", "--execution", "e", "--key", "k", "--expires-in", "1h").ok(t)
	}
	ff("waitpoint", "create", "--execution", "e", "--key", "k", "--expires-in", "1h").
		contractErr(t, contracts.KindState, contracts.CodeWaitpointLimitExceeded)
	ff("suspend", "--execution", "s", "--waitpoint", "w").ok(t)
	ff("waitpoint", "create", "--execution", "s", "--key", "k", "--expires-in", "1h").
		contractErr(t, contracts.KindConflict, contracts.CodeAlreadySuspended)
}

// v1Scheme opens a memory backend seen through driver.Backend alone: a
// driver written before docs/spec.md §8, without driver.Lifecycle.
const v1Scheme = "clitestv1"

type v1Backend struct{ driver.Backend }

func init() {
	engine.Register(v1Scheme, func(_ context.Context, u *url.URL) (driver.Backend, error) {
		b, ok := stores.Load(u.Host)
		if !ok {
			return nil, contracts.Invalid("backend_url", "no such test store")
		}
		return v1Backend{b.(sharedStore)}, nil
	})
}

// TestLifecycleUnsupported: on a backend without driver.Lifecycle the new
// commands and the version 2 flags answer unavailable / unsupported (exit
// 1), and the version 1 commands work as before.
func TestLifecycleUnsupported(t *testing.T) {
	b, _ := seeded(t)
	v1 := ffOn(t, strings.Replace(b, testScheme+"://", v1Scheme+"://", 1))
	for _, args := range [][]string{
		{"waitpoint", "create", "--execution", "e", "--key", "k", "--expires-in", "1h"},
		{"waitpoint", "get", "--execution", "e", "--waitpoint-id", driver.NewID()},
		{"extend", "--execution", "e", "--lease-id", driver.NewID()},
		{"release", "--execution", "e", "--lease-id", driver.NewID()},
		{"cancel", "--execution", "e"},
		{"suspend", "--execution", "e", "--waitpoint", "w", "--tag", "t"},
		{"suspend", "--execution", "e", "--waitpoint", "w", "--count", "1"},
		{"suspend", "--execution", "e", "--pending", driver.NewID()},
		{"suspended", "--tag", "t"},
	} {
		v1(args...).contractErr(t, contracts.KindUnavailable, contracts.CodeUnsupported)
	}
	v1("suspend", "--execution", "e", "--waitpoint", "w").ok(t)
	if rows := v1("suspended").ok(t)["executions"].([]any); len(rows) != 1 {
		t.Fatalf("suspended: %v", rows)
	}
}

// TestLifecycleHelp: ff help lists the new commands, and help reaches a
// subcommand's flags.
func TestLifecycleHelp(t *testing.T) {
	r := run(t, "", "help", "waitpoint")
	if r.code != 0 || !strings.Contains(r.stderr, "  create ") || !strings.Contains(r.stderr, "  get ") {
		t.Fatalf("help waitpoint: exit %d stderr %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{"help", "waitpoint", "create"}, {"waitpoint", "create", "-h"}} {
		r = run(t, "", args...)
		if r.code != 0 || !strings.Contains(r.stderr, "usage: ff [--backend URL] waitpoint create --execution E") || !strings.Contains(r.stderr, "-expires-in-ms N") {
			t.Fatalf("%v: exit %d stderr %q", args, r.code, r.stderr)
		}
	}
	r = run(t, "", "waitpoint", "--help")
	if r.code != 0 || !strings.Contains(r.stderr, "subcommands:") {
		t.Fatalf("waitpoint --help: exit %d stderr %q", r.code, r.stderr)
	}
	run(t, "", "help", "waitpoint", "nope").usage(t, `unknown subcommand "nope" of waitpoint`)
	for _, c := range []struct{ cmd, flag string }{{"suspend", "-pending W"}, {"suspend", "-count N"}, {"suspend", "-tag T"}, {"suspended", "-tag T"}, {"extend", "-lease-ms N"}} {
		if r := run(t, "", "help", c.cmd); !strings.Contains(r.stderr, c.flag) {
			t.Errorf("ff help %s does not document %s:\n%s", c.cmd, c.flag, r.stderr)
		}
	}
}
