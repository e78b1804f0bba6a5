package valkey

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// globalEntries returns the entries of the global list index (tag "":
// <prefix>ff:list, else <prefix>ff:list:tag:<tag>), sorted.
func globalEntries(t *testing.T, b *Backend, tag string) []string {
	t.Helper()
	key := b.prefix + "ff:list"
	if tag != "" {
		key += ":tag:" + tag
	}
	got, err := b.client.ZRange(bg, key, 0, -1).Result()
	require.NoError(t, err)
	slices.Sort(got)
	return got
}

// partitionEntries returns "<member> <partition>" for every member of
// every partition's suspended index (or index of tag), sorted.
func partitionEntries(t *testing.T, b *Backend, tag string) []string {
	t.Helper()
	index := "idx:suspended"
	if tag != "" {
		index = "idx:tag:" + tag
	}
	out := []string{}
	for p := range b.parts {
		got, err := b.client.ZRange(bg, b.key(p, index), 0, -1).Result()
		require.NoError(t, err)
		for _, m := range got {
			out = append(out, m+" "+strconv.Itoa(p))
		}
	}
	slices.Sort(out)
	return out
}

// requireGlobalEqualsPartitions checks that the global list indexes (of
// no tag and of each of tags) hold exactly the partitions' members.
func requireGlobalEqualsPartitions(t *testing.T, b *Backend, what string, tags ...string) {
	t.Helper()
	for _, tag := range append([]string{""}, tags...) {
		want := partitionEntries(t, b, tag)
		t.Logf("%s: tag %q: %d entries", what, tag, len(want))
		require.Equal(t, want, globalEntries(t, b, tag), "%s: tag %q", what, tag)
	}
}

// listsComplete reports whether <prefix>ff:list-complete is set.
func listsComplete(t *testing.T, b *Backend) bool {
	t.Helper()
	n, err := b.client.Exists(bg, b.prefix+"ff:list-complete").Result()
	require.NoError(t, err)
	return n == 1
}

// pagedBy lists with ListSuspended, from a cursor, as pageIDs wants.
func pagedBy(b *Backend) func(contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	return func(a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
		return b.ListSuspended(bg, a)
	}
}

// pagedByPartitions lists with the per-partition steps a cluster runs.
func pagedByPartitions(b *Backend) func(contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	return func(a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
		after := ""
		if a.Cursor != "" {
			c, err := contracts.DecodeCursor(a.Cursor)
			if err != nil {
				return contracts.ListSuspendedResult{}, err
			}
			after = member(c.SuspendedAtMs, c.ExecutionID)
		}
		return b.listPartitions(bg, after, a)
	}
}

// A page of list_suspended on a standalone server costs the server about
// the same commands whatever the partition count: list_index reads the
// page's entries of the global index and, per row, its hash (and, per
// partition holding rows, its marker and partition count), never every
// partition's index. Counted with INFO commandstats on a private server,
// where nothing else runs: at most 4 commands a row (plus a few) for a
// page of 10, with 16, 256 and 1,024 partitions, with and without a tag.
func TestListIndexCostIsIndependentOfPartitions(t *testing.T) {
	t.Parallel()
	srv := startPrivateServer(t, false)
	admin := srv.client()
	t.Cleanup(func() { _ = admin.Close() })
	const limit = 10
	for _, partitions := range []int{16, 256, 1024} {
		b := openURL(t, backendURL(t, srv.url(""), partitions, testenv.KeyPrefix(t)+strconv.Itoa(partitions)), nil)
		mustSeed(t, b, "kid-a", secret(1))
		ids := make([]string, 200)
		at := make([]int64, len(ids))
		tags := make([][]string, len(ids))
		now := time.Now().UnixMilli()
		for i := range ids {
			ids[i], at[i] = fmt.Sprintf("cost-%03d", i), now-int64(len(ids)-i)
			if i%2 == 0 {
				tags[i] = []string{"even"}
			}
		}
		writeSuspended(t, b, ids, at, tags)
		require.NoError(t, b.loadEverywhere(bg, scriptListIndex))
		for _, tag := range []string{"", "even"} {
			require.NoError(t, admin.ConfigResetStat(bg).Err())
			l, err := b.ListSuspended(bg, contracts.ListSuspendedArgs{Limit: limit, Tag: tag})
			require.NoError(t, err)
			require.Len(t, l.Executions, limit)
			calls := commandCalls(t, admin)
			require.Equal(t, 1, calls["evalsha"], "P=%d tag %q: one script call: %v", partitions, tag, calls)
			total := 0
			for name, n := range calls {
				if name != "evalsha" && name != "config|resetstat" && name != "config" && name != "info" {
					total += n
				}
			}
			t.Logf("P=%d tag %q: %d commands in the script: %v", partitions, tag, total, calls)
			require.LessOrEqual(t, total, 4*(limit+1)+6, "P=%d tag %q: commands of one page: %v", partitions, tag, calls)
		}
	}
}

// commandCalls reads INFO commandstats: calls per command name.
func commandCalls(t *testing.T, c *redis.Client) map[string]int {
	t.Helper()
	info, err := c.Info(bg, "commandstats").Result()
	require.NoError(t, err)
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_")
		if !ok {
			continue
		}
		name, stats, _ := strings.Cut(rest, ":")
		for _, kv := range strings.Split(stats, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, err := strconv.Atoi(v)
				require.NoError(t, err)
				out[name] = n
			}
		}
	}
	return out
}

// After a random mix of suspends (with and without tags and timeouts),
// resuming deliveries, cancels, claims (of resumed and of timed-out
// executions, some claims re-suspending under their lease) and completes,
// the global list indexes hold exactly the members of the partitions'
// suspended and tag indexes, and list_suspended (list_index) pages as the
// per-partition steps do.
func TestListIndexHoldsTheSuspendedSet(t *testing.T) {
	t.Parallel()
	for _, partitions := range []int{1, 7, 64} {
		t.Run(fmt.Sprintf("P=%d", partitions), func(t *testing.T) {
			t.Parallel()
			b := standalone(t, partitions, nil)
			require.True(t, listsComplete(t, b), "a new store's lists are complete at Open")
			rng := rand.New(rand.NewPCG(uint64(partitions), 11))
			tagSets := [][]string{nil, {"a"}, {"b"}, {"a", "b"}}
			suspended := map[string]contracts.SuspendOutcome{}
			var claimed []contracts.ClaimOutcome
			suspendOne := func(id string, lease *string) {
				a := contracts.SuspendArgs{ExecutionID: id, Condition: contracts.ConditionAny,
					Waitpoints: []contracts.WaitpointSpec{{Key: "k"}}, Tags: tagSets[rng.IntN(len(tagSets))], LeaseID: lease}
				if rng.IntN(4) == 0 {
					ms := int64(1 + rng.IntN(20))
					a.TimeoutMs = &ms
				}
				s, err := b.Suspend(bg, a)
				require.NoError(t, err)
				if s.Outcome == contracts.OutcomeSuspended {
					suspended[id] = s
				}
			}
			pick := func() (string, bool) {
				if len(suspended) == 0 {
					return "", false
				}
				keys := make([]string, 0, len(suspended))
				for k := range suspended {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				return keys[rng.IntN(len(keys))], true
			}
			for i := range 400 {
				switch r := rng.IntN(10); {
				case r < 4:
					suspendOne(fmt.Sprintf("mix-%d", i), nil)
				case r < 6:
					if id, ok := pick(); ok {
						_, _ = b.DeliverSignal(bg, tokenOf(suspended[id], "k")) // may have timed out
						delete(suspended, id)
					}
				case r < 7:
					if id, ok := pick(); ok {
						_, err := b.CancelSuspension(bg, contracts.CancelArgs{ExecutionID: id})
						require.NoError(t, err)
						delete(suspended, id)
					}
				case r < 9:
					c, err := b.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
					require.NoError(t, err)
					if c.Outcome == contracts.OutcomeClaimed {
						delete(suspended, c.ExecutionID) // a timed-out one leaves the index
						if rng.IntN(2) == 0 {
							suspendOne(c.ExecutionID, &c.LeaseID)
						} else {
							claimed = append(claimed, c)
						}
					}
				default:
					if len(claimed) > 0 {
						c := claimed[0]
						claimed = claimed[1:]
						_, _ = b.CompleteExecution(bg, contracts.CompleteArgs{ExecutionID: c.ExecutionID, LeaseID: c.LeaseID})
					}
				}
				if i%100 == 99 {
					requireGlobalEqualsPartitions(t, b, fmt.Sprintf("after %d operations", i+1), "a", "b")
				}
			}
			time.Sleep(25 * time.Millisecond) // every timeout passes
			for {
				c, err := b.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
				require.NoError(t, err)
				if c.Outcome != contracts.OutcomeClaimed {
					break
				}
			}
			requireGlobalEqualsPartitions(t, b, "at the end", "a", "b")
			for _, tag := range []string{"", "a", "b"} {
				require.Equal(t, pageIDs(t, 9, tag, pagedByPartitions(b)), pageIDs(t, 9, tag, pagedBy(b)), "tag %q", tag)
			}
		})
	}
}

// A store written before the global list indexes (simulated: written by
// this version, then the indexes and their completeness mark deleted)
// lists correctly with list_all until the backfill completes: before it,
// while it is partial (with writers changing the store between chunks),
// and after it; the backfill leaves the indexes equal to the union of the
// partitions' indexes and marks them complete, after which list_index
// serves pages. A backend opening such a store backfills it in the
// background. Entries a process of the previous version leaves behind
// (it cancels without keeping the global indexes) are not listed.
func TestListIndexBackfill(t *testing.T) {
	t.Parallel()
	b := standalone(t, 16, nil)
	n := 300
	ids := make([]string, n)
	at := make([]int64, n)
	tags := make([][]string, n)
	now := time.Now().UnixMilli() - 10_000
	for i := range ids {
		ids[i], at[i] = fmt.Sprintf("fill-%03d", i), now+int64(i%50)
		if i%3 == 0 {
			tags[i] = []string{"t3"}
		}
		if i%5 == 0 {
			tags[i] = append(tags[i], "t5")
		}
	}
	writeSuspended(t, b, ids, at, tags)
	forget := func() {
		keys := []string{b.prefix + "ff:list-complete", b.prefix + "ff:list-fill", b.prefix + "ff:list", b.prefix + "ff:list:tag:t3", b.prefix + "ff:list:tag:t5", b.prefix + "ff:list:tag:t7"}
		require.NoError(t, b.client.Del(bg, keys...).Err())
	}
	forget()
	// No fill in the background: this test runs each step itself.
	require.True(t, b.filling.CompareAndSwap(false, true))
	same := func(what string) {
		t.Helper()
		for _, tag := range []string{"", "t3", "t5", "t7"} {
			for _, limit := range []int{7, 100} {
				require.Equal(t, pageIDs(t, limit, tag, pagedByPartitions(b)), pageIDs(t, limit, tag, pagedBy(b)), "%s: tag %q limit %d", what, tag, limit)
			}
		}
	}
	requireIncomplete := func() {
		t.Helper()
		_, ok, err := b.listIndex(bg, "", 10, "", listIndexChunk)
		require.NoError(t, err)
		require.False(t, ok, "list_index answers incomplete")
	}

	// before: nothing in the global indexes
	requireIncomplete()
	same("before the backfill")

	// during: a few chunks of some partitions copied, then writers of this
	// version suspend (with a new tag), resume, cancel and re-suspend
	for p := range 8 {
		after := ""
		for range 2 {
			v, err := b.run(bg, scriptListFill, p, after, "3", "")
			require.NoError(t, err)
			after = str(v, 0)
			if after == "" {
				break
			}
		}
	}
	require.NotEmpty(t, globalEntries(t, b, ""))
	require.NotEqual(t, partitionEntries(t, b, ""), globalEntries(t, b, ""))
	for i := 0; i < n; i += 7 {
		_, err := b.CancelSuspension(bg, contracts.CancelArgs{ExecutionID: ids[i]})
		require.NoError(t, err)
	}
	var more []string
	var moreAt []int64
	var moreTags [][]string
	for i := range 40 {
		more = append(more, fmt.Sprintf("fill-new-%02d", i))
		moreAt = append(moreAt, now+int64(i))
		moreTags = append(moreTags, []string{"t7", "t3"})
	}
	writeSuspended(t, b, more, moreAt, moreTags)
	requireIncomplete()
	same("during the backfill")

	// after
	require.NoError(t, b.fillLists(bg, 7))
	require.True(t, listsComplete(t, b))
	requireGlobalEqualsPartitions(t, b, "after the backfill", "t3", "t5", "t7")
	_, ok, err := b.listIndex(bg, "", 10, "", listIndexChunk)
	require.NoError(t, err)
	require.True(t, ok, "list_index serves pages")
	same("after the backfill")
	b.filling.Store(false)

	// a backfill again changes nothing
	require.NoError(t, b.fillLists(bg, listFillChunk))
	requireGlobalEqualsPartitions(t, b, "after a second backfill", "t3", "t5", "t7")

	// a backfill during which the list keys are deleted (an operator's
	// rebuild) or another backfill begins does not mark them complete
	for _, meanwhile := range []func(){
		forget,
		func() { _, err := b.run(bg, scriptListFill, 0, "another", "0", "begin"); require.NoError(t, err) },
	} {
		forget()
		v, err := b.run(bg, scriptListFill, 0, "this", "0", "begin")
		require.NoError(t, err)
		require.Equal(t, "", str(v, 0))
		_, err = b.run(bg, scriptListFill, 3, "", "1000", "")
		require.NoError(t, err)
		meanwhile()
		v, err = b.run(bg, scriptListFill, 0, "this", "0", "complete")
		require.NoError(t, err)
		require.Equal(t, "superseded", str(v, 0))
		require.False(t, listsComplete(t, b))
	}

	// a backend opening a store without the indexes backfills it
	forget()
	other := openURL(t, backendURL(t, servers[0].url(t), 16, b.prefix), nil)
	require.Eventually(t, func() bool { return listsComplete(t, other) }, 10*time.Second, 10*time.Millisecond)
	requireGlobalEqualsPartitions(t, b, "after a backfill at Open", "t3", "t5", "t7")
	same("after a backfill at Open")

	// executions a process of the previous version cancels stay in the
	// global indexes, which it does not keep, but are not listed: pages
	// stay full and in order
	for _, id := range []string{ids[1], ids[3], ids[5], ids[6], more[0]} {
		_, err := b.run(bg, layout1Script(t, "cancel"), driver.PartitionOf(id, b.parts), id, driver.NewID())
		require.NoError(t, err)
	}
	require.Len(t, globalEntries(t, b, ""), len(partitionEntries(t, b, ""))+5)
	same("after the previous version cancelled some")
}
