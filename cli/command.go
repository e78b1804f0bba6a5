package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

// command is one entry of the command table: its name, a one-line summary
// for `ff help`, the synopsis of its flags, and setup, which defines the
// command's flags on fs and returns the function that runs it once the
// flags are parsed. A command with subcommands (`ff waitpoint create`) has
// no flags and no setup of its own: its first argument names the
// subcommand, which runs as a command named "waitpoint create".
type command struct {
	name        string
	summary     string
	synopsis    string
	setup       func(fs *flag.FlagSet) func(inv *invocation) int
	subcommands []command
}

// commands is the command table; `ff help` lists it sorted by name. A new
// command is one more entry.
var commands = []command{
	seedCommand,
	rotateCommand,
	revokeCommand,
	kidsCommand,
	signCommand,
	verifyCommand,
	migrateCommand,
	suspendCommand,
	signalCommand,
	signalsCommand,
	suspendedCommand,
	claimCommand,
	completeCommand,
	waitpointCommand,
	extendCommand,
	releaseCommand,
	cancelCommand,
	describeCommand,
	countsCommand,
	serveCommand,
	demoCommand,
	benchCommand,
	rewrapCommand,
}

func commandsByName() map[string]command {
	m := make(map[string]command, len(commands))
	for _, c := range commands {
		m[c.name] = c
	}
	return m
}

// invocation is one run of a command: the streams, the context and the
// backend URL chosen by the global flags.
type invocation struct {
	ctx          context.Context
	stdin        io.Reader
	stdout       io.Writer
	stderr       io.Writer
	backendURL   string
	backendNamed bool   // --backend or FF_BACKEND_URL named the backend (else DefaultBackendURL)
	kekErr       error  // FF_KEK_FILE names a file that cannot be read (withKEKFromEnv)
	cmd          string // the command's name, for usage errors
}

// flagSet returns the command's flag set, printing errors and usage on the
// invocation's stderr, and the runner bound to its flags.
func (c command) flagSet(inv *invocation) *flag.FlagSet {
	fs, _ := c.bind(inv)
	return fs
}

func (c command) bind(inv *invocation) (*flag.FlagSet, func(*invocation) int) {
	fs := flag.NewFlagSet("ff "+c.name, flag.ContinueOnError)
	// Package flag quotes a value it cannot parse: a token or a secret
	// given to the wrong flag is not printed back.
	fs.SetOutput(redactingWriter{inv.stderr})
	run := c.setup(fs)
	fs.Usage = func() {
		fmt.Fprintf(inv.stderr, "usage: ff [--backend URL] %s %s\n\n%s\n", c.name, c.synopsis, c.summary)
		if hasFlags(fs) {
			fmt.Fprintf(inv.stderr, "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	return fs, run
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// execute parses the command's flags and runs it, or, for a command with
// subcommands, runs the one its first argument names.
func (c command) execute(inv *invocation, args []string) int {
	if len(c.subcommands) > 0 {
		return c.dispatch(inv, args)
	}
	inv.cmd = c.name
	fs, run := c.bind(inv)
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		return inv.usagef("unexpected argument %q (every input is a flag; see ff %s -h)", printable(fs.Arg(0)), c.name)
	}
	return run(inv)
}

// usagef reports a usage error on stderr and returns ExitUsage. Callers
// never pass secret material, and as a second line of defence the message
// is passed through redactSecretLike: no usage error quotes a run of 16 hex
// digits or a <kid>:<hex> shape, whoever built it.
func (inv *invocation) usagef(format string, args ...any) int {
	fmt.Fprintf(inv.stderr, "ff %s: %s\n", inv.cmd, redactSecretLike(fmt.Sprintf(format, args...)))
	return ExitUsage
}

// failed is implemented by results that can report a partial failure while
// still being a result envelope (RotateAllResult).
type failed interface{ Failed() bool }

// print writes the result envelope, or the error envelope of err, and
// returns the exit code.
func (inv *invocation) print(v any, err error) int {
	if err != nil {
		// The backend URL's secrets never reach an error envelope, whoever
		// wrote the message (a driver, the engine, a KEK file's loader).
		inv.write(contracts.ErrorEnvelope{Error: contracts.AsError(engine.RedactError(err, inv.backendURL))})
		return ExitContract
	}
	inv.write(v)
	if f, ok := v.(failed); ok && f.Failed() {
		return ExitContract
	}
	return ExitOK
}

// write encodes one envelope and a newline, without HTML escaping.
func (inv *invocation) write(v any) {
	enc := json.NewEncoder(inv.stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(inv.stderr, "ff %s: writing the result: %v\n", inv.cmd, err)
	}
}

// open opens the engine over the invocation's backend, failing first when
// FF_KEK_FILE names a file that cannot be read.
func (inv *invocation) open(opts ...engine.Option) (*engine.Engine, error) {
	if inv.kekErr != nil {
		return nil, inv.kekErr
	}
	return engine.Open(inv.ctx, inv.backendURL, opts...)
}

// withEngine opens the backend, runs op and prints its result or error.
// A one-shot command makes a call or two: it opens the Engine without the
// keystore cache, and so without the cache's listener (a PostgreSQL LISTEN
// connection, a Valkey subscription) it would never use and would tear down
// again at once.
func (inv *invocation) withEngine(op func(ctx context.Context, e *engine.Engine) (any, error)) int {
	e, err := inv.open(engine.WithKeystoreCache(0))
	if err != nil {
		return inv.print(nil, err)
	}
	defer e.Close()
	return inv.print(op(inv.ctx, e))
}

// withFlags is withEngine for a command whose flags named required must be
// given: without them it is a usage error naming every missing one, and no
// store is opened.
func (inv *invocation) withFlags(fs *flag.FlagSet, required []string, op func(ctx context.Context, e *engine.Engine) (any, error)) int {
	if m := missing(fs, required...); m != "" {
		return inv.usagef("missing %s", m)
	}
	return inv.withEngine(op)
}

// audit returns the keystore audit of a one-shot command: one JSON line
// on stderr per seed, rotation or revocation (httpapi.KeystoreAudit).
func (inv *invocation) audit() *httpapi.KeystoreAudit {
	return httpapi.NewKeystoreAudit(slog.New(slog.NewJSONHandler(inv.stderr, nil)))
}

// caller names the command and the operating-system user in audit lines.
func (inv *invocation) caller() httpapi.Caller {
	return httpapi.Caller{Via: "cli", Command: inv.cmd, User: osUser()}
}

// osUser returns the name of the user running ff, or "" when unknown.
func osUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

// missing returns the names of required flags that were not given, as
// "--a, --b", or "" when all were.
func missing(fs *flag.FlagSet, names ...string) string {
	set := setFlags(fs)
	var out []string
	for _, n := range names {
		if !set[n] {
			out = append(out, "--"+n)
		}
	}
	return strings.Join(out, ", ")
}

// setFlags returns the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// countSet counts how many of the named flags were given.
func countSet(fs *flag.FlagSet, names ...string) int {
	set := setFlags(fs)
	n := 0
	for _, name := range names {
		if set[name] {
			n++
		}
	}
	return n
}

// dispatch runs the subcommand args[0] with the rest of args. No
// subcommand, or an unknown one, is a usage error listing them; -h, -help
// and --help list them and exit 0.
func (c command) dispatch(inv *invocation, args []string) int {
	inv.cmd = c.name
	if len(args) == 0 {
		c.usage(inv.stderr)
		return ExitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		c.usage(inv.stderr)
		return ExitOK
	}
	sub, ok := c.subcommand(args[0])
	if !ok {
		code := inv.usagef("unknown subcommand %q", printable(args[0]))
		c.usage(inv.stderr)
		return code
	}
	return sub.execute(inv, args[1:])
}

// subcommand returns the subcommand called name, named in full ("waitpoint
// create") for its usage and errors.
func (c command) subcommand(name string) (command, bool) {
	for _, sub := range c.subcommands {
		if sub.name == name {
			sub.name = c.name + " " + sub.name
			return sub, true
		}
	}
	return command{}, false
}

// usage prints the usage of a command with subcommands: one line each.
func (c command) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: ff [--backend URL] %s <subcommand> [flags]\n\n%s\n\nsubcommands:\n", c.name, c.summary)
	for _, sub := range c.subcommands {
		fmt.Fprintf(w, "  %-8s %s\n", sub.name, sub.summary)
	}
	fmt.Fprintf(w, "\nRun `ff %s <subcommand> -h` for its flags.\n", c.name)
}
