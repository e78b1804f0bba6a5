package cli_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// ff signals pages with --limit and --cursor (docs/spec.md §5.3): three
// signals at one per page come back in delivery order, each once, and the
// last page's next_cursor is null; a cursor ff did not make is a contract
// error naming the field.
func TestSignalsPages(t *testing.T) {
	b, _ := seeded(t)
	sus := run(t, "", "--backend", b, "suspend", "--execution", "e", "--waitpoint", "a", "--waitpoint", "b", "--waitpoint", "c", "--condition", "all").ok(t)
	for i, key := range []string{"a", "b", "c"} {
		run(t, "", "--backend", b, "signal", "--execution", "e", "--waitpoint-id", str(t, sus, "waitpoints", i, "waitpoint_id"),
			"--token", str(t, sus, "waitpoints", i, "token"), "--name", "n"+key).ok(t)
	}
	var names []string
	args := []string{"--backend", b, "signals", "--execution", "e", "--limit", "1"}
	for page := 0; ; page++ {
		require.Less(t, page, 4, "more pages than signals")
		p := run(t, "", args...).ok(t)
		for _, s := range p["signals"].([]any) {
			names = append(names, s.(map[string]any)["name"].(string))
		}
		if p["next_cursor"] == nil {
			break
		}
		args = []string{"--backend", b, "signals", "--execution", "e", "--limit", "1", "--cursor", fmt.Sprint(p["next_cursor"])}
	}
	require.Equal(t, []string{"na", "nb", "nc"}, names)
	r := run(t, "", "--backend", b, "signals", "--execution", "e", "--cursor", "not-a-cursor")
	require.Contains(t, r.stdout, `"detail":"cursor: must be a next_cursor returned by observe_signals"`)
}
