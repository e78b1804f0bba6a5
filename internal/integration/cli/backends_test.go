package cli_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// TestEveryNetworkBackend runs one short story through ff on each network
// driver ff registers, on real, isolated servers (internal/testenv: skipped
// without a server, failed under CI=true). The drivers' own conformance
// suites test the contract; this checks that ff reaches them by URL.
func TestEveryNetworkBackend(t *testing.T) {
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		db := testenv.NewPostgresDatabase(t)
		r := run(t, "", "--backend", db, "kids")
		if r.code != 1 || !strings.Contains(r.stdout, "ff migrate") {
			t.Fatalf("an unmigrated database should name ff migrate: exit %d %s", r.code, r.stdout)
		}
		wantStdout(t, run(t, "", "--backend", db, "migrate"), `{"applied":["0001_keystore","0002_suspensions","0003_keystore_notify","0004_signal_budgets","0005_lifecycle_v2","0006_revoked_kids","0007_claim_order","0008_compact_rows"]}`)
		story(t, db, 1)
	})
	t.Run("PostgresMigrateAuto", func(t *testing.T) {
		t.Parallel()
		db := testenv.NewPostgresDatabase(t)
		story(t, withQuery(t, db, "ff_migrate", "auto"), 1)
	})
	t.Run("Valkey", func(t *testing.T) {
		t.Parallel()
		u := withQuery(t, testenv.ValkeyURL(t), "prefix", testenv.KeyPrefix(t))
		story(t, withQuery(t, u, "partitions", "8"), 8)
		run(t, "", "--backend", withQuery(t, u, "partitions", "16"), "kids").
			contractErr(t, contracts.KindConflict, contracts.CodePartitionCountMismatch)
	})
	t.Run("ValkeyCluster", func(t *testing.T) {
		t.Parallel()
		u := withQuery(t, testenv.ValkeyClusterURL(t), "prefix", testenv.KeyPrefix(t))
		story(t, u, 256)
	})
}

// story seeds, signs, verifies, rotates, lists, and takes one execution
// from suspend to complete through ff on backend, which has p partitions.
func story(t *testing.T, backend string, p int) {
	t.Helper()
	ff := func(args ...string) result { return run(t, "", append([]string{"--backend", backend}, args...)...) }
	wantStdout(t, ff("seed", "--kid", "k1", "--secret-hex", secretA), `{"outcome":"seeded","kid":"k1","current_kid":"k1","same_secret":null}`)
	token := str(t, ff("sign", "--scope", "s", "--message", "m").ok(t), "token")
	wantStdout(t, ff("verify", "--scope", "s", "--message", "m", "--token", token), `{"valid":true,"kid":"k1"}`)
	rot := ff("rotate", "--kid", "k2", "--secret-hex", secretB)
	if entries := rot.ok(t)["entries"].([]any); len(entries) != p {
		t.Fatalf("rotate: %d entries, want %d", len(entries), p)
	}
	wantStdout(t, ff("verify", "--scope", "s", "--message", "m", "--token", token), `{"valid":true,"kid":"k1"}`)
	if parts := ff("kids").ok(t)["partitions"].([]any); len(parts) != p || str(t, parts[p-1], "current_kid") != "k2" {
		t.Fatalf("kids: %v", parts)
	}

	sus := ff("suspend", "--execution", "order-7", "--waitpoint", "approve").ok(t)
	ff("signal", "--execution", "order-7", "--waitpoint-id", str(t, sus, "waitpoints", 0, "waitpoint_id"),
		"--token", str(t, sus, "waitpoints", 0, "token"), "--name", "ok", "--payload", `{"n":1}`).ok(t)
	claim := ff("claim", "--worker", "w1").ok(t)
	if claim["execution_id"] != "order-7" || claim["reason"] != "signal" {
		t.Fatalf("claim: %v", claim)
	}
	wantStdout(t, ff("complete", "--execution", "order-7", "--lease-id", str(t, claim, "lease_id")),
		`{"outcome":"completed","execution_id":"order-7"}`)
	wantStdout(t, ff("claim", "--worker", "w1"), `{"outcome":"none"}`)
}

func withQuery(t *testing.T, raw, key, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("test URL does not parse")
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}
