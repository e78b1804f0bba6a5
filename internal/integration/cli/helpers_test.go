package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	_ "github.com/flowfabric/flowfabric-go/backend/postgres" // postgres://
	_ "github.com/flowfabric/flowfabric-go/backend/valkey"   // valkey://, redis://
	"github.com/flowfabric/flowfabric-go/cli"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/stretchr/testify/require"
)

// Secrets used by the stories; no test output may contain them.
const (
	secretA = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	secretB = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
)

// result is what one ff run produced. The keystore audit lines that seed,
// rotate and revoke log on stderr are kept apart in audits, so that stderr
// holds everything else.
type result struct {
	code           int
	stdout, stderr string
	audits         []string
}

// newResult checks that the output quotes no secret, then splits the
// audit lines off stderr.
func newResult(t *testing.T, code int, stdout, stderr string) result {
	t.Helper()
	for _, s := range []string{secretA, secretB} {
		require.NotContains(t, stdout+stderr, s, "ff output quotes a secret")
	}
	r := result{code: code, stdout: stdout}
	var rest strings.Builder
	for _, line := range strings.SplitAfter(stderr, "\n") {
		var m struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "keystore audit" {
			r.audits = append(r.audits, line)
			continue
		}
		rest.WriteString(line)
	}
	r.stderr = rest.String()
	return r
}

// run executes ff in-process with stdin and args, and checks that its
// output quotes no secret.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return newResult(t, code, out.String(), errOut.String())
}

// ok asserts exit 0, one envelope line and an empty stderr, and decodes it.
func (r result) ok(t *testing.T) map[string]any {
	t.Helper()
	require.Equal(t, cli.ExitOK, r.code, "stdout %q stderr %q", r.stdout, r.stderr)
	require.Empty(t, r.stderr)
	return envelope(t, r.stdout)
}

// contractErr asserts exit 1 with an error envelope of kind/code.
func (r result) contractErr(t *testing.T, kind contracts.Kind, code string) {
	t.Helper()
	require.Equal(t, cli.ExitContract, r.code, "stdout %q stderr %q", r.stdout, r.stderr)
	var env contracts.ErrorEnvelope
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &env))
	require.NotNil(t, env.Error, "stdout %q is not an error envelope", r.stdout)
	require.Equal(t, kind, env.Error.Kind, env.Error.Detail)
	require.Equal(t, code, env.Error.Code, env.Error.Detail)
}

func wantStdout(t *testing.T, r result, want string) {
	t.Helper()
	require.Equal(t, 0, r.code, "stderr %q", r.stderr)
	require.Equal(t, want+"\n", r.stdout)
	require.Empty(t, r.stderr)
}

func envelope(t *testing.T, stdout string) map[string]any {
	t.Helper()
	require.True(t, strings.HasSuffix(stdout, "\n") && strings.Count(stdout, "\n") == 1, "stdout %q is not one line", stdout)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &m))
	return m
}

// str reads a string at a path of keys and indexes in a decoded envelope.
func str(t *testing.T, v any, path ...any) string {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	s, ok := v.(string)
	require.True(t, ok, "value at %v is %T, not a string", path, v)
	return s
}
