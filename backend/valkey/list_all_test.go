package valkey

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// writeSuspended writes suspended executions ids as suspend would, each at
// suspended_at_ms at[i] (the server's clock otherwise), with tags[i], in
// one pipeline of suspend_write calls.
func writeSuspended(t *testing.T, b *Backend, ids []string, at []int64, tags [][]string) {
	t.Helper()
	require.NoError(t, b.loadEverywhere(bg, scriptSuspendWrite))
	current := driver.KidRecord{Kid: "kid-a", Secret: secret(1)}
	pipe := b.client.Pipeline()
	cmds := make([]*redis.Cmd, len(ids))
	for i, id := range ids {
		args := contracts.SuspendArgs{ExecutionID: id, Condition: contracts.ConditionAny,
			Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, Tags: tags[i]}
		pl := suspendPlan{args: args, now: at[i], ver: "-", found: map[string]*driver.PendingWaitpoint{}}
		_, argv, err := pl.write(current)
		require.NoError(t, err)
		p := driver.PartitionOf(id, b.parts)
		cmds[i] = scriptSuspendWrite.EvalSha(bg, pipe, b.scriptKeys(p), b.scriptArgs(p, argv)...)
	}
	_, _ = pipe.Exec(bg)
	for _, c := range cmds {
		v, err := c.Slice()
		require.NoError(t, err)
		require.Equal(t, "ok", str(v, 0))
	}
}

// standalone opens a fresh standalone backend with P partitions, seeded,
// with rt counting its round trips when not nil.
func standalone(t *testing.T, partitions int, rt *roundTrips) *Backend {
	t.Helper()
	raw := backendURL(t, servers[0].url(t), partitions, testenv.KeyPrefix(t))
	var b *Backend
	if rt != nil {
		b = openURL(t, raw, rt.attach)
	} else {
		b = openURL(t, raw, nil)
	}
	require.NotEmpty(t, b.hint, "a standalone server")
	mustSeed(t, b, "kid-a", secret(1))
	return b
}

// pageIDs pages list_suspended (limit, tag) to the end with list and
// returns the execution ids listed, in order, checking every page.
func pageIDs(t *testing.T, limit int, tag string, list func(contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error)) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for range 10_000 {
		l, err := list(contracts.ListSuspendedArgs{Limit: limit, Cursor: cursor, Tag: tag})
		require.NoError(t, err)
		require.LessOrEqual(t, len(l.Executions), limit)
		for _, x := range l.Executions {
			if tag != "" {
				require.Contains(t, x.Tags, tag)
			}
			ids = append(ids, x.ExecutionID)
		}
		if l.NextCursor == nil {
			return ids
		}
		require.Len(t, l.Executions, limit, "a page followed by another is full")
		cursor = *l.NextCursor
	}
	t.Fatal("paging does not end")
	return nil
}

// inListOrder sorts ids by their (suspended_at_ms, execution_id in byte
// order), as list_suspended orders them.
func inListOrder(ids []string, at map[string]int64) []string {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(member(at[a], a), member(at[b], b)) })
	return out
}

// On a standalone server a page of list_suspended is one script call
// (list_index, reading the global list indexes), with or without a tag,
// and a page of limit 1,000 one call per 128 rows (listIndexChunk): never
// a pipeline over the partitions, whatever the partition count. The
// per-partition path a store not yet backfilled takes (list_all) is one
// call per 128 rows too (listAllChunk).
func TestListAllRoundTrips(t *testing.T) {
	t.Parallel()
	for _, partitions := range []int{16, 256} {
		t.Run(fmt.Sprintf("P=%d", partitions), func(t *testing.T) {
			t.Parallel()
			rt := newRoundTrips()
			b := standalone(t, partitions, rt)
			require.NoError(t, b.loadEverywhere(bg, scriptListAll))
			require.NoError(t, b.loadEverywhere(bg, scriptListIndex))
			ids := make([]string, 600)
			at := make([]int64, len(ids))
			tags := make([][]string, len(ids))
			now := time.Now().UnixMilli()
			for i := range ids {
				ids[i], at[i] = fmt.Sprintf("rt-%03d", i), now-int64(len(ids)-i)
				if i%2 == 0 {
					tags[i] = []string{"even"}
				}
			}
			writeSuspended(t, b, ids, at, tags)
			for _, c := range []struct {
				limit      int
				tag        string
				rows       int
				calls      int // list_index
				allCalls   int // list_all
				nextCursor bool
			}{
				{100, "", 100, 1, 1, true},
				{100, "even", 100, 1, 1, true},
				{1000, "", 600, 5, 5, false},     // 128 four times, then 88 of 128 asked
				{1000, "even", 300, 3, 3, false}, // 128, 128, then 44
				{127, "", 127, 1, 1, true},
				{255, "", 255, 2, 2, true}, // 128, 128
			} {
				rt.start()
				l, err := b.ListSuspended(bg, contracts.ListSuspendedArgs{Limit: c.limit, Tag: c.tag})
				singles, pipelines, _, piped := rt.stop()
				require.NoError(t, err)
				require.Len(t, l.Executions, c.rows)
				require.Equal(t, c.nextCursor, l.NextCursor != nil)
				require.Equal(t, c.calls, singles, "limit %d tag %q: script calls", c.limit, c.tag)
				require.Zero(t, pipelines, "limit %d tag %q: pipelines", c.limit, c.tag)
				require.Zero(t, piped, "limit %d tag %q: piped commands", c.limit, c.tag)

				rt.start()
				all, err := b.listAll(bg, "", c.limit, c.tag, listAllChunk)
				singles, pipelines, _, _ = rt.stop()
				require.NoError(t, err)
				require.Equal(t, l, all, "limit %d tag %q: list_all pages alike", c.limit, c.tag)
				require.Equal(t, c.allCalls, singles, "limit %d tag %q: list_all calls", c.limit, c.tag)
				require.Zero(t, pipelines)
			}
		})
	}
}

// Given executions spread over the partitions with many in the same
// millisecond, whose execution_ids differ in case, punctuation and length
// (so that their order is byte order, not a collation's), listing them on
// a standalone server (list_index and list_all, in one call or in chunks) pages exactly
// as the per-partition steps a cluster runs do, with and without a tag,
// from every limit tried.
func TestListAllMatchesPartitionSteps(t *testing.T) {
	t.Parallel()
	for _, partitions := range []int{1, 7, 256} {
		t.Run(fmt.Sprintf("P=%d", partitions), func(t *testing.T) {
			t.Parallel()
			b := standalone(t, partitions, nil)
			rng := rand.New(rand.NewPCG(uint64(partitions), 7))
			names := []string{"a", "A", "b", "B", "a-b", "ab", "a.b", "a_b", "a:b", "ab0", "a0", "Z", "z", "-", "_", "0", "9", "a-", "aa", "aB"}
			now := time.Now().UnixMilli() - 1000
			var ids []string
			var at []int64
			var tags [][]string
			times := map[string]int64{}
			for i := range 300 {
				id := names[i%len(names)] + strings.Repeat("x", rng.IntN(3)) + fmt.Sprintf("%c%d", "aAz-._"[rng.IntN(6)], i)
				ids = append(ids, id)
				at = append(at, now+int64(rng.IntN(6))) // about 50 in each millisecond
				times[id] = at[len(at)-1]
				var tg []string
				if rng.IntN(3) == 0 {
					tg = []string{"third"}
				}
				tags = append(tags, tg)
			}
			writeSuspended(t, b, ids, at, tags)
			want := inListOrder(ids, times)
			var wantThird []string
			for _, id := range want {
				if slices.Contains(tags[slices.Index(ids, id)], "third") {
					wantThird = append(wantThird, id)
				}
			}
			steps := func(a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
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
			for _, limit := range []int{2, 7, 101, 1000} {
				for _, chunk := range []int{listAllChunk, 7} {
					all := func(a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
						after := ""
						if a.Cursor != "" {
							c, err := contracts.DecodeCursor(a.Cursor)
							if err != nil {
								return contracts.ListSuspendedResult{}, err
							}
							after = member(c.SuspendedAtMs, c.ExecutionID)
						}
						return b.listAll(bg, after, a.Limit, a.Tag, chunk)
					}
					require.Equal(t, want, pageIDs(t, limit, "", all), "limit %d chunk %d", limit, chunk)
					require.Equal(t, wantThird, pageIDs(t, limit, "third", all), "limit %d chunk %d, tag", limit, chunk)
				}
				for _, chunk := range []int{listIndexChunk, 7} {
					index := func(a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
						after := ""
						if a.Cursor != "" {
							c, err := contracts.DecodeCursor(a.Cursor)
							if err != nil {
								return contracts.ListSuspendedResult{}, err
							}
							after = member(c.SuspendedAtMs, c.ExecutionID)
						}
						l, ok, err := b.listIndex(bg, after, a.Limit, a.Tag, chunk)
						require.True(t, ok || err != nil, "the global list indexes are complete")
						return l, err
					}
					require.Equal(t, want, pageIDs(t, limit, "", index), "limit %d index chunk %d", limit, chunk)
					require.Equal(t, wantThird, pageIDs(t, limit, "third", index), "limit %d index chunk %d, tag", limit, chunk)
				}
				require.Equal(t, want, pageIDs(t, limit, "", steps), "limit %d, per partition", limit)
				require.Equal(t, wantThird, pageIDs(t, limit, "third", steps), "limit %d, per partition, tag", limit)
				require.Equal(t, want, pageIDs(t, limit, "", func(a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
					return b.ListSuspended(bg, a)
				}), "limit %d, ListSuspended", limit)
			}
		})
	}
}

// listAllHook calls after, once, when the first list_all or list_index call of a page
// has answered: what changes then happens between two calls of a page
// read in chunks.
type listAllHook struct {
	armed atomic.Pointer[func()]
}

func (h *listAllHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *listAllHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *listAllHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if args := cmd.Args(); len(args) > 1 && strings.EqualFold(fmt.Sprint(args[0]), "evalsha") && (args[1] == scriptListAll.Hash() || args[1] == scriptListIndex.Hash()) {
			if f := h.armed.Swap(nil); f != nil {
				(*f)()
			}
		}
		return err
	}
}

// A page read in chunks (list_all or list_index calls one after the other): an execution
// that leaves the index between two calls, after the first read it, stays
// on the page (it was suspended when read); one that leaves before the
// call that would read it is not listed and the next one takes its place,
// so the page is still full and next_cursor still says whether more
// follow; paging on visits every execution that stayed suspended exactly
// once, in order, with and without a tag.
func TestListAllChunksReplaceWhatLeft(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ path, tag string }{{"list_all", ""}, {"list_all", "vip"}, {"list_index", ""}, {"list_index", "vip"}} {
		tag := c.tag
		t.Run(c.path+"/tag="+tag, func(t *testing.T) {
			t.Parallel()
			hook := &listAllHook{}
			b := standalone(t, 16, nil)
			b.client.AddHook(hook)
			ids := make([]string, 40)
			at := make([]int64, len(ids))
			tags := make([][]string, len(ids))
			times := map[string]int64{}
			now := time.Now().UnixMilli() - 1000
			for i := range ids {
				ids[i], at[i] = fmt.Sprintf("chunk-%02d", i), now+int64(i)
				times[ids[i]] = at[i]
				tags[i] = []string{"vip"}
			}
			writeSuspended(t, b, ids, at, tags)
			cancel := func(id string) {
				_, err := b.CancelSuspension(bg, contracts.CancelArgs{ExecutionID: id})
				require.NoError(t, err)
			}
			list := func(limit int, cursor string) contracts.ListSuspendedResult {
				after := ""
				if cursor != "" {
					c, err := contracts.DecodeCursor(cursor)
					require.NoError(t, err)
					after = member(c.SuspendedAtMs, c.ExecutionID)
				}
				if c.path == "list_index" {
					l, ok, err := b.listIndex(bg, after, limit, tag, 5)
					require.NoError(t, err)
					require.True(t, ok)
					return l
				}
				l, err := b.listAll(bg, after, limit, tag, 5)
				require.NoError(t, err)
				return l
			}

			// when chunk-02 (read by the first call) and chunk-07 (for the
			// second) leave the index between the first two calls
			f := func() { cancel("chunk-02"); cancel("chunk-07") }
			hook.armed.Store(&f)
			first := list(12, "")

			// then the page holds chunk-02 and twelve rows in all, without chunk-07
			require.Equal(t, []string{"chunk-00", "chunk-01", "chunk-02", "chunk-03", "chunk-04", "chunk-05",
				"chunk-06", "chunk-08", "chunk-09", "chunk-10", "chunk-11", "chunk-12"}, listedIDs(first))
			require.NotNil(t, first.NextCursor)

			// and paging on, with one more leaving between two calls of each
			// page, visits the others that stayed once, in order
			got := listedIDs(first)
			cursor := *first.NextCursor
			left := map[string]bool{"chunk-02": true, "chunk-07": true}
			for next := 20; ; next += 9 {
				if next < len(ids) {
					id := ids[next]
					left[id] = true
					f := func() { cancel(id) }
					hook.armed.Store(&f)
				}
				l := list(7, cursor)
				got = append(got, listedIDs(l)...)
				if l.NextCursor == nil {
					break
				}
				require.Len(t, l.Executions, 7)
				cursor = *l.NextCursor
			}
			hook.armed.Store(nil)
			var stayed []string
			for _, id := range ids {
				if !left[id] {
					stayed = append(stayed, id)
				}
			}
			for _, id := range stayed {
				require.Equal(t, 1, count(got, id), "%s listed once", id)
			}
			require.Equal(t, inListOrder(got, times), got, "in order")
			for _, id := range got {
				require.True(t, !left[id] || id == "chunk-02", "%s left before it was read", id)
			}
		})
	}
}

// count returns how many times s occurs in xs.
func count(xs []string, s string) int {
	n := 0
	for _, x := range xs {
		if x == s {
			n++
		}
	}
	return n
}

// A page checks the partitions as list_peek and list_rows did on their
// own. list_all (a store not yet backfilled): a store marker gone (of any
// partition) answers store_reset naming the partition. list_index: partition
// 0's marker missing or changed, or the marker of a partition holding a row
// of the page missing, answers store_reset naming the partition (a
// standalone server loses every partition at once, so partition 0's stands
// for those holding no row). Both: a partition holding a row of the page,
// or partition 0, that records another partition count answers
// partition_count_mismatch.
func TestListAllChecksEveryPartition(t *testing.T) {
	t.Parallel()
	tagged := func(t *testing.T, b *Backend, id string) {
		t.Helper()
		_, err := b.Suspend(bg, contracts.SuspendArgs{ExecutionID: id, Condition: contracts.ConditionAny,
			Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, Tags: []string{"x"}})
		require.NoError(t, err)
	}
	lists := func(b *Backend) map[string]func(tag string) error {
		return map[string]func(tag string) error{
			"list_index": func(tag string) error {
				_, ok, err := b.listIndex(bg, "", 10, tag, listIndexChunk)
				if err == nil && !ok {
					return fmt.Errorf("list_index: incomplete")
				}
				return err
			},
			"ListSuspended": func(tag string) error {
				_, err := b.ListSuspended(bg, contracts.ListSuspendedArgs{Limit: 10, Tag: tag})
				return err
			},
			"list_all": func(tag string) error {
				_, err := b.listAll(bg, "", 10, tag, listAllChunk)
				return err
			},
		}
	}
	t.Run("store marker of a listed partition gone", func(t *testing.T) {
		t.Parallel()
		b := standalone(t, 16, nil)
		tagged(t, b, scopeOn(3, 16, "marked"))
		require.NoError(t, b.client.Del(bg, b.markerKey(3)).Err())
		for _, list := range lists(b) {
			requireStoreReset(t, list(""), 3, "is gone")
			requireStoreReset(t, list("x"), 3, "is gone")
		}
	})
	t.Run("store marker of partition 0 gone or changed", func(t *testing.T) {
		t.Parallel()
		b := standalone(t, 16, nil)
		tagged(t, b, scopeOn(3, 16, "marked"))
		require.NoError(t, b.client.Set(bg, b.markerKey(0), "another", 0).Err())
		for _, list := range lists(b) {
			requireStoreReset(t, list(""), 0, "changed")
		}
		require.NoError(t, b.client.Del(bg, b.markerKey(0)).Err())
		for _, list := range lists(b) {
			requireStoreReset(t, list("x"), 0, "is gone")
		}
	})
	t.Run("every key lost", func(t *testing.T) {
		t.Parallel()
		b := standalone(t, 16, nil)
		tagged(t, b, scopeOn(3, 16, "marked"))
		require.NoError(t, b.client.Del(bg, storeKeys(t, b)...).Err())
		for _, list := range lists(b) {
			requireStoreReset(t, list(""), 0, "is gone")
		}
	})
	t.Run("store marker of a partition without rows gone, per partition", func(t *testing.T) {
		t.Parallel()
		b := standalone(t, 16, nil)
		tagged(t, b, scopeOn(3, 16, "marked"))
		require.NoError(t, b.client.Del(bg, b.markerKey(9)).Err())
		requireStoreReset(t, lists(b)["list_all"](""), 9, "is gone")
		requireStoreReset(t, lists(b)["list_all"]("x"), 9, "is gone")
	})
	t.Run("partition count", func(t *testing.T) {
		t.Parallel()
		for _, p := range []int{0, 11} {
			b := standalone(t, 16, nil)
			tagged(t, b, scopeOn(11, 16, "counted"))
			require.NoError(t, b.client.HSet(bg, b.keystoreKey(p), "partitions", "32").Err())
			for name, list := range lists(b) {
				require.ErrorIs(t, list(""), contracts.ErrPartitionCountMismatch, "%s, partition %d", name, p)
				require.ErrorIs(t, list("x"), contracts.ErrPartitionCountMismatch, "%s, partition %d, tag", name, p)
			}
		}
	})
}
