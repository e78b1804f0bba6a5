package cli_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/cli"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/syncbuf"
)

// password is the password the redaction tests put in backend URLs.
const password = "hunter2-Pa55w0rd"

// serveOnce runs ff serve with args until it logs "listening" (or exits),
// then stops it, and returns its exit code and stderr.
func serveOnce(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() { done <- cli.Run(ctx, args, strings.NewReader(""), &out, &errOut) }()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case code := <-done:
			record(out.String(), errOut.String())
			return code, out.String() + errOut.String()
		case <-deadline:
			t.Fatalf("serve neither listened nor exited; stderr %s", errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
		if strings.Contains(errOut.String(), `"msg":"listening"`) {
			cancel()
			code := <-done
			record(out.String(), errOut.String())
			return code, out.String() + errOut.String()
		}
	}
}

// ff serve logs the backend URL without any of its secrets: the user
// info's password, ?password=, ?sslpassword=, a token parameter, and the
// kek_file FF_KEK_FILE adds.
func TestServeLogRedactsTheBackendURL(t *testing.T) {
	b, _ := newStore(t)
	kekFile, _ := writeKEK(t, t.TempDir(), 0x33)
	t.Setenv(cli.KEKFileEnv, kekFile)
	u := strings.Replace(b, "://", "://ff:"+password+"@", 1) + "?password=" + password + "&SSLPassword=" + password + "&auth_token=" + password + "&sslmode=disable"
	code, logs := serveOnce(t, "--backend", u, "serve", "--listen", "127.0.0.1:0")
	if code != cli.ExitOK {
		t.Fatalf("serve exited %d: %s", code, logs)
	}
	if strings.Contains(logs, password) || strings.Contains(logs, kekFile) {
		t.Fatalf("serve's log shows a secret of the backend URL:\n%s", logs)
	}
	for _, want := range []string{"ff:xxxxx@", "password=xxxxx", "SSLPassword=xxxxx", "auth_token=xxxxx", "sslmode=disable", "kek_file=xxxxx"} {
		if !strings.Contains(logs, want) {
			t.Errorf("serve's log lacks %q:\n%s", want, logs)
		}
	}
}

// An error envelope never quotes a password of the backend URL, in its
// query or in a key/value DSN.
func TestErrorEnvelopesRedactTheBackendURL(t *testing.T) {
	for _, u := range []string{
		"nosuch://db/ff?password=" + password,
		"nosuch://ff:" + password + "@db/ff?sslpassword=" + password,
		"host=db user=ff password=" + password + " dbname=ff",
		"host=db user=ff password='" + password + " x' dbname=ff",
	} {
		for _, args := range [][]string{{"kids"}, {"migrate"}} {
			r := run(t, "", append([]string{"--backend", u}, args...)...)
			r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
			if strings.Contains(r.stdout, password) {
				t.Errorf("ff %v with %q: envelope shows the password: %s", args, u, r.stdout)
			}
		}
	}
}

// A secret pasted where a secret's file belongs (--secret-file,
// --token-file, --new-kek-file, FF_KEK_FILE, FF_WAITPOINT_HMAC_SECRET_FILE)
// is not printed back: the message names the flag or the variable and the
// OS's reason.
func TestSecretFileSettingsAreNeverEchoed(t *testing.T) {
	b, _ := seeded(t)
	t.Run("SecretFile", func(t *testing.T) {
		r := run(t, "", "--backend", b, "rotate", "--kid", "k2", "--secret-file", secretB)
		r.usage(t, "--secret-file: cannot read the file it names: no such file or directory")
		wantNoValue(t, r, secretB)
	})
	t.Run("SecretFileNamingADirectory", func(t *testing.T) {
		dir := t.TempDir()
		r := run(t, "", "--backend", b, "rotate", "--kid", "k2", "--secret-file", dir)
		r.usage(t, "--secret-file: names a directory")
		wantNoValue(t, r, dir)
	})
	t.Run("TokenFile", func(t *testing.T) {
		token := "k1:" + secretC
		r := run(t, "", "--backend", b, "signal", "--execution", "e", "--waitpoint-id", "w", "--name", "n", "--token-file", token)
		r.usage(t, "--token-file: cannot read the file it names: no such file or directory")
		wantNoValue(t, r, secretC)
	})
	t.Run("NewKEKFile", func(t *testing.T) {
		r := run(t, "", "--backend", "sqlite://"+filepath.Join(t.TempDir(), "ff.db"), "rewrap", "--new-kek-file", secretC)
		e := r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		if !strings.Contains(e.Detail, "new_kek_file") || !strings.Contains(e.Detail, "no such file or directory") {
			t.Fatalf("detail %q: want new_kek_file and the OS's reason", e.Detail)
		}
		wantNoValue(t, r, secretC)
	})
	t.Run("KEKFileEnv", func(t *testing.T) {
		t.Setenv(cli.KEKFileEnv, secretC)
		for _, args := range [][]string{{"kids"}, {"migrate"}} {
			r := run(t, "", append([]string{"--backend", "sqlite://" + filepath.Join(t.TempDir(), "ff.db")}, args...)...)
			e := r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
			if !strings.Contains(e.Detail, cli.KEKFileEnv) || !strings.Contains(e.Detail, "no such file or directory") {
				t.Fatalf("detail %q: want FF_KEK_FILE and the OS's reason", e.Detail)
			}
			wantNoValue(t, r, secretC)
		}
	})
	t.Run("KEKFileEnvWithBadContent", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "kek-"+password)
		if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(cli.KEKFileEnv, bad)
		r := run(t, "", "--backend", "sqlite://"+filepath.Join(t.TempDir(), "ff.db"), "kids")
		r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		wantNoValue(t, r, password)
	})
	t.Run("SeedSecretFileEnv", func(t *testing.T) {
		t.Setenv(cli.SeedKidEnv, "k1")
		t.Setenv(cli.SeedSecretEnv, secretA)
		r := run(t, "", "--backend", "memory://", "serve", "--listen", "127.0.0.1:0")
		r.usage(t, "$"+cli.SeedSecretEnv+": cannot read the file it names: no such file or directory")
		wantNoValue(t, r, secretA)
	})
	t.Run("GenerateTo", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no-such-dir-"+password, "k2.hex")
		r := run(t, "", "--backend", b, "rotate", "--kid", "k2", "--generate", "--generate-to", path)
		r.usage(t, "--generate-to: cannot create the file: no such file or directory")
		wantNoValue(t, r, password)
	})
}

func wantNoValue(t *testing.T, r result, value string) {
	t.Helper()
	if strings.Contains(r.stdout+r.stderr, value) {
		t.Fatalf("output quotes the value:\nstdout %s\nstderr %s", r.stdout, r.stderr)
	}
}

// tokenShape finds what no usage error may quote: 16 hex digits in a row,
// or a <kid>:<hex> shape with 8 or more hex digits.
var tokenShape = regexp.MustCompile(`[0-9A-Fa-f]{16}|:[0-9A-Fa-f]{8}`)

// A usage error quotes no token- or secret-like value, whole or cut short:
// not as a stray argument, not in a flag's parse error, not as a command.
func TestUsageErrorsQuoteNoTokens(t *testing.T) {
	token := "k1:" + secretC
	for _, args := range [][]string{
		{"signal", token},
		{"signal", "--execution", "e", token},
		{"seed", "--kid", "k1", "k1:" + secretC[:16]},
		{"verify", "--message", "m", "--token", token, "ffeeddcc-bbaa-9988-7766-554433221100", "x"},
		{token},
		{"help", token},
		{"suspended", "--limit", secretC},
		{"suspended", "--limit", token},
		{"claim", "--worker", "w", "--lease-ms", secretC[:20]},
		{"bench", "--op", token},
		{"bench", "--op", secretC[:24]},
		{"serve", "--listen", token},
		{"--" + secretC},
		{"seed", "--" + secretC},
		{"seed", "--kid", "k1", "aB3dE6gH9jK2mN5pQ8rS1tU4vW7xY0zA"}, // a base64 admin token
	} {
		r := run(t, "", append([]string{"--backend", "memory://"}, args...)...)
		if r.code != cli.ExitUsage {
			t.Errorf("ff %v: exit %d, want %d (stderr %q)", args, r.code, cli.ExitUsage, r.stderr)
		}
		if m := tokenShape.FindString(r.stderr); m != "" || strings.Contains(r.stderr, "aB3dE6gH9jK2") {
			t.Errorf("ff %v: usage error quotes %q:\n%s", args, m, r.stderr)
		}
	}
}

// ff signal and ff verify read the token from a file or stdin with
// --token-file, trimmed; --token still works; exactly one of them.
func TestTokenFile(t *testing.T) {
	b, _ := seeded(t)
	sus := run(t, "", "--backend", b, "suspend", "--execution", "e1", "--waitpoint", "a", "--waitpoint", "b", "--condition", "all").ok(t)
	wpA, tokA := str(t, sus, "waitpoints", 0, "waitpoint_id"), str(t, sus, "waitpoints", 0, "token")
	wpB, tokB := str(t, sus, "waitpoints", 1, "waitpoint_id"), str(t, sus, "waitpoints", 1, "token")
	signal := func(stdin, wp string, tokenArgs ...string) result {
		return run(t, stdin, append([]string{"--backend", b, "signal", "--execution", "e1", "--waitpoint-id", wp, "--name", "n"}, tokenArgs...)...)
	}
	out := signal("", wpA, "--token-file", writeFile(t, "\n  "+tokA+" \r\n")).ok(t)
	if out["outcome"] != "accepted" || out["resumed"] != false {
		t.Fatalf("signal with --token-file: %v", out)
	}
	signal("", wpB, "--token", tokB, "--token-file", "-").usage(t, "give exactly one of --token-file, --token")
	r := signal("", wpB)
	r.usage(t, "missing --token")
	r.usage(t, "--token-file")
	out = signal(tokB+"\n", wpB, "--token-file", "-").ok(t)
	if out["outcome"] != "accepted" || out["resumed"] != true {
		t.Fatalf("signal with --token-file -: %v", out)
	}
	run(t, "", "signal", "--execution", "e1", "--name", "n", "--token-file", "-").usage(t, "missing --waitpoint-id")
	run(t, "", "--backend", b, "signal", "--execution", "e1", "--waitpoint-id", wpB, "--name", "n", "--token-file", writeFile(t, strings.Repeat("x", 5000))).
		usage(t, "more than 4096 bytes")

	signed := run(t, "", "--backend", b, "sign", "--scope", "s", "--message", "m").ok(t)
	v := run(t, "", "--backend", b, "verify", "--scope", "s", "--message", "m", "--token-file", writeFile(t, str(t, signed, "token")+"\n")).ok(t)
	if v["valid"] != true {
		t.Fatalf("verify with --token-file: %v", v)
	}
	run(t, str(t, signed, "token"), "--backend", b, "verify", "--scope", "s", "--message-file", "-", "--token-file", "-").
		usage(t, "cannot both read stdin")
	for _, c := range []string{"signal", "verify"} {
		help := run(t, "", c, "-h")
		if !strings.Contains(help.stderr, "-token-file PATH") {
			t.Errorf("ff %s -h does not document --token-file:\n%s", c, help.stderr)
		}
	}
}

// --generate-to writes its file only when the generated secret was
// installed: not when the kid was already seeded (or another kid is), nor
// when a rotation to the current kid is refused.
func TestGenerateToOnlyWhenInstalled(t *testing.T) {
	b, _ := seeded(t)
	dir := t.TempDir()
	for i, c := range []struct {
		args    []string
		code    int
		outcome string
	}{
		{[]string{"seed", "--kid", "k1"}, cli.ExitOK, `"outcome":"already_seeded"`},
		{[]string{"seed", "--kid", "other"}, cli.ExitOK, `"outcome":"already_initialized"`},
		{[]string{"rotate", "--kid", "k1"}, cli.ExitContract, `"code":"rotation_conflict"`},
	} {
		path := filepath.Join(dir, "gen"+itoa(int64(i))+".hex")
		r := run(t, "", append(append([]string{"--backend", b}, c.args...), "--generate", "--generate-to", path)...)
		if r.code != c.code || !strings.Contains(r.stdout, c.outcome) {
			t.Fatalf("ff %v: exit %d, stdout %s, stderr %s", c.args, r.code, r.stdout, r.stderr)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("ff %v (%s): --generate-to file exists (%v); the generated secret was not installed", c.args, c.outcome, err)
		}
		if !strings.Contains(r.stderr, "--generate-to: no file written") {
			t.Fatalf("ff %v: stderr %q does not say the file was not written", c.args, r.stderr)
		}
	}
	// Installed: the file is kept and holds the secret the store verifies.
	path := filepath.Join(dir, "k2.hex")
	r := run(t, "", "--backend", b, "rotate", "--kid", "k2", "--generate", "--generate-to", path)
	if r.code != cli.ExitOK || r.stderr != "" || !strings.Contains(r.stdout, `"outcome":"rotated"`) {
		t.Fatalf("rotate: exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rememberSecret(strings.TrimSpace(string(text)))
	wantStdout(t, run(t, "", "--backend", b, "seed", "--kid", "k2", "--secret-file", path),
		`{"outcome":"already_seeded","kid":"k2","current_kid":"k2","same_secret":true}`)
}

// ff serve refuses an FF_ADMIN_TOKEN shorter than 32 bytes, without
// quoting it; 32 bytes or more (or none) start.
func TestServeRefusesAShortAdminToken(t *testing.T) {
	short := "Sh0rt-admin-Tok"
	t.Setenv(cli.AdminTokenEnv, short)
	code, out := serveOnce(t, "--backend", "memory://", "serve", "--listen", "127.0.0.1:0")
	if code != cli.ExitUsage || !strings.Contains(out, cli.AdminTokenEnv) || !strings.Contains(out, "at least 32 bytes") || strings.Contains(out, short) {
		t.Fatalf("exit %d, output %q: want a usage error naming FF_ADMIN_TOKEN and 32 bytes, without the token", code, out)
	}
	t.Setenv(cli.AdminTokenEnv, strings.Repeat("a1", 16))
	if code, out := serveOnce(t, "--backend", "memory://", "serve", "--listen", "127.0.0.1:0"); code != cli.ExitOK || !strings.Contains(out, `"admin_routes":true`) {
		t.Fatalf("32-byte token: exit %d, output %s", code, out)
	}
}

// --metrics-listen serves /metrics on its own listener, and only there.
func TestServeMetricsListen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, []string{"--backend", "memory://", "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"},
			strings.NewReader(""), &out, &errOut)
	}()
	addr := waitListening(t, &errOut)
	m := regexp.MustCompile(`"metrics_addr":"([^"]+)"`).FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("no metrics_addr in the log: %s", errOut.String())
	}
	get := func(url string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	if code, _, _ := get("http://" + addr + "/healthz"); code != http.StatusOK {
		t.Fatalf("main /healthz: %d", code)
	}
	if code, _, body := get("http://" + addr + "/metrics"); code != http.StatusNotFound || !strings.Contains(body, "route_not_found") {
		t.Fatalf("main /metrics: %d %s; want 404 route_not_found", code, body)
	}
	code, ctype, body := get("http://" + m[1] + "/metrics")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/plain") || !strings.Contains(body, "ff_http_requests_total") {
		t.Fatalf("metrics /metrics: %d %s\n%s", code, ctype, body)
	}
	if code, _, body := get("http://" + m[1] + "/healthz"); code != http.StatusNotFound || !strings.Contains(body, "route_not_found") {
		t.Fatalf("metrics listener /healthz: %d %s; want 404", code, body)
	}
	cancel()
	select {
	case code := <-done:
		if code != cli.ExitOK {
			t.Fatalf("serve exited %d: %s", code, errOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	record(out.String(), errOut.String())
	run(t, "", "--backend", "memory://", "serve", "--metrics-listen", "").usage(t, "--metrics-listen")
}
