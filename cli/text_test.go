package cli_test

// Tests of the text rules of docs/spec.md §2 on the command line: an
// argument or a secret file that is not valid UTF-8 is a usage error naming
// the flag and quoting no value; a message file stays bytes; payloads must
// be I-JSON and "." and ".." are not identifiers (contract errors).

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// wantTextUsage asserts the usage error of a flag whose value is not valid
// UTF-8: exit 2, the flag named, no value quoted (the stderr is valid
// UTF-8 and holds none of the argument's bytes).
func wantTextUsage(t *testing.T, r result, flag, value string) {
	t.Helper()
	r.usage(t, "--"+flag+": must be valid UTF-8 (the value is not shown)")
	if !utf8.ValidString(r.stderr) {
		t.Fatalf("stderr %q is not valid UTF-8", r.stderr)
	}
	rest := strings.Replace(r.stderr, "--"+flag, "", 1) // the flag's name is not its value
	if v := strings.ToValidUTF8(value, ""); len(v) >= 3 && strings.Contains(rest, v) {
		t.Fatalf("stderr %q quotes the value of --%s", r.stderr, flag)
	}
}

func TestNonUTF8ArgumentsAreUsageErrors(t *testing.T) {
	b, _ := seeded(t)
	sus := run(t, "", "--backend", b, "suspend", "--execution", "e-1", "--waitpoint", "a", "--waitpoint", "b", "--condition", "all").ok(t)
	wp, tok := str(t, sus, "waitpoints", 0, "waitpoint_id"), str(t, sus, "waitpoints", 0, "token")
	signal := []string{"--backend", b, "signal", "--execution", "e-1", "--waitpoint-id", wp, "--token", tok, "--name", "paid"}
	for _, c := range []struct {
		flag, value string
		args        []string
	}{
		{"idempotency-key", "pay-\xff", append(signal[:len(signal):len(signal)], "--idempotency-key", "pay-\xff")},
		{"payload", `{"memo":"` + "\xfe" + `"}`, append(signal[:len(signal):len(signal)], "--payload", `{"memo":"`+"\xfe"+`"}`)},
		{"name", "paid\xff", []string{"--backend", b, "signal", "--execution", "e-1", "--waitpoint-id", wp, "--token", tok, "--name", "paid\xff"}},
		{"token", tok + "\xff", []string{"--backend", b, "signal", "--execution", "e-1", "--waitpoint-id", wp, "--token", tok + "\xff", "--name", "n"}},
		{"execution", "e-\xc3\x28", []string{"--backend", b, "suspend", "--execution", "e-\xc3\x28", "--waitpoint", "a"}},
		{"waitpoint", "wpq-\xed\xa0\x80", []string{"--backend", b, "suspend", "--execution", "e-2", "--waitpoint", "a", "--waitpoint", "wpq-\xed\xa0\x80"}},
		{"idempotency-key", "susp-\xff", []string{"--backend", b, "suspend", "--execution", "e-2", "--waitpoint", "a", "--idempotency-key", "susp-\xff"}},
		{"execution", "e\xff", []string{"--backend", b, "signals", "--execution", "e\xff"}},
		{"cursor", "cur\xff", []string{"--backend", b, "suspended", "--cursor", "cur\xff"}},
		{"worker", "worker\xff", []string{"--backend", b, "claim", "--worker", "worker\xff"}},
		{"lease-id", "lease\xff", []string{"--backend", b, "complete", "--execution", "e-1", "--lease-id", "lease\xff"}},
		{"scope", "scope\xff", []string{"--backend", b, "sign", "--scope", "scope\xff", "--message", "m"}},
		{"message", "message\xff", []string{"--backend", b, "sign", "--message", "message\xff"}},
		{"kid", "kid\xff", []string{"--backend", b, "seed", "--kid", "kid\xff", "--secret-hex", secretB}},
		{"secret-hex", secretB + "\xff", []string{"--backend", b, "rotate", "--kid", "k2", "--secret-hex", secretB + "\xff"}},
	} {
		wantTextUsage(t, run(t, "", c.args...), c.flag, c.value)
	}
	// Nothing was recorded or changed by the refused commands.
	r := run(t, "", "--backend", b, "signals", "--execution", "e-1").ok(t)
	if n := len(r["signals"].([]any)); n != 0 {
		t.Fatalf("refused signals recorded %d signals", n)
	}
	if l := run(t, "", "--backend", b, "suspended").ok(t); len(l["executions"].([]any)) != 1 {
		t.Fatalf("refused suspends changed list_suspended: %v", l)
	}
	kids := run(t, "", "--backend", b, "kids").ok(t)
	if strings.Contains(str(t, kids, "partitions", 0, "current_kid"), "k2") {
		t.Fatal("a refused rotate installed k2")
	}
}

func TestSecretFileMustBeText(t *testing.T) {
	b, _ := newStore(t)
	r := run(t, secretA[:60]+"\xff\xfe\n", "--backend", b, "seed", "--kid", "k1", "--secret-file", "-")
	r.usage(t, "--secret-file: must be valid UTF-8 (the value is not shown)")
	if strings.Contains(r.stderr, secretA[:16]) {
		t.Fatalf("stderr %q quotes the secret", r.stderr)
	}
}

// TestMessageFileStaysBytes: sign and verify take a message file as bytes,
// invalid UTF-8 included, and sign exactly those bytes.
func TestMessageFileStaysBytes(t *testing.T) {
	b, _ := seeded(t)
	msg := "\xff\xfe\x00raw"
	signed := run(t, msg, "--backend", b, "sign", "--scope", "s", "--message-file", "-").ok(t)
	tok := str(t, signed, "token")
	if v := run(t, msg, "--backend", b, "verify", "--scope", "s", "--token", tok, "--message-file", "-").ok(t); v["valid"] != true {
		t.Fatalf("verify: %v", v)
	}
	r := run(t, "\xff\xfd\x00raw", "--backend", b, "verify", "--scope", "s", "--token", tok, "--message-file", "-")
	r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidToken)
}

// TestPayloadAndDotRulesFromTheCLI: a payload that is JSON but not I-JSON
// and the identifiers "." and ".." are contract errors naming the field,
// and change nothing.
func TestPayloadAndDotRulesFromTheCLI(t *testing.T) {
	b, _ := seeded(t)
	sus := run(t, "", "--backend", b, "suspend", "--execution", "e-1", "--waitpoint", "a", "--waitpoint", "b", "--condition", "all").ok(t)
	wp, tok := str(t, sus, "waitpoints", 0, "waitpoint_id"), str(t, sus, "waitpoints", 0, "token")
	signal := func(name, payload string) result {
		return run(t, "", "--backend", b, "signal", "--execution", "e-1", "--waitpoint-id", wp, "--token", tok, "--name", name, "--payload", payload)
	}
	for _, c := range []struct{ name, payload, detail string }{
		{"n", `{"a":"\ud800"}`, `payload: must be I-JSON: no unpaired surrogate in a \u escape`},
		{"n", `{"amount":1,"amount":1000}`, "payload: must be I-JSON: no member name twice in one object"},
		{"n", strings.Repeat("[", 65) + strings.Repeat("]", 65), "payload: must be I-JSON: arrays and objects nested at most 64 deep"},
		{".", `1`, `name: must not be "." or ".."`},
		{"..", `1`, `name: must not be "." or ".."`},
	} {
		e := signal(c.name, c.payload).contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		if e.Detail != c.detail {
			t.Errorf("signal %s %.20s: detail %q, want %q", c.name, c.payload, e.Detail, c.detail)
		}
	}
	for _, c := range []struct {
		field string
		args  []string
	}{
		{"execution_id", []string{"suspend", "--execution", ".", "--waitpoint", "a"}},
		{"waitpoints.key", []string{"suspend", "--execution", "e-2", "--waitpoint", ".."}},
		{"execution_id", []string{"signals", "--execution", ".."}},
		{"worker_id", []string{"claim", "--worker", "."}},
	} {
		e := run(t, "", append([]string{"--backend", b}, c.args...)...).contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		if want := c.field + `: must not be "." or ".."`; e.Detail != want {
			t.Errorf("%v: detail %q, want %q", c.args, e.Detail, want)
		}
	}
	if r := run(t, "", "--backend", b, "signals", "--execution", "e-1").ok(t); len(r["signals"].([]any)) != 0 {
		t.Fatal("refused signals were recorded")
	}
	ok := signal("n", strings.Repeat("[", 64)+strings.Repeat("]", 64)).ok(t)
	if ok["outcome"] != "accepted" {
		t.Fatalf("a payload nested 64 deep: %v", ok)
	}
}

// Bytes that are not UTF-8 anywhere on the command line (a global flag, the
// command name, a stray argument) are refused before parsing, unquoted.
func TestEveryArgumentIsText(t *testing.T) {
	for _, args := range [][]string{
		{"--backend", "sqlite://./x\xff.db", "kids"},
		{"kids\xfe"},
		{"kids", "extra\xff"},
		{"--unknown\xff", "kids"},
	} {
		r := run(t, "", args...)
		if r.code != 2 || !strings.Contains(r.stderr, "must be valid UTF-8") || strings.ContainsAny(r.stderr, "\xff\xfe") {
			t.Errorf("ff %q: exit %d, stderr %q; want a usage error that quotes nothing", args, r.code, r.stderr)
		}
	}
}
