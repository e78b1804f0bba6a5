package cli_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/internal/integration/envelopes"
)

// readmeStories are the README sections whose console blocks run as they
// are, one after another in one empty directory (each continues the last).
var readmeStories = []string{
	"### Signals that arrive before the wait",
	"### Quorums, tags, cancel, heartbeat and release",
}

// consoleStep is one "$ command" of a README console block and the output
// the README shows for it.
type consoleStep struct {
	command string
	want    []string
}

// TestReadmeStoriesRunAsWritten pastes the README's approval mail and
// quorum stories into bash, command by command, with the built ff first on
// PATH in an empty directory, and compares every line printed with the
// README's, once ids, timestamps, MACs and fingerprints are numbered in
// order of appearance: the documentation cannot drift from what ff prints.
func TestReadmeStoriesRunAsWritten(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	require.NoError(t, err)
	var steps []consoleStep
	for _, heading := range readmeStories {
		s := consoleSteps(t, string(raw), heading)
		require.NotEmpty(t, s, "no console block under %q", heading)
		steps = append(steps, s...)
	}

	bin := t.TempDir()
	require.NoError(t, os.Symlink(ffBinary(t), filepath.Join(bin, "ff")))
	const marker = "--- ff readme step %d ---"
	var script strings.Builder
	script.WriteString("set -o pipefail\n")
	for i, s := range steps {
		fmt.Fprintf(&script, "echo '"+marker+"'\n%s\n", i, s.command)
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = t.TempDir()
	cmd.Env = append(withoutEnv(os.Environ(), "FF_BACKEND_URL"), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	_ = cmd.Run() // commands that answer an error envelope exit 1; their output is compared
	got := strings.Split(stdout.String(), "\n")

	var want, have envelopes.Normalizer
	at := 0
	for i, s := range steps {
		require.Less(t, at, len(got), "step %d (%s) printed nothing", i, s.command)
		require.Equal(t, fmt.Sprintf(marker, i), got[at], "before step %d (%s)", i, s.command)
		at++
		var printed []string
		for at < len(got) && !strings.HasPrefix(got[at], "--- ff readme step ") {
			if got[at] != "" {
				printed = append(printed, got[at])
			}
			at++
		}
		require.Len(t, printed, len(s.want), "step %d: %s\nprinted: %q", i, s.command, printed)
		for j := range s.want {
			require.Equal(t, want.Normalize(s.want[j]), have.Normalize(printed[j]), "step %d: %s", i, s.command)
		}
	}
}

// consoleSteps returns the steps of the console blocks between heading and
// the next heading of the same or a higher level.
func consoleSteps(t *testing.T, readme, heading string) []consoleStep {
	t.Helper()
	start := strings.Index(readme, "\n"+heading+"\n")
	require.GreaterOrEqual(t, start, 0, "README has no %q", heading)
	section := readme[start+len(heading)+2:]
	if end := regexp.MustCompile(`\n#{1,3} `).FindStringIndex(section); end != nil {
		section = section[:end[0]]
	}
	var steps []consoleStep
	in := false
	for _, line := range strings.Split(section, "\n") {
		switch {
		case line == "```console":
			in = true
		case line == "```":
			in = false
		case in && strings.HasPrefix(line, "$ "):
			steps = append(steps, consoleStep{command: strings.TrimPrefix(line, "$ ")})
		case in && line != "" && len(steps) > 0:
			steps[len(steps)-1].want = append(steps[len(steps)-1].want, line)
		}
	}
	return steps
}

// withoutEnv returns env without the variable named name.
func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
