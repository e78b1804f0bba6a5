package cli_test

// Tests of the keystore lifecycle commands (docs/spec.md §8.7): ff revoke,
// ff rotate --auto, ff serve --rotate-every, and the one audit line every
// seed, rotation and revocation logs.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/cli"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/syncbuf"
	"github.com/stretchr/testify/require"
)

// entries decodes a per-partition envelope (rotate_all, revoke_kid).
func entries(t *testing.T, stdout string) []struct {
	Partition int              `json:"partition"`
	Outcome   map[string]any   `json:"outcome"`
	Error     *contracts.Error `json:"error"`
} {
	t.Helper()
	var env struct {
		Entries []struct {
			Partition int              `json:"partition"`
			Outcome   map[string]any   `json:"outcome"`
			Error     *contracts.Error `json:"error"`
		} `json:"entries"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &env), stdout)
	require.NotEmpty(t, env.Entries, stdout)
	return env.Entries
}

// wantAudit checks one audit line's op, kid and outcome, and that it holds
// no secret-like hex.
func wantAudit(t *testing.T, line map[string]any, op, kid, outcome string) {
	t.Helper()
	require.Equal(t, op, line["op"], "%v", line)
	require.Equal(t, kid, line["kid"], "%v", line)
	require.Equal(t, outcome, line["outcome"], "%v", line)
	require.Equal(t, "cli", line["caller"], "%v", line)
	b, _ := json.Marshal(line)
	require.NotRegexp(t, regexp.MustCompile(`[0-9a-fA-F]{32,}`), string(b))
}

func TestRevoke(t *testing.T) {
	t.Run("AVerifyingKidStopsVerifyingAtOnce", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
		old := str(t, run(t, "", "--backend", b, "sign", "--message", "m").ok(t), "token")
		run(t, "", "--backend", b, "rotate", "--kid", "k2", "--secret-hex", secretB).ok(t)
		wantStdout(t, run(t, "", "--backend", b, "verify", "--message", "m", "--token", old), `{"valid":true,"kid":"k1"}`)

		r := run(t, "", "--backend", b, "revoke", "--kid", "k1")
		wantStdout(t, r, `{"entries":[{"partition":0,"outcome":{"outcome":"revoked","kid":"k1"},"error":null}]}`)
		line := r.audit(t)
		wantAudit(t, line, "revoke_kid", "k1", "revoked")
		require.Equal(t, "revoke", line["command"])
		require.Equal(t, "INFO", line["level"])

		e := run(t, "", "--backend", b, "verify", "--message", "m", "--token", old).contractErr(t, contracts.KindValidation, contracts.CodeTokenExpired)
		require.Equal(t, `token: kid "k1" was revoked`, e.Detail)
	})
	t.Run("AgainOrUnknownIsNoop", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
		run(t, "", "--backend", b, "rotate", "--kid", "k2", "--secret-hex", secretB).ok(t)
		run(t, "", "--backend", b, "revoke", "--kid", "k1").ok(t)
		r := run(t, "", "--backend", b, "revoke", "--kid", "k1")
		wantStdout(t, r, `{"entries":[{"partition":0,"outcome":{"outcome":"noop","kid":"k1"},"error":null}]}`)
		wantAudit(t, r.audit(t), "revoke_kid", "k1", "noop")
		wantStdout(t, run(t, "", "--backend", b, "revoke", "--kid", "nobody"),
			`{"entries":[{"partition":0,"outcome":{"outcome":"noop","kid":"nobody"},"error":null}]}`)
	})
	t.Run("TheCurrentKidIsAFailedEntryAndExit1", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
		r := run(t, "", "--backend", b, "revoke", "--kid", "k1")
		require.Equal(t, cli.ExitContract, r.code)
		require.Empty(t, r.stderr)
		es := entries(t, r.stdout)
		require.Nil(t, es[0].Outcome)
		require.Equal(t, contracts.KindConflict, es[0].Error.Kind)
		require.Equal(t, contracts.CodeKidIsCurrent, es[0].Error.Code)
		line := r.audit(t)
		wantAudit(t, line, "revoke_kid", "k1", contracts.CodeKidIsCurrent)
		require.Equal(t, "WARN", line["level"])
		require.Equal(t, []any{contracts.CodeKidIsCurrent}, line["error_codes"])
		// Nothing changed: k1 still signs.
		require.Equal(t, "k1", str(t, run(t, "", "--backend", b, "sign", "--message", "m").ok(t), "kid"))
	})
	t.Run("ARevokedNameIsNeverReused", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
		run(t, "", "--backend", b, "rotate", "--kid", "k2", "--secret-hex", secretB).ok(t)
		run(t, "", "--backend", b, "revoke", "--kid", "k1").ok(t)
		r := run(t, "", "--backend", b, "rotate", "--kid", "k1", "--secret-hex", secretA)
		require.Equal(t, cli.ExitContract, r.code)
		require.Equal(t, contracts.CodeRotationConflict, entries(t, r.stdout)[0].Error.Code)
	})
	t.Run("AMalformedKidIsAContractError", func(t *testing.T) {
		b, _ := newStore(t)
		r := run(t, "", "--backend", b, "revoke", "--kid", "not a kid")
		r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		line := r.audit(t)
		require.NotContains(t, line, "kid", "an invalid kid is not logged")
		require.Equal(t, contracts.CodeInvalidInput, line["outcome"])
	})
	t.Run("FlagErrors", func(t *testing.T) {
		run(t, "", "revoke").usage(t, "missing --kid")
		run(t, "", "revoke", "--kid", "k1", "extra").usage(t, `unexpected argument "extra"`)
	})
	t.Run("HelpNamesIt", func(t *testing.T) {
		r := run(t, "", "help", "revoke")
		require.Equal(t, cli.ExitOK, r.code)
		require.Contains(t, r.stderr, "usage: ff [--backend URL] revoke --kid K")
		require.Contains(t, r.stderr, "kid_is_current")
	})
}

// TestAuditLines: every seed, rotation and revocation logs exactly one
// audit line on stderr, other commands none.
func TestAuditLines(t *testing.T) {
	b, _ := newStore(t)
	seedFile := writeFile(t, secretA)
	for _, c := range []struct {
		args        []string
		op, outcome string
	}{
		{[]string{"seed", "--kid", "k1", "--secret-file", seedFile}, "seed", "seeded"},
		{[]string{"seed", "--kid", "k1", "--secret-hex", secretB}, "seed", "already_seeded"},
		{[]string{"kids"}, "", ""},
		{[]string{"sign", "--message", "m"}, "", ""},
		{[]string{"rotate", "--kid", "k2", "--generate"}, "rotate_all", "rotated"},
		{[]string{"rotate", "--kid", "k2", "--secret-hex", secretA}, "rotate_all", "rotation_conflict"},
		{[]string{"revoke", "--kid", "k1"}, "revoke_kid", "revoked"},
		{[]string{"rotate", "--auto", "--every", "8760h", "--grace", "8760h"}, "rotate_all", "rotated"},
	} {
		r := run(t, "", append([]string{"--backend", b}, c.args...)...)
		if c.op == "" {
			require.Empty(t, r.audits, "%v", c.args)
			continue
		}
		line := r.audit(t)
		require.Equal(t, c.op, line["op"], "%v", c.args)
		require.Equal(t, c.outcome, line["outcome"], "%v", c.args)
		require.NotEmpty(t, line["user"], "the operating-system user is named")
		if c.outcome == "already_seeded" {
			require.Equal(t, false, line["same_secret"])
			require.Equal(t, "WARN", line["level"])
		}
		for _, s := range []string{secretA, secretB, strings.ToUpper(secretA), secretA[:32]} {
			require.NotContains(t, r.stdout+r.stderr, s)
		}
		b, _ := json.Marshal(line)
		require.NotRegexp(t, regexp.MustCompile(`[0-9a-fA-F]{32,}`), string(b), "%v", c.args)
	}
}

func TestRotateAuto(t *testing.T) {
	// A period of a year, so that no test run crosses a boundary by chance.
	auto := []string{"rotate", "--auto", "--every", "8760h", "--grace", "8760h"}
	periodKid := func() string {
		start := time.UnixMilli(time.Now().UnixMilli() - time.Now().UnixMilli()%(8760*3600_000)).UTC()
		return "auto-" + start.Format("20060102T150405Z")
	}
	t.Run("RotatesToThePeriodsKidThenNoop", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
		kid := periodKid()
		r := run(t, "", append([]string{"--backend", b}, auto...)...)
		wantStdout(t, r, `{"entries":[{"partition":0,"outcome":{"outcome":"rotated","previous_kid":"k1","new_kid":"`+kid+`","gc_count":0},"error":null}]}`)
		line := r.audit(t)
		wantAudit(t, line, "rotate_all", kid, "rotated")
		require.Equal(t, "rotate --auto", line["command"])
		require.Equal(t, float64(8760*3600_000), line["grace_ms"])

		r = run(t, "", append([]string{"--backend", b}, auto...)...)
		wantStdout(t, r, `{"entries":[{"partition":0,"outcome":{"outcome":"noop","kid":"`+kid+`"},"error":null}]}`)
		wantAudit(t, r.audit(t), "rotate_all", kid, "noop")
		require.Equal(t, kid, str(t, run(t, "", "--backend", b, "sign", "--message", "m").ok(t), "kid"))
	})
	t.Run("ConcurrentCronJobsRotateOnce", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
		var wg sync.WaitGroup
		results := make([]result, 6)
		for i := range results {
			wg.Go(func() { results[i] = run(t, "", append([]string{"--backend", b}, auto...)...) })
		}
		wg.Wait()
		rotated := 0
		for _, r := range results {
			require.Equal(t, cli.ExitOK, r.code, "stdout %q", r.stdout)
			if entries(t, r.stdout)[0].Outcome["outcome"] == contracts.RotateRotated {
				rotated++
			}
		}
		require.Equal(t, 1, rotated)
	})
	t.Run("AnEmptyKeystoreIsNotSeeded", func(t *testing.T) {
		b, _ := newStore(t)
		r := run(t, "", append([]string{"--backend", b}, auto...)...)
		r.contractErr(t, contracts.KindState, contracts.CodeHMACSecretNotInitialized)
		require.Equal(t, contracts.CodeHMACSecretNotInitialized, r.audit(t)["outcome"])
		run(t, "", "--backend", b, "sign", "--message", "m").contractErr(t, contracts.KindState, contracts.CodeHMACSecretNotInitialized)
	})
	t.Run("FlagErrors", func(t *testing.T) {
		run(t, "", "rotate", "--auto").usage(t, "--auto needs --every D")
		run(t, "", "rotate", "--auto", "--every", "1h", "--kid", "k2").usage(t, "drop --kid and the secret flags")
		run(t, "", "rotate", "--auto", "--every", "1h", "--generate").usage(t, "drop --kid and the secret flags")
		run(t, "", "rotate", "--every", "1h", "--kid", "k2", "--generate").usage(t, "--every goes with --auto")
		run(t, "", "rotate", "--auto", "--every", "500ms").usage(t, "--every must be at least 1s")
		run(t, "", "rotate", "--auto", "--every", "90500ms").usage(t, "--every must be a whole number of seconds")
		run(t, "", "rotate", "--auto", "--every", "48h").usage(t, "--grace (24h0m0s) must be at least --every (48h0m0s)")
		run(t, "", "rotate", "--auto", "--every", "2h", "--grace-ms", "3600000").usage(t, "--grace-ms (1h0m0s) must be at least --every (2h0m0s)")
		run(t, "", "rotate").usage(t, "missing --kid (or --auto)")
	})
}

func TestServeRotateEvery(t *testing.T) {
	t.Run("FlagErrors", func(t *testing.T) {
		run(t, "", "--backend", "memory://", "serve", "--rotate-every", "500ms").usage(t, "--rotate-every must be at least 1s")
		run(t, "", "--backend", "memory://", "serve", "--rotate-every", "1500ms", "--grace", "1h").usage(t, "whole number of seconds")
		run(t, "", "--backend", "memory://", "serve", "--rotate-every", "2h", "--grace", "1h").
			usage(t, "--grace (1h0m0s) must be at least --rotate-every (2h0m0s)")
		run(t, "", "--backend", "memory://", "serve", "--grace", "1h").usage(t, "--grace goes with --rotate-every")
	})
	t.Run("RotatesAndCountsInMetrics", func(t *testing.T) {
		t.Setenv("FF_WAITPOINT_HMAC_KID", "k1")
		t.Setenv("FF_WAITPOINT_HMAC_SECRET_FILE", writeFile(t, secretA))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errOut syncbuf.Buffer
		db := "sqlite://" + filepath.Join(t.TempDir(), "serve.db")
		done := make(chan int, 1)
		go func() {
			done <- cli.Run(ctx, []string{"--backend", db, "serve", "--listen", "127.0.0.1:0", "--rotate-every", "1s", "--grace", "10s"},
				strings.NewReader(""), &out, &errOut)
		}()
		addr := waitListening(t, &errOut)
		var metrics string
		require.Eventually(t, func() bool {
			resp, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				return false
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics = string(body)
			return regexp.MustCompile(`ff_keystore_changes_total\{op="rotate_all",outcome="rotated"\} [2-9]`).MatchString(metrics)
		}, 5*time.Second, 50*time.Millisecond, "metrics:\n%s", metrics)
		require.Contains(t, metrics, `ff_keystore_changes_total{op="seed",outcome="seeded"} 1`)
		require.Regexp(t, `ff_rotations_total\{outcome="rotated"\} [2-9]`, metrics)
		cancel()
		select {
		case code := <-done:
			require.Equal(t, cli.ExitOK, code, "stderr %s", errOut.String())
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not stop after cancellation")
		}
		r := newResult(t, 0, out.String(), errOut.String())
		var rotated []string
		for _, line := range r.audits {
			if line["op"] == "rotate_all" && line["outcome"] == "rotated" {
				require.Equal(t, "scheduler", line["caller"])
				rotated = append(rotated, line["kid"].(string))
			}
		}
		require.GreaterOrEqual(t, len(rotated), 2, "the start-up rotation away from k1 and one boundary")
		for i := 1; i < len(rotated); i++ {
			require.Less(t, rotated[i-1], rotated[i], "one new kid per period, in order")
		}
		require.Equal(t, "seed", r.audits[0]["op"], "the seed comes first")
		require.Equal(t, "serve", r.audits[0]["command"])
	})
}
