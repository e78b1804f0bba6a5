package cli

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// GeneratedSecretBytes is the size of a secret drawn by --generate.
const GeneratedSecretBytes = 32

// maxSecretFileBytes bounds what --secret-file reads: far more than the
// 128 hex digits of the longest valid secret, so that an oversized file is
// reported by validation rather than read without limit.
const maxSecretFileBytes = 4096

// secretFlags are the mutually exclusive ways to give seed and rotate a secret.
type secretFlags struct {
	file       string
	hex        string
	generate   bool
	generateTo string
}

func (s *secretFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&s.file, "secret-file", "", "read the secret's hex from `PATH` (- for stdin); trailing whitespace is trimmed")
	fs.StringVar(&s.hex, "secret-hex", "", "the secret as `HEX` (visible in the process list: prefer --secret-file)")
	fs.BoolVar(&s.generate, "generate", false, "draw a random 32-byte secret; it is never printed")
	fs.StringVar(&s.generateTo, "generate-to", "", "with --generate: also write the secret's hex to `PATH`, a new file with mode 0600")
}

// errUsage marks an input error that is the caller's usage, not the contract's.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func usageError(format string, args ...any) error { return errUsage{fmt.Sprintf(format, args...)} }

// load returns the secret from exactly one source. field names the secret
// in validation errors (secret_hex, new_secret_hex). A usage problem is an
// errUsage; malformed hex is a contract validation error. No error quotes
// the secret.
func (s *secretFlags) load(fs *flag.FlagSet, stdin io.Reader, field string) (contracts.Secret, error) {
	if n := countSet(fs, "secret-file", "secret-hex", "generate"); n != 1 {
		return nil, usageError("give exactly one of --secret-file, --secret-hex, --generate")
	}
	if setFlags(fs)["generate-to"] && !s.generate {
		return nil, usageError("--generate-to needs --generate")
	}
	switch {
	case s.generate:
		return s.draw()
	case setFlags(fs)["secret-file"]:
		text, err := readSecretFile("--secret-file", s.file, stdin)
		if err != nil {
			return nil, err
		}
		return contracts.ParseSecretHex(field, text)
	default:
		return contracts.ParseSecretHex(field, s.hex)
	}
}

// draw generates a secret. loadSecret writes it to --generate-to, and
// removes the file again unless the secret was installed.
func (s *secretFlags) draw() (contracts.Secret, error) {
	b := make([]byte, GeneratedSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return nil, usageError("drawing a random secret failed")
	}
	return contracts.Secret(b), nil
}

// readSecretFile reads a secret's hex from path, or stdin for "-", with
// trailing whitespace and newlines trimmed. name is the flag or variable
// that gave path, for errors, which never quote path (readSecretInput).
func readSecretFile(name, path string, stdin io.Reader) (string, error) {
	b, err := readSecretInput(name, path, stdin, maxSecretFileBytes)
	if err != nil {
		return "", err
	}
	b = b[:min(len(b), maxSecretFileBytes)] // an oversized file fails validation
	if !utf8.Valid(b) {
		return "", usageError("%s: %s", name, ruleText)
	}
	return strings.TrimRight(string(b), " \t\r\n"), nil
}

// readSecretInput reads up to max+1 bytes from the file at path, or from
// stdin for "-", for a setting (name) that names where a secret or a token
// is. Its errors give the OS's reason only, never path: a secret pasted in
// the wrong place would be printed.
func readSecretInput(name, path string, stdin io.Reader, max int) ([]byte, error) {
	r := stdin
	if path != "-" {
		if problem := secretFileProblem(path); problem != "" {
			return nil, usageError("%s: %s", name, problem)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError("%s: %s", name, cannotRead(err))
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, usageError("%s: reading failed", name)
	}
	return b, nil
}

// pathError describes a file error by its operation, path and cause only.
func pathError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Op + " " + pe.Path + ": " + pe.Err.Error()
	}
	return "failed"
}

// messageFlags give sign and verify their message: inline or from a file.
type messageFlags struct {
	text string
	file string
}

func (m *messageFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&m.text, "message", "", "the message `M` to sign or verify")
	fs.StringVar(&m.file, "message-file", "", "read the message's bytes from `PATH` (- for stdin), unchanged")
}

// load returns the message from exactly one of --message and --message-file.
func (m *messageFlags) load(fs *flag.FlagSet, stdin io.Reader) ([]byte, error) {
	if countSet(fs, "message", "message-file") != 1 {
		return nil, usageError("give exactly one of --message, --message-file")
	}
	if !setFlags(fs)["message-file"] {
		return []byte(m.text), nil
	}
	var r io.Reader = stdin
	if m.file != "-" {
		f, err := os.Open(m.file)
		if err != nil {
			return nil, usageError("--message-file: %v", pathError(err))
		}
		defer f.Close()
		r = f
	}
	// One byte over the limit lets validation report an oversized message.
	b, err := io.ReadAll(io.LimitReader(r, contracts.MaxMessageLen+1))
	if err != nil {
		return nil, usageError("--message-file: reading failed")
	}
	return b, nil
}

// stringList is a repeatable string flag (--waitpoint A --waitpoint B).
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// ruleText is the rule of every text the CLI reads, from the command line
// or from a file that becomes a text field (docs/spec.md §2): bytes that are
// not valid UTF-8 are refused, never replaced. The usage error does not
// show the value: it may be a secret pasted in the wrong place, and its
// bytes would not print anyway. (A message file is bytes, not text:
// sign --message-file signs whatever it holds.)
const ruleText = "must be valid UTF-8 (the value is not shown)"

// inputExit reports an input error: a usage error on stderr (exit 2) or a
// contract error as an envelope (exit 1).
func (inv *invocation) inputExit(err error) int {
	var u errUsage
	if errors.As(err, &u) {
		return inv.usagef("%s", u.msg)
	}
	return inv.print(nil, err)
}
