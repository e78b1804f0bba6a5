// Package cli is the ff command-line interface as a library, so that a custom
// binary can reuse every command. cmd/ff is nothing but
//
//	func main() { cli.Main() }
//
// Every command prints exactly one contract envelope (docs/spec.md §7) and a
// newline on stdout and exits 0; a contract error prints the error envelope
// {"error":{...}} on stdout and exits 1; a usage error (unknown command or
// flag, a missing or contradictory flag, an unreadable input file) prints a
// message on stderr and exits 2. `ff help` and `ff <command> -h` print usage
// on stderr and exit 0.
//
// The backend is chosen from a URL: the --backend global flag, else the
// FF_BACKEND_URL environment variable, else DefaultBackendURL
// (sqlite://./ff.db), so that `ff seed` and a later `ff sign` in another
// process share state on a fresh machine.
//
// # Keystore audit and scheduled rotation
//
// ff seed, ff rotate and ff revoke also log exactly one JSON line on stderr
// (ff demo one for its seed and one for its rotation),
// the keystore audit line (httpapi.KeystoreAudit: op, kid, outcome, the
// partition counts, the command and the operating-system user; never a
// secret), whatever their outcome once the backend was reached; ff serve
// logs the same line for its seed at start-up, for every admin route that
// changes the keystore and for every scheduled rotation, and counts them in
// ff_keystore_changes_total on /metrics. ff serve --rotate-every D and ff
// rotate --auto --every D rotate to a generated secret under a kid named
// after the period (auto-<period start, UTC>), so that several servers or
// cron jobs on one store install one kid per period (docs/spec.md §8.7).
//
// # Drivers
//
// The package registers no driver: cmd/ff blank-imports the four in-repo
// drivers before calling Main. A custom binary blank-imports the drivers it
// wants, its own included, and every command then accepts their URL scheme:
//
//	package main
//
//	import (
//		"github.com/flowfabric/flowfabric-go/cli"
//		_ "example.com/ffdriver" // calls engine.Register("mydb", ...) in init
//	)
//
//	func main() { cli.Main() }
//
// # Secrets at rest
//
// With FF_KEK_FILE set (or kek_file=PATH in the backend URL, which wins) the
// backend stores every signing secret sealed under that key-encryption key
// (package kek); kek_previous_file=PATH in the URL adds an older KEK that
// only opens. `ff rewrap --new-kek-file PATH` re-seals every stored secret
// under a new KEK without changing any kid.
//
// # Secrets
//
// A signing secret is never printed, logged or quoted in any error, usage
// errors included. --secret-file PATH (or - for stdin) is the recommended
// source; --secret-hex shows in the process list; --generate draws 32 random
// bytes that nobody sees (add --generate-to PATH to keep a copy: the file is
// kept only when the generated secret was installed). ff signal and ff verify
// take the token from --token-file PATH (or - for stdin) as well as --token.
//
// Nothing that may be a secret is echoed: a setting that names a secret's
// file (--secret-file, --token-file, --new-kek-file, --generate-to,
// FF_KEK_FILE, FF_WAITPOINT_HMAC_SECRET_FILE) is reported by its name and the
// OS's reason, never by its value; usage errors, package flag's included,
// quote no token- or secret-like value (a run of 16 hex digits, a
// <kid>:<hex> shape); and backend URLs are shown through engine.RedactURL,
// in logs and in error envelopes alike (engine.RedactError).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"unicode/utf8"
)

// DefaultBackendURL is the backend used when neither --backend nor
// FF_BACKEND_URL names one: a SQLite file in the working directory.
const DefaultBackendURL = "sqlite://./ff.db"

// BackendEnv is the environment variable that names the backend URL when
// --backend is not given.
const BackendEnv = "FF_BACKEND_URL"

// Exit codes of Run.
const (
	ExitOK       = 0 // the envelope printed is a result
	ExitContract = 1 // the envelope printed is {"error":...}, or a rotation entry failed
	ExitUsage    = 2 // a usage error, reported on stderr
)

// Main runs the ff command line with os.Args and exits with its code. The
// context is cancelled on SIGINT or SIGTERM, so a command in flight stops at
// its next backend call.
func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Run executes one ff command line (without the program name) and returns
// its exit code: ExitOK, ExitContract or ExitUsage. It reads FF_BACKEND_URL
// from the environment and never calls os.Exit, so tests run it in-process.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	inv := &invocation{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	// Every argument is text: refuse bytes that are not UTF-8 before any
	// parsing, so that no flag package message or lookup ever sees them.
	for i, a := range args {
		if !utf8.ValidString(a) {
			fmt.Fprintf(stderr, "ff: %s: %s\n", argumentName(args, i), ruleText)
			return ExitUsage
		}
	}
	global := flag.NewFlagSet("ff", flag.ContinueOnError)
	global.SetOutput(redactingWriter{stderr})
	global.StringVar(&inv.backendURL, "backend", "", "backend URL (default $"+BackendEnv+", else "+DefaultBackendURL+")")
	global.Usage = func() { printUsage(stderr, global) }
	if err := global.Parse(args); err != nil {
		return flagExit(err)
	}
	if global.NArg() == 0 {
		printUsage(stderr, global)
		return ExitUsage
	}
	if inv.backendURL == "" {
		inv.backendURL = os.Getenv(BackendEnv)
	}
	inv.backendNamed = inv.backendURL != ""
	if inv.backendURL == "" {
		inv.backendURL = DefaultBackendURL
	}
	inv.backendURL, inv.kekErr = withKEKFromEnv(inv.backendURL)
	name, rest := global.Arg(0), global.Args()[1:]
	if name == "help" {
		return runHelp(stderr, global, rest)
	}
	cmd, ok := commandsByName()[name]
	if !ok {
		fmt.Fprintf(stderr, "ff: unknown command %q\n\n", printable(name))
		printCommands(stderr)
		return ExitUsage
	}
	return cmd.execute(inv, rest)
}

// flagExit maps a flag parse error to an exit code: -h is a successful
// request for help, anything else a usage error (flag has already printed it).
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	return ExitUsage
}

// runHelp prints the general usage, or one command's with `ff help <cmd>`
// (`ff help <cmd> <subcommand>` for a subcommand's).
func runHelp(stderr io.Writer, global *flag.FlagSet, rest []string) int {
	if len(rest) == 0 {
		printUsage(stderr, global)
		return ExitOK
	}
	cmd, ok := commandsByName()[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "ff help: unknown command %q\n\n", printable(rest[0]))
		printCommands(stderr)
		return ExitUsage
	}
	if len(cmd.subcommands) > 0 {
		if len(rest) < 2 {
			cmd.usage(stderr)
			return ExitOK
		}
		sub, ok := cmd.subcommand(rest[1])
		if !ok {
			fmt.Fprintf(stderr, "ff help: unknown subcommand %q of %s\n\n", printable(rest[1]), cmd.name)
			cmd.usage(stderr)
			return ExitUsage
		}
		cmd = sub
	}
	fs := cmd.flagSet(&invocation{stderr: stderr})
	fs.Usage()
	return ExitOK
}

func printUsage(w io.Writer, global *flag.FlagSet) {
	fmt.Fprintf(w, "usage: ff [--backend URL] <command> [flags]\n\n")
	printCommands(w)
	fmt.Fprintf(w, "\nglobal flags:\n")
	global.PrintDefaults()
	fmt.Fprintf(w, "\nRun `ff <command> -h` for a command's flags. Results are JSON envelopes on stdout;\n"+
		"exit 0 on success, 1 on a contract error (an {\"error\":...} envelope), 2 on a usage error.\n")
}

func printCommands(w io.Writer) {
	fmt.Fprintf(w, "commands:\n")
	names := make([]string, 0, len(commands))
	for _, c := range commands {
		names = append(names, c.name)
	}
	sort.Strings(names)
	byName := commandsByName()
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, byName[n].summary)
	}
}

// printable shortens an argument echoed in a usage error and hides it
// whole when it looks like a token or key material (secretLike), so that a
// secret pasted in the wrong place is not printed back, not even in part.
func printable(s string) string {
	if len(s) >= 16 && strings.Trim(strings.ToLower(s), "0123456789abcdef") == "" {
		return "<hex redacted>"
	}
	if secretLike(s) {
		return "<redacted: looks like a token or secret>"
	}
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Shapes of secret material that no usage error quotes.
var (
	// hexRun is a run of 16 or more hex digits: a secret, a KEK, a token's MAC
	// or a part of one.
	hexRun = regexp.MustCompile(`[0-9A-Fa-f]{16,}`)
	// kidHex is a token's shape, <kid>:<hex>, also cut short (8 hex digits
	// or more after the colon).
	kidHex = regexp.MustCompile(`[A-Za-z0-9._-]*:[0-9A-Fa-f]{8,}`)
	// opaqueRun is a run of 24 or more base64 or base64url characters:
	// checked only on a whole argument (see secretLike).
	opaqueRun = regexp.MustCompile(`[A-Za-z0-9+=_-]{24,}`)
	// quoted is a double-quoted value in a message of package flag
	// ("invalid value \"...\" for flag -limit").
	quoted = regexp.MustCompile(`"[^"\n]*"`)
)

// secretLike reports whether s, an argument the user typed, looks like a
// token or a secret: it holds a run of 16 hex digits, a <kid>:<hex> shape,
// or a run of 24 base64 characters mixing letters and digits (an admin
// token, say).
func secretLike(s string) bool {
	if hexRun.MatchString(s) || kidHex.MatchString(s) {
		return true
	}
	for _, run := range opaqueRun.FindAllString(s, -1) {
		if strings.ContainsAny(run, "0123456789") && strings.IndexFunc(run, func(r rune) bool {
			return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
		}) >= 0 {
			return true
		}
	}
	return false
}

// redactSecretLike replaces every token- or secret-shaped part of a message
// (a run of 16 hex digits, a <kid>:<hex> shape) with a placeholder, and
// every double-quoted value that looks like a secret as a whole. Every usage
// error and every message of package flag goes through it, whatever built
// the message.
func redactSecretLike(msg string) string {
	msg = quoted.ReplaceAllStringFunc(msg, func(q string) string {
		if secretLike(q[1 : len(q)-1]) {
			return `"<redacted>"`
		}
		return q
	})
	msg = kidHex.ReplaceAllString(msg, "<redacted>")
	return hexRun.ReplaceAllString(msg, "<redacted>")
}

// redactingWriter passes what package flag prints (errors that quote a
// flag's value, and usage) through redactSecretLike.
type redactingWriter struct{ w io.Writer }

func (r redactingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, redactSecretLike(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// argumentName names args[i] in an error without quoting it: the flag it
// is the value of ("--name" for "--name=V" or "--name V"), else its place.
func argumentName(args []string, i int) string {
	if name, _, ok := strings.Cut(args[i], "="); ok && strings.HasPrefix(name, "-") && utf8.ValidString(name) {
		return "--" + strings.TrimLeft(name, "-")
	}
	if i > 0 && strings.HasPrefix(args[i-1], "-") && !strings.Contains(args[i-1], "=") && utf8.ValidString(args[i-1]) {
		return "--" + strings.TrimLeft(args[i-1], "-")
	}
	return fmt.Sprintf("argument %d", i+1)
}
