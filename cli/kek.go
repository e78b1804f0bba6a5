package cli

import (
	"context"
	"flag"
	"net/url"
	"os"

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
// engine reports it.
func withKEKFromEnv(rawURL string) string {
	path := os.Getenv(KEKFileEnv)
	if path == "" {
		return rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	q := u.Query()
	if q.Has(engine.ParamKEKFile) {
		return rawURL
	}
	q.Set(engine.ParamKEKFile, path)
	u.RawQuery = q.Encode()
	return u.String()
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
				k, err := kek.LoadFile("new_kek_file", *newFile)
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
