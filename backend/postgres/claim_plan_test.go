package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// claimBufferBound is the most buffers (shared hits and reads) a claim may
// touch among 10,000 executions: the index entries of its branches and
// gates, the candidate's row and the new version's index entries, a few
// pages each. Reading the executions one by one, or every candidate of a
// branch to sort them, touches hundreds.
const claimBufferBound = 60

// claimStats are the states of the planner's statistics a claim is
// explained under: none (never analyzed, autovacuum off: as after a bulk
// of suspends into a new table), those of an empty table (analyzed after
// a few executions came and went, before the others: every estimate is
// one row), and fresh ones.
var claimStats = []string{"never analyzed", "analyzed while empty", "after ANALYZE"}

// Given 10,000 executions in each of the shapes below, under each of
// claimStats, a claim walks each branch's partial index in claim order,
// stopping at its first candidate, touches at most claimBufferBound
// buffers and takes the oldest claimable execution (docs/spec.md §5.5).
// Without ff_executions_timeouts_by_age the timed-out branch walks every
// suspended execution or sorts every timed-out one; without
// ff_executions_leases_by_age the expired-lease branch sorts every expired
// lease; without the gates of claimSQL a claim with nothing claimable walks
// every suspension with a timeout, or every live lease; without
// claimSettingsSQL the planner, on one-row estimates, sorts every
// candidate or walks every suspended execution.
func TestClaimWalksClaimOrderWhateverTheStatistics(t *testing.T) {
	nowMs := time.Now().UnixMilli()
	base := nowMs - 3_600_000
	for _, tc := range []struct {
		name   string
		fill   []string // INSERTs, of {base} (an hour ago) and {now}
		want   string   // the execution claimed ("": none)
		reason string
		branch map[string]string // CTE → the index its walk reads
	}{{
		name: "timed out behind waiting ones",
		fill: []string{
			`INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, condition, waitpoint_count)
			 SELECT 'wait-' || i, 'suspended', gen_random_uuid(), {base} + i, 'any', 1 FROM generate_series(1, 10000) i`,
			`INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, timeout_at_ms, condition, waitpoint_count)
			 SELECT 'late-' || i, 'suspended', gen_random_uuid(), {base} + 100000 + i, {base} + 100000 + i + 1, 'any', 1 FROM generate_series(1, 2500) i`,
		},
		want: "late-1", reason: contracts.ReasonTimeout,
		branch: map[string]string{"CTE t": "ff_executions_timeouts_by_age"},
	}, {
		// Few enough timed out that ff_executions_timeouts is one page
		// shallower than ff_executions_timeouts_by_age: on one-row
		// estimates, a sort of what it holds looked cheaper.
		name: "a few timed out behind waiting ones",
		fill: []string{
			`INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, condition, waitpoint_count)
			 SELECT 'wait-' || i, 'suspended', gen_random_uuid(), {base} + i, 'any', 1 FROM generate_series(1, 10000) i`,
			`INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, timeout_at_ms, condition, waitpoint_count)
			 SELECT 'late-' || i, 'suspended', gen_random_uuid(), {base} + 100000 + i, {base} + 100000 + i + 1, 'any', 1 FROM generate_series(1, 300) i`,
		},
		want: "late-1", reason: contracts.ReasonTimeout,
		branch: map[string]string{"CTE t": "ff_executions_timeouts_by_age"},
	}, {
		name: "waiting with a timeout, nothing claimable",
		fill: []string{
			`INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, timeout_at_ms, condition, waitpoint_count)
			 SELECT 'wait-' || i, 'suspended', gen_random_uuid(), {base} + i, {now} + 86400000, 'any', 1 FROM generate_series(1, 10000) i`,
		},
		branch: map[string]string{"CTE t": "ff_executions_timeouts_by_age"},
	}, {
		name: "waiting without timeout, nothing claimable",
		fill: []string{
			`INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, condition, waitpoint_count)
			 SELECT 'wait-' || i, 'suspended', gen_random_uuid(), {base} + i, 'any', 1 FROM generate_series(1, 10000) i`,
		},
	}, {
		name: "resumed behind waiting ones",
		fill: []string{
			`INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, condition, waitpoint_count)
			 SELECT 'wait-' || i, 'suspended', gen_random_uuid(), {base} + i, 'any', 1 FROM generate_series(1, 10000) i`,
			`INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, condition, waitpoint_count)
			 SELECT 'resumed-' || i, 'resumed', gen_random_uuid(), {base} + 100000 + i, 'any', 1 FROM generate_series(1, 500) i`,
		},
		want: "resumed-1", reason: contracts.ReasonSignal,
		branch: map[string]string{"CTE r": "ff_executions_resumed"},
	}, {
		name: "expired leases",
		fill: []string{
			`INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, condition, waitpoint_count, lease_id, lease_expires_at_ms, reason)
			 SELECT 'crashed-' || i, 'claimed', gen_random_uuid(), {base} + i, 'any', 1, 'lease-' || i, {now} - 60000 - i, 'signal' FROM generate_series(1, 10000) i`,
		},
		want: "crashed-1", reason: contracts.ReasonSignal,
		branch: map[string]string{"CTE l": "ff_executions_leases_by_age"},
	}, {
		name: "live leases, nothing claimable",
		fill: []string{
			`INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, condition, waitpoint_count, lease_id, lease_expires_at_ms, reason)
			 SELECT 'busy-' || i, 'claimed', gen_random_uuid(), {base} + i, 'any', 1, 'lease-' || i, {now} + 3600000, 'signal' FROM generate_series(1, 10000) i`,
		},
		branch: map[string]string{"CTE l": "ff_executions_leases_by_age"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			at := strings.NewReplacer("{base}", strconv.FormatInt(base, 10), "{now}", strconv.FormatInt(nowMs, 10))
			ctx := context.Background()
			// One store for the first and third states, one for the second.
			stores := map[string]*pgx.Conn{}
			var first *engine.Engine
			for _, stats := range claimStats[:2] {
				e, plain := newEngine(t)
				if first == nil {
					first = e
				}
				c := connect(t, plain)
				_, err := c.Exec(ctx, `ALTER TABLE ff_executions SET (autovacuum_enabled = false)`)
				require.NoError(t, err)
				if stats == "analyzed while empty" {
					_, err := c.Exec(ctx, `INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, condition, waitpoint_count)
						SELECT 'gone-' || i, 'suspended', gen_random_uuid(), i, 'any', 1 FROM generate_series(1, 100) i`)
					require.NoError(t, err)
					_, err = c.Exec(ctx, `DELETE FROM ff_executions`)
					require.NoError(t, err)
					_, err = c.Exec(ctx, `ANALYZE ff_executions`)
					require.NoError(t, err)
				}
				for _, q := range tc.fill {
					_, err := c.Exec(ctx, at.Replace(q))
					require.NoError(t, err)
				}
				var reltuples float64
				var relpages int
				require.NoError(t, c.QueryRow(ctx, `SELECT reltuples, relpages FROM pg_class WHERE oid = 'ff_executions'::regclass`).Scan(&reltuples, &relpages))
				if stats == "never analyzed" {
					require.Equal(t, float64(-1), reltuples, "positive control: no statistics for ff_executions")
				} else {
					require.Equal(t, float64(0), reltuples, "positive control: the statistics of an empty ff_executions")
					require.Positive(t, relpages, "positive control: the statistics of an empty ff_executions with pages")
				}
				stores[stats] = c
			}
			for _, stats := range claimStats {
				c := stores[stats]
				if stats == "after ANALYZE" {
					c = stores["never analyzed"]
					_, err := c.Exec(ctx, `ANALYZE ff_executions`)
					require.NoError(t, err)
				}
				plan, buffers := explainClaim(t, c)
				t.Logf("%s: %d buffers", stats, buffers)
				require.LessOrEqual(t, buffers, claimBufferBound, "%s: buffers of a claim; plan:\n%s", stats, plan)
				for cte, index := range tc.branch {
					require.Equal(t, []string{"Index Scan using " + index}, branchScans(plan, cte), "%s: %s; plan:\n%s", stats, cte, plan)
				}
				for cte, index := range map[string]string{"CTE t": "ff_executions_timeouts", "CTE l": "ff_executions_leases"} {
					require.Equal(t, []string{index}, gateIndexes(plan, cte), "%s: the gate of %s; plan:\n%s", stats, cte, plan)
				}
				// A group of claims asks whether anything claimable is
				// left (claim_group.go): the three gates, an index entry
				// each.
				left, leftBuffers := explainClaimTx(t, c, postgres.ClaimableLeftSQL)
				require.LessOrEqual(t, leftBuffers, claimLeftBufferBound, "%s: buffers of claimableLeftSQL; plan:\n%s", stats, left)
				require.Equal(t, []string{"ff_executions_leases", "ff_executions_resumed", "ff_executions_timeouts"}, indexScans(left),
					"%s: claimableLeftSQL reads the gates; plan:\n%s", stats, left)
			}

			out, err := first.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 1000})
			require.NoError(t, err)
			if tc.want == "" {
				require.Equal(t, contracts.OutcomeNone, out.Outcome)
				return
			}
			require.Equal(t, contracts.OutcomeClaimed, out.Outcome)
			require.Equal(t, tc.want, out.ExecutionID)
			require.Equal(t, tc.reason, out.Reason)
		})
	}
}

// claimLeftBufferBound is the most buffers claimableLeftSQL may touch:
// the first entry of three indexes and its row, a few pages each.
const claimLeftBufferBound = 20

// indexScans lists, sorted, the index of every scan of the plan ("" for
// a scan without one, such as a Seq Scan), nested plans included.
func indexScans(root planNode) []string {
	var out []string
	var walk func(n planNode)
	walk = func(n planNode) {
		if strings.HasSuffix(fmt.Sprint(n["Node Type"]), "Scan") && n["Relation Name"] != nil {
			index, _ := n["Index Name"].(string)
			out = append(out, index)
		}
		for _, k := range n.children() {
			walk(k)
		}
	}
	walk(root)
	slices.Sort(out)
	return out
}

// planNode is a node of EXPLAIN (FORMAT JSON).
type planNode map[string]any

func (n planNode) children() []planNode {
	var out []planNode
	kids, _ := n["Plans"].([]any)
	for _, k := range kids {
		if m, ok := k.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// String renders the plan one node a line, indented, with what the tests
// look at: the node, its relation and index, and the buffers it touched.
func (n planNode) String() string {
	var b strings.Builder
	var write func(n planNode, depth int)
	write = func(n planNode, depth int) {
		b.WriteString(strings.Repeat("  ", depth))
		for _, k := range []string{"Parent Relationship", "Subplan Name", "Node Type", "Relation Name", "Index Name", "Index Cond", "Filter", "One-Time Filter"} {
			if v, ok := n[k]; ok {
				fmt.Fprintf(&b, "%v; ", v)
			}
		}
		fmt.Fprintf(&b, "rows=%v removed=%v buffers=%v\n", n["Actual Rows"], n["Rows Removed by Filter"], n["Shared Hit Blocks"])
		for _, k := range n.children() {
			write(k, depth+1)
		}
	}
	write(n, 0)
	return b.String()
}

// explainClaim runs claimSQL under EXPLAIN (ANALYZE, BUFFERS) in a
// transaction with the settings of a claim's, which it rolls back, and
// returns the plan and the buffers the statement touched (shared hits and
// reads, its CTEs included; planning excluded).
func explainClaim(t *testing.T, c *pgx.Conn) (planNode, int) {
	t.Helper()
	return explainClaimTx(t, c, postgres.ClaimSQL, "00000000-0000-4000-8000-000000000000", int64(1000))
}

// explainClaimTx is explainClaim for sql, a statement of a claim's
// transaction, with args.
func explainClaimTx(t *testing.T, c *pgx.Conn, sql string, args ...any) (planNode, int) {
	t.Helper()
	ctx := context.Background()
	tx, err := c.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, postgres.ClaimSettingsSQL)
	require.NoError(t, err)
	var out []struct {
		Plan planNode `json:"Plan"`
	}
	require.NoError(t, tx.QueryRow(ctx, `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `+sql, args...).Scan(&out))
	require.Len(t, out, 1)
	p := out[0].Plan
	hit, _ := p["Shared Hit Blocks"].(float64)
	read, _ := p["Shared Read Blocks"].(float64)
	return p, int(hit + read)
}

// branchScans lists the scans of ff_executions the CTE named cte runs for
// its rows ("Index Scan using <index>", "Seq Scan", ...), leaving out
// those of its init plans (the gates).
func branchScans(root planNode, cte string) []string {
	return cteScans(root, cte, false)
}

// gateIndexes lists the indexes the init plans (the gate) of the CTE named
// cte read ff_executions through ("" for a scan without index).
func gateIndexes(root planNode, cte string) []string {
	var out []string
	for _, s := range cteScans(root, cte, true) {
		_, index, _ := strings.Cut(s, " using ")
		out = append(out, index)
	}
	return out
}

// cteScans lists the scans of ff_executions of the CTE named cte: those
// for its rows, or (gates) those of its init plans.
func cteScans(root planNode, cte string, gates bool) []string {
	var find func(n planNode) planNode
	find = func(n planNode) planNode {
		if n["Subplan Name"] == cte {
			return n
		}
		for _, k := range n.children() {
			if f := find(k); f != nil {
				return f
			}
		}
		return nil
	}
	var scans []string
	var walk func(n planNode, inGate bool)
	walk = func(n planNode, inGate bool) {
		if n["Relation Name"] == "ff_executions" && inGate == gates {
			s := fmt.Sprint(n["Node Type"])
			if idx, ok := n["Index Name"]; ok {
				s += " using " + fmt.Sprint(idx)
			}
			scans = append(scans, s)
		}
		for _, k := range n.children() {
			sub := k["Parent Relationship"] == "InitPlan" || k["Parent Relationship"] == "SubPlan"
			walk(k, inGate || sub)
		}
	}
	if n := find(root); n != nil {
		walk(n, false)
	}
	return scans
}
