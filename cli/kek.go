package cli

import (
	"context"
	"errors"
	"flag"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

// KEKFileEnv names the file holding the key-encryption key that seals stored
// secrets (package kek), for backend URLs without a kek_file parameter.
const KEKFileEnv = "FF_KEK_FILE"

// withKEKFromEnv returns rawURL with kek_file set from FF_KEK_FILE when the
// variable is set and the URL names no kek_file itself (the URL wins, like
// --backend over FF_BACKEND_URL). An unparsable URL is returned as is: the
// engine reports it. The error, for the commands that open the backend to
// report, says that the file FF_KEK_FILE names cannot be read, without
// quoting the variable's value: a key pasted where its path belongs must
// not be printed back.
func withKEKFromEnv(rawURL string) (string, error) {
	path := os.Getenv(KEKFileEnv)
	if path == "" {
		return rawURL, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL, nil
	}
	q := u.Query()
	if q.Has(engine.ParamKEKFile) {
		return rawURL, nil
	}
	q.Set(engine.ParamKEKFile, path)
	u.RawQuery = q.Encode()
	return u.String(), checkSecretFile("$"+KEKFileEnv, path)
}

// checkSecretFile reports, as invalid_input naming source (a flag or an
// environment variable), that the file path names cannot be read, with the
// OS's reason (no such file or directory, permission denied, ...) but never
// path itself: the value of a setting that names a secret's file may be the
// secret, pasted in the wrong place.
func checkSecretFile(source, path string) error {
	if problem := secretFileProblem(path); problem != "" {
		return contracts.Invalid(source, problem)
	}
	return nil
}

// secretFileProblem says why the file at path cannot be read, "" when it
// can: by the OS's reason only, never by the path.
func secretFileProblem(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return cannotRead(err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return "names a directory, not a file (the value is not shown: it may be a secret)"
	}
	return ""
}

// cannotRead describes a failure to read a secret's file by the OS's reason
// only ("no such file or directory"), never by its path.
func cannotRead(err error) string {
	return "cannot read the file it names: " + osReason(err) + " (the value is not shown: it may be a secret)"
}

// osReason is the OS's reason of a file error ("permission denied"),
// without the path the error carries.
func osReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	return "failed"
}

// rewrapOutput is the envelope of ff rewrap: the counts and the fingerprint
// of the KEK the secrets are now sealed under (null: stored in plain).
type rewrapOutput struct {
	contracts.RewrapResult

	KEKFingerprint *string `json:"kek_fingerprint"`
}

var rewrapCommand = command{
	name:     "rewrap",
	summary:  "re-seal every stored secret under a new key-encryption key without changing any kid (the current KEK comes from the URL's kek_file or $" + KEKFileEnv + ")",
	synopsis: "(--new-kek-file PATH | --to-plain)",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		newFile := fs.String("new-kek-file", "", "the file `PATH` holding the KEK to seal under (64 hex digits or 32 raw bytes)")
		toPlain := fs.Bool("to-plain", false, "store the secrets in plain again (turns secrets at rest off)")
		return func(inv *invocation) int {
			if countSet(fs, "new-kek-file", "to-plain") != 1 {
				return inv.usagef("give exactly one of --new-kek-file, --to-plain")
			}
			var to *kek.Keyring
			if !*toPlain {
				k, err := loadKEKFile("--new-kek-file", *newFile)
				if err != nil {
					return inv.print(nil, err)
				}
				to = kek.NewKeyring(k)
			}
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				r, err := e.RewrapSecrets(ctx, to)
				if err != nil {
					return nil, err
				}
				out := rewrapOutput{RewrapResult: r}
				if fp := to.Fingerprint(); fp != "" {
					out.KEKFingerprint = &fp
				}
				return out, nil
			})
		}
	},
}

// maxKEKFileBytes bounds what loadKEKFile reads: a KEK file holds 64 hex
// digits or 32 raw bytes.
const maxKEKFileBytes = 4096

// loadKEKFile reads and parses the KEK file that flag names; errors name
// the flag, never the path (kek.LoadFile would quote it).
func loadKEKFile(flagName, path string) (*kek.Key, error) {
	field := strings.TrimPrefix(flagName, "--")
	field = strings.ReplaceAll(field, "-", "_")
	f, err := os.Open(path)
	if err != nil {
		return nil, contracts.Invalid(field, cannotRead(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKEKFileBytes))
	if err != nil {
		return nil, contracts.Invalid(field, cannotRead(err))
	}
	defer clear(data)
	return kek.Parse(field, data)
}
