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
// # Drivers
//
// The package blank-imports the drivers it registers by default (see
// drivers.go). A custom binary adds its own by blank-importing them before
// calling Main, and every command then accepts their URL scheme:
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
// bytes that nobody sees (add --generate-to PATH to keep a copy).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
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
	global := flag.NewFlagSet("ff", flag.ContinueOnError)
	global.SetOutput(stderr)
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
	if inv.backendURL == "" {
		inv.backendURL = DefaultBackendURL
	}
	inv.backendURL = withKEKFromEnv(inv.backendURL)
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

// runHelp prints the general usage, or one command's with `ff help <cmd>`.
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

// printable shortens an argument echoed in a usage error and hides anything
// that looks like key material (long hex), so that a secret pasted in the
// wrong place is not printed back.
func printable(s string) string {
	if len(s) >= 16 && strings.Trim(strings.ToLower(s), "0123456789abcdef") == "" {
		return "<hex redacted>"
	}
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
