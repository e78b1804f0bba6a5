package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/cli"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

func TestHelpAndUsage(t *testing.T) {
	t.Run("NoArgumentsPrintsUsageAndExits2", func(t *testing.T) {
		r := run(t, "")
		r.usage(t, "usage: ff [--backend URL] <command>")
	})
	t.Run("HelpExits0WithEveryCommand", func(t *testing.T) {
		r := run(t, "", "help")
		if r.code != 0 || r.stdout != "" {
			t.Fatalf("exit %d stdout %q", r.code, r.stdout)
		}
		for _, c := range []string{"seed", "rotate", "revoke", "kids", "sign", "verify", "migrate", "suspend", "signal", "signals", "suspended", "claim", "complete", "serve", "demo", "bench", "rewrap",
			"waitpoint", "extend", "release", "cancel"} {
			if !strings.Contains(r.stderr, "\n  "+c+" ") {
				t.Errorf("help does not list %s:\n%s", c, r.stderr)
			}
		}
	})
	t.Run("HelpCommandPrintsItsFlags", func(t *testing.T) {
		r := run(t, "", "help", "rotate")
		if r.code != 0 || !strings.Contains(r.stderr, "-grace-ms") {
			t.Fatalf("exit %d stderr %q", r.code, r.stderr)
		}
	})
	t.Run("HelpUnknownCommandExits2", func(t *testing.T) {
		run(t, "", "help", "nope").usage(t, `unknown command "nope"`)
	})
	t.Run("DashHExits0", func(t *testing.T) {
		for _, args := range [][]string{{"-h"}, {"--help"}, {"seed", "-h"}, {"suspend", "--help"}} {
			r := run(t, "", args...)
			if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "usage: ff") {
				t.Fatalf("%v: exit %d stdout %q stderr %q", args, r.code, r.stdout, r.stderr)
			}
		}
	})
	t.Run("SecretHexHelpWarnsAboutProcessList", func(t *testing.T) {
		r := run(t, "", "seed", "-h")
		if !strings.Contains(r.stderr, "process list") {
			t.Fatalf("seed -h does not warn: %s", r.stderr)
		}
	})
	t.Run("UnknownCommandListsCommands", func(t *testing.T) {
		r := run(t, "", "frobnicate")
		r.usage(t, `unknown command "frobnicate"`)
		if !strings.Contains(r.stderr, "  verify ") {
			t.Fatalf("no command list: %s", r.stderr)
		}
	})
	t.Run("UnknownFlagExits2", func(t *testing.T) {
		run(t, "", "kids", "--nope").usage(t, "flag provided but not defined: -nope")
		run(t, "", "--nope", "kids").usage(t, "flag provided but not defined: -nope")
	})
	t.Run("PositionalArgumentExits2", func(t *testing.T) {
		run(t, "", "--backend", "memory://", "kids", "extra").usage(t, `unexpected argument "extra"`)
	})
	t.Run("GlobalFlagAfterCommandIsAnError", func(t *testing.T) {
		run(t, "", "kids", "--backend", "memory://").usage(t, "-backend")
	})
}

func TestBackendSelection(t *testing.T) {
	t.Run("FlagWins", func(t *testing.T) {
		t.Setenv(cli.BackendEnv, "nosuch://x")
		r := run(t, "", "--backend", "memory://", "kids").ok(t)
		if r["partitions"] == nil {
			t.Fatal("no partitions")
		}
	})
	t.Run("EnvironmentWhenNoFlag", func(t *testing.T) {
		t.Setenv(cli.BackendEnv, "nosuch://x")
		e := run(t, "", "kids").contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		if !strings.Contains(e.Detail, `"nosuch"`) || !strings.Contains(e.Detail, "memory") {
			t.Fatalf("detail %q should name the scheme and the registered ones", e.Detail)
		}
	})
	t.Run("DefaultIsSQLiteInWorkingDirectory", func(t *testing.T) {
		t.Setenv(cli.BackendEnv, "")
		t.Chdir(t.TempDir())
		run(t, "", "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
		if _, err := os.Stat("ff.db"); err != nil {
			t.Fatalf("default backend did not create ./ff.db: %v", err)
		}
		signed := run(t, "", "sign", "--message", "m").ok(t)
		if str(t, signed, "kid") != "k1" {
			t.Fatalf("sign after seed in the default backend: %v", signed)
		}
	})
	t.Run("PasswordNeverShown", func(t *testing.T) {
		r := run(t, "", "--backend", "nosuch://user:hunter2@host/db", "kids")
		r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		if strings.Contains(r.stdout, "hunter2") {
			t.Fatalf("password shown: %s", r.stdout)
		}
	})
}

func TestSeed(t *testing.T) {
	t.Run("SecretHexSeedsThenReportsAlreadySeeded", func(t *testing.T) {
		b, _ := newStore(t)
		r := run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA)
		wantStdout(t, r, `{"outcome":"seeded","kid":"k1","current_kid":"k1","same_secret":null}`)
		r = run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", strings.ToUpper(secretA))
		wantStdout(t, r, `{"outcome":"already_seeded","kid":"k1","current_kid":"k1","same_secret":true}`)
		r = run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretB)
		wantStdout(t, r, `{"outcome":"already_seeded","kid":"k1","current_kid":"k1","same_secret":false}`)
		r = run(t, "", "--backend", b, "seed", "--kid", "other", "--secret-hex", secretB)
		wantStdout(t, r, `{"outcome":"already_initialized","kid":"other","current_kid":"k1","same_secret":null}`)
	})
	t.Run("SecretFileTrimsTrailingWhitespace", func(t *testing.T) {
		b, _ := newStore(t)
		path := writeFile(t, secretA+" \r\n\n")
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-file", path).ok(t)
		r := run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA)
		wantStdout(t, r, `{"outcome":"already_seeded","kid":"k1","current_kid":"k1","same_secret":true}`)
	})
	t.Run("SecretFileDashReadsStdin", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, secretA+"\n", "--backend", b, "seed", "--kid", "k1", "--secret-file", "-").ok(t)
		r := run(t, secretA, "--backend", b, "seed", "--kid", "k1", "--secret-file", "-")
		wantStdout(t, r, `{"outcome":"already_seeded","kid":"k1","current_kid":"k1","same_secret":true}`)
	})
	t.Run("GenerateNeverPrintsTheSecret", func(t *testing.T) {
		b, _ := newStore(t)
		r := run(t, "", "--backend", b, "seed", "--kid", "k1", "--generate")
		wantStdout(t, r, `{"outcome":"seeded","kid":"k1","current_kid":"k1","same_secret":null}`)
		run(t, "", "--backend", b, "sign", "--message", "m").ok(t)
	})
	t.Run("GenerateToWritesA0600FileThatSeedsTheSameSecret", func(t *testing.T) {
		b, _ := newStore(t)
		path := filepath.Join(t.TempDir(), "k1.hex")
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--generate", "--generate-to", path).ok(t)
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("generated file: %v, mode %v; want 0600", err, fi.Mode())
		}
		text, _ := os.ReadFile(path)
		hex := strings.TrimSpace(string(text))
		rememberSecret(hex)
		if _, err := contracts.ParseSecretHex("secret", hex); err != nil || len(hex) != 64 {
			t.Fatalf("generated file does not hold 32 bytes of hex")
		}
		r := run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-file", path)
		wantStdout(t, r, `{"outcome":"already_seeded","kid":"k1","current_kid":"k1","same_secret":true}`)
	})
	t.Run("GenerateToRefusesAnExistingFile", func(t *testing.T) {
		b, _ := newStore(t)
		path := writeFile(t, "keep me")
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--generate", "--generate-to", path).usage(t, "must not exist")
		if text, _ := os.ReadFile(path); string(text) != "keep me" {
			t.Fatal("existing file was overwritten")
		}
		run(t, "", "--backend", b, "kids").ok(t) // nothing was seeded
		r := run(t, "", "--backend", b, "sign", "--message", "m")
		r.contractErr(t, contracts.KindState, contracts.CodeHMACSecretNotInitialized)
	})
	t.Run("GenerateToNeedsGenerate", func(t *testing.T) {
		run(t, "", "--backend", "memory://", "seed", "--kid", "k1", "--secret-hex", secretA, "--generate-to", "x").
			usage(t, "--generate-to needs --generate")
	})
	t.Run("ExactlyOneSecretSource", func(t *testing.T) {
		run(t, "", "seed", "--kid", "k1").usage(t, "give exactly one of --secret-file, --secret-hex, --generate")
		run(t, "", "seed", "--kid", "k1", "--secret-hex", secretA, "--generate").
			usage(t, "give exactly one of")
		run(t, "", "seed", "--kid", "k1", "--secret-hex", secretA, "--secret-file", "-").
			usage(t, "give exactly one of")
	})
	t.Run("MissingKid", func(t *testing.T) {
		run(t, "", "seed", "--secret-hex", secretA).usage(t, "missing --kid")
	})
	t.Run("MissingSecretFile", func(t *testing.T) {
		r := run(t, "", "--backend", "memory://", "seed", "--kid", "k1", "--secret-file", "/nonexistent/s")
		r.usage(t, "--secret-file: cannot read the file it names: no such file or directory")
		if strings.Contains(r.stderr, "/nonexistent/s") {
			t.Fatalf("stderr %q quotes the value of --secret-file", r.stderr)
		}
	})
	t.Run("MalformedSecretIsAValidationEnvelopeWithoutTheSecret", func(t *testing.T) {
		for _, bad := range []string{secretA[:62], secretA + "0", secretA[:60] + "zzzz", secretA[:32]} {
			r := run(t, "", "--backend", "memory://", "seed", "--kid", "k1", "--secret-hex", bad)
			e := r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
			if !strings.HasPrefix(e.Detail, "secret_hex: ") {
				t.Fatalf("detail %q should name secret_hex", e.Detail)
			}
		}
		r := run(t, secretA+"00zz", "--backend", "memory://", "seed", "--kid", "k1", "--secret-file", "-")
		r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
	})
	t.Run("SecretAsPositionalArgumentIsNotEchoed", func(t *testing.T) {
		run(t, "", "seed", "--kid", "k1", secretA).usage(t, "<hex redacted>")
	})
	t.Run("BadKidIsAValidationEnvelope", func(t *testing.T) {
		r := run(t, "", "--backend", "memory://", "seed", "--kid", "a:b", "--secret-hex", secretA)
		e := r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		if !strings.HasPrefix(e.Detail, "kid: ") {
			t.Fatalf("detail %q", e.Detail)
		}
	})
}

func TestRotate(t *testing.T) {
	t.Run("RotatesWithDefaultGraceOf24h", func(t *testing.T) {
		b, clock := newStore(t)
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
		r := run(t, "", "--backend", b, "rotate", "--kid", "k2", "--secret-hex", secretB)
		wantStdout(t, r, `{"entries":[{"partition":0,"outcome":{"outcome":"rotated","previous_kid":"k1","new_kid":"k2","gc_count":0},"error":null}]}`)
		r = run(t, "", "--backend", b, "kids")
		wantStdout(t, r, `{"partitions":[{"partition":0,"current_kid":"k2","verifying":[{"kid":"k1","expires_at_ms":`+
			itoa(clock.NowMs()+24*time.Hour.Milliseconds())+`}]}]}`)
	})
	t.Run("ReplayIsNoop", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, "", "--backend", b, "rotate", "--kid", "k2", "--secret-hex", secretB).ok(t)
		r := run(t, "", "--backend", b, "rotate", "--kid", "k2", "--secret-hex", secretB)
		wantStdout(t, r, `{"entries":[{"partition":0,"outcome":{"outcome":"noop","kid":"k2"},"error":null}]}`)
	})
	t.Run("BootstrapFromEmptyHasNullPreviousKid", func(t *testing.T) {
		b, _ := newStore(t)
		r := run(t, secretB, "--backend", b, "rotate", "--kid", "k2", "--secret-file", "-")
		wantStdout(t, r, `{"entries":[{"partition":0,"outcome":{"outcome":"rotated","previous_kid":null,"new_kid":"k2","gc_count":0},"error":null}]}`)
	})
	t.Run("ConflictExits1", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, "", "--backend", b, "rotate", "--kid", "k2", "--secret-hex", secretB).ok(t)
		r := run(t, "", "--backend", b, "rotate", "--kid", "k2", "--secret-hex", secretC)
		if r.code != cli.ExitContract || !strings.Contains(r.stdout, contracts.CodeRotationConflict) {
			t.Fatalf("exit %d stdout %q stderr %q; want exit 1 naming rotation_conflict", r.code, r.stdout, r.stderr)
		}
		envelope(t, r.stdout)
	})
	t.Run("GraceAndGraceMs", func(t *testing.T) {
		b, clock := newStore(t)
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
		run(t, "", "--backend", b, "rotate", "--kid", "k2", "--secret-hex", secretB, "--grace", "90m").ok(t)
		run(t, "", "--backend", b, "rotate", "--kid", "k3", "--secret-hex", secretC, "--grace-ms", "1500").ok(t)
		r := run(t, "", "--backend", b, "kids")
		now := clock.NowMs()
		wantStdout(t, r, `{"partitions":[{"partition":0,"current_kid":"k3","verifying":[{"kid":"k2","expires_at_ms":`+
			itoa(now+1500)+`},{"kid":"k1","expires_at_ms":`+itoa(now+90*60*1000)+`}]}]}`)
	})
	t.Run("GraceFlagsExclusive", func(t *testing.T) {
		run(t, "", "rotate", "--kid", "k2", "--secret-hex", secretB, "--grace", "1h", "--grace-ms", "5").
			usage(t, "give at most one of --grace, --grace-ms")
	})
	t.Run("BadGraceIsUsageError", func(t *testing.T) {
		run(t, "", "rotate", "--kid", "k2", "--secret-hex", secretB, "--grace", "soon").usage(t, "-grace")
		run(t, "", "rotate", "--kid", "k2", "--secret-hex", secretB, "--grace-ms", "x").usage(t, "-grace-ms")
	})
	t.Run("NegativeGraceIsAValidationEnvelope", func(t *testing.T) {
		r := run(t, "", "--backend", "memory://", "rotate", "--kid", "k2", "--secret-hex", secretB, "--grace-ms", "-1")
		e := r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		if !strings.HasPrefix(e.Detail, "grace_ms: ") {
			t.Fatalf("detail %q", e.Detail)
		}
	})
	t.Run("MalformedSecretNamesNewSecretHex", func(t *testing.T) {
		r := run(t, "", "--backend", "memory://", "rotate", "--kid", "k2", "--secret-hex", secretB[:10])
		e := r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		if !strings.HasPrefix(e.Detail, "new_secret_hex: ") {
			t.Fatalf("detail %q", e.Detail)
		}
	})
	t.Run("MissingKidAndSecret", func(t *testing.T) {
		run(t, "", "rotate", "--secret-hex", secretB).usage(t, "missing --kid")
		run(t, "", "rotate", "--kid", "k2").usage(t, "give exactly one of")
	})
}

func TestSignVerify(t *testing.T) {
	t.Run("SignThenVerify", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
		signed := run(t, "", "--backend", b, "sign", "--scope", "tenant-1", "--message", "hello").ok(t)
		token := str(t, signed, "token")
		want := driver.SignToken("k1", mustSecret(t, secretA), driver.SignatureInput("k1", "tenant-1", []byte("hello")))
		if token != want || str(t, signed, "kid") != "k1" {
			t.Fatalf("token %q; want %q", token, want)
		}
		r := run(t, "", "--backend", b, "verify", "--scope", "tenant-1", "--message", "hello", "--token", token)
		wantStdout(t, r, `{"valid":true,"kid":"k1"}`)
		r = run(t, "", "--backend", b, "verify", "--scope", "tenant-1", "--message", "hellO", "--token", token)
		e := r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidToken)
		if e.Reason != contracts.ReasonSignatureMismatch || strings.Contains(r.stdout, token[3:]) {
			t.Fatalf("reason %q, stdout %q", e.Reason, r.stdout)
		}
	})
	t.Run("MessageFileAndStdinAreRawBytes", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
		msg := "line one\nline two\n"
		signed := run(t, "", "--backend", b, "sign", "--message-file", writeFile(t, msg)).ok(t)
		if str(t, signed, "token") != driver.SignToken("k1", mustSecret(t, secretA), driver.SignatureInput("k1", "", []byte(msg))) {
			t.Fatal("--message-file did not sign the file's exact bytes")
		}
		r := run(t, msg, "--backend", b, "verify", "--message-file", "-", "--token", str(t, signed, "token"))
		wantStdout(t, r, `{"valid":true,"kid":"k1"}`)
	})
	t.Run("EmptyMessageAndScopeAreValid", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
		signed := run(t, "", "--backend", b, "sign", "--message", "").ok(t)
		run(t, "", "--backend", b, "verify", "--message", "", "--token", str(t, signed, "token")).ok(t)
	})
	t.Run("OldTokenVerifiesInGraceAndExpiresAfter", func(t *testing.T) {
		b, clock := newStore(t)
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
		old := str(t, run(t, "", "--backend", b, "sign", "--message", "m").ok(t), "token")
		run(t, "", "--backend", b, "rotate", "--kid", "k2", "--secret-hex", secretB, "--grace-ms", "1500").ok(t)
		clock.Advance(1500 * time.Millisecond) // expires_at_ms == now still verifies
		wantStdout(t, run(t, "", "--backend", b, "verify", "--message", "m", "--token", old), `{"valid":true,"kid":"k1"}`)
		clock.Advance(time.Millisecond)
		r := run(t, "", "--backend", b, "verify", "--message", "m", "--token", old)
		r.contractErr(t, contracts.KindValidation, contracts.CodeTokenExpired)
	})
	t.Run("MalformedToken", func(t *testing.T) {
		b, _ := newStore(t)
		r := run(t, "", "--backend", b, "verify", "--message", "m", "--token", "nope")
		e := r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidToken)
		if e.Reason != contracts.ReasonMalformed {
			t.Fatalf("reason %q", e.Reason)
		}
	})
	t.Run("SignWithoutKeystore", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, "", "--backend", b, "sign", "--message", "m").
			contractErr(t, contracts.KindState, contracts.CodeHMACSecretNotInitialized)
	})
	t.Run("OversizedMessageFile", func(t *testing.T) {
		b, _ := newStore(t)
		big := strings.Repeat("x", contracts.MaxMessageLen+1)
		r := run(t, "", "--backend", b, "sign", "--message-file", writeFile(t, big))
		e := r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		if !strings.HasPrefix(e.Detail, "message: ") {
			t.Fatalf("detail %q", e.Detail)
		}
	})
	t.Run("FlagErrors", func(t *testing.T) {
		run(t, "", "sign").usage(t, "give exactly one of --message, --message-file")
		run(t, "", "sign", "--message", "a", "--message-file", "-").usage(t, "give exactly one of")
		run(t, "", "verify", "--message", "a").usage(t, "missing --token")
		run(t, "", "verify", "--token", "k1:00").usage(t, "give exactly one of --message, --message-file")
		run(t, "", "sign", "--message-file", "/nonexistent/m").usage(t, "open /nonexistent/m")
		run(t, "", "sign", "--message").usage(t, "flag needs an argument: -message")
	})
}

func TestMigrate(t *testing.T) {
	t.Run("MemoryHasNothingToApply", func(t *testing.T) {
		wantStdout(t, run(t, "", "--backend", "memory://", "migrate"), `{"applied":[]}`)
	})
	t.Run("SQLiteAppliesOnceThenNothing", func(t *testing.T) {
		b := "sqlite://" + filepath.Join(t.TempDir(), "m.db")
		first := run(t, "", "--backend", b, "migrate").ok(t)
		if len(first["applied"].([]any)) == 0 {
			t.Fatalf("a fresh SQLite file applied nothing: %v", first)
		}
		wantStdout(t, run(t, "", "--backend", b, "migrate"), `{"applied":[]}`)
	})
	t.Run("UnknownScheme", func(t *testing.T) {
		run(t, "", "--backend", "nosuch://", "migrate").contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
	})
}

func TestCancelledContext(t *testing.T) {
	b, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	runCtx(t, ctx, "", "--backend", b, "kids").contractErr(t, contracts.KindTransport, contracts.CodeCanceled)
}

func wantStdout(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != 0 || r.stdout != want+"\n" || r.stderr != "" {
		t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant exit 0 and stdout %q", r.code, r.stdout, r.stderr, want+"\n")
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustSecret(t *testing.T, hex string) contracts.Secret {
	t.Helper()
	s, err := contracts.ParseSecretHex("secret", hex)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
