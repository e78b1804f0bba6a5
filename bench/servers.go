package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// The variables that name the servers, as scripts/test-servers.sh (and so
// `make test` and `make servers-start`) exports them.
const (
	envPostgres = "FF_TEST_POSTGRES_URL"
	envValkey   = "FF_TEST_VALKEY_URL"
)

// unusedServers are the variables of scripts/test-servers.sh naming servers
// bench does not use: set to a placeholder when unset, so that the script
// starts (and installs) none of them. FF_CHROMIUM keeps it from installing
// the browser of the console's tests.
var unusedServers = []string{
	"FF_TEST_VALKEY_CLUSTER_URL", "FF_TEST_REDIS_URL", "FF_TEST_REDIS_CLUSTER_URL",
	"FF_TEST_POSTGRES_POOLER_URL", "FF_CHROMIUM",
}

// placeholder is the value given to the variables of servers bench does not
// want the script to start.
const placeholder = "unused-by-ff-bench"

// servers are the servers of a run. A nil URL is a server the run does not
// need.
type servers struct {
	Postgres *url.URL // its database is the admin database: bench creates its own beside it
	Valkey   *url.URL
	// ValkeyOwned is true when this run started the Valkey server, so that
	// it may reconfigure it (the slowlog threshold); a server it did not
	// start is only read.
	ValkeyOwned bool
}

// resolveServers returns the servers named by FF_TEST_POSTGRES_URL and
// FF_TEST_VALKEY_URL, for those the run needs. The ones unset are started
// with repo's scripts/test-servers.sh, in a private state directory, and a
// step stopping them is added to cl; only the needed servers are started.
// The script runs in its own process group, so that a ctrl-C in the
// terminal reaches bench (which then cleans up and stops the servers) and
// not the servers themselves.
func resolveServers(repo string, needPostgres, needValkey bool, cl *cleanups, stderr io.Writer) (servers, error) {
	env := map[string]string{}
	startPostgres := needPostgres && os.Getenv(envPostgres) == ""
	startValkey := needValkey && os.Getenv(envValkey) == ""
	if startPostgres || startValkey {
		var err error
		if env, err = startServers(repo, startPostgres, startValkey, cl, stderr); err != nil {
			return servers{}, err
		}
	}
	lookup := func(name string) string {
		if v, ok := env[name]; ok {
			return v
		}
		return os.Getenv(name)
	}
	var s servers
	var err error
	if needPostgres {
		if s.Postgres, err = parseServerURL(envPostgres, lookup(envPostgres)); err != nil {
			return s, err
		}
	}
	if needValkey {
		if s.Valkey, err = parseServerURL(envValkey, lookup(envValkey)); err != nil {
			return s, err
		}
		s.ValkeyOwned = startValkey
	}
	return s, nil
}

// parseServerURL parses the URL of variable name; errors show it redacted.
func parseServerURL(name, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%s: not set, and scripts/test-servers.sh exported no value for it", name)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: not a URL", name) // url's error would quote the password
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s: %s names no host", name, u.Redacted())
	}
	return u, nil
}

// startServers runs `scripts/test-servers.sh start` for Postgres and/or
// Valkey and returns the variables it exported. The step stopping them is
// added to cl before the start, so that a start interrupted half-way is
// stopped too.
func startServers(repo string, postgres, valkey bool, cl *cleanups, stderr io.Writer) (map[string]string, error) {
	script, err := filepath.Abs(filepath.Join(repo, "scripts", "test-servers.sh"))
	if err != nil {
		return nil, fmt.Errorf("locating scripts/test-servers.sh: %w", err)
	}
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("starting servers: %w (pass -repo, the repository root)", err)
	}
	stateDir, err := os.MkdirTemp("", "ff-bench-servers-")
	if err != nil {
		return nil, fmt.Errorf("starting servers: %w", err)
	}
	env := scriptEnv(stateDir, postgres, valkey)
	cl.add("stopping the servers bench started", func(context.Context) error {
		defer os.RemoveAll(stateDir)
		return runScript(script, "stop", env, io.Discard, stderr)
	})
	var unset []string
	if postgres {
		unset = append(unset, envPostgres)
	}
	if valkey {
		unset = append(unset, envValkey)
	}
	fmt.Fprintf(stderr, "bench: %s unset: starting the servers with scripts/test-servers.sh (stopped on exit)\n", strings.Join(unset, " and "))
	var out bytes.Buffer
	if err := runScript(script, "start", env, &out, stderr); err != nil {
		return nil, fmt.Errorf("scripts/test-servers.sh start: %w", err)
	}
	return parseExports(out.String()), nil
}

// scriptEnv is the environment of test-servers.sh: this process's, with the
// private state directory, and a placeholder for every server bench does
// not want started.
func scriptEnv(stateDir string, postgres, valkey bool) []string {
	env := append(os.Environ(), "FF_TEST_STATE_DIR="+stateDir)
	skip := append([]string(nil), unusedServers...)
	if !postgres {
		skip = append(skip, envPostgres)
	}
	if !valkey {
		skip = append(skip, envValkey)
	}
	for _, name := range skip {
		if os.Getenv(name) == "" {
			env = append(env, name+"="+placeholder)
		}
	}
	return env
}

// runScript runs `bash script verb` in its own process group. It takes no
// context on purpose: killing the script half-way would leave servers it
// cannot stop; it ends on its own (the script bounds its waits).
func runScript(script, verb string, env []string, stdout, stderr io.Writer) error {
	cmd := exec.Command("bash", script, verb)
	cmd.Env = env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd.Run()
}

// parseExports reads the `export NAME='value'` lines test-servers.sh
// prints; other lines are ignored.
func parseExports(out string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "export ")
		if !ok {
			continue
		}
		name, value, ok := strings.Cut(rest, "=")
		if !ok || name == "" {
			continue
		}
		if len(value) >= 2 && value[0] == '\'' && value[len(value)-1] == '\'' {
			value = value[1 : len(value)-1]
		}
		vars[name] = value
	}
	return vars
}
