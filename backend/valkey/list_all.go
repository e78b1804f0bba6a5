package valkey

import (
	"context"
	"sort"
	"strconv"
	"sync"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// scriptListAll reads a page of list_suspended over every partition in
// one call on a standalone server (lua/list_all.lua), read-only: it is not
// among writeScripts, so it never waits for replicas.
var scriptListAll = newScript("list_all")

// scriptListIndex reads a page of list_suspended from the global list
// indexes on a standalone server (lua/list_index.lua), read-only;
// scriptListFill backfills those indexes from the partitions'
// (lua/list_fill.lua). Neither is among writeScripts: the indexes are
// derived from the partitions' and rebuilt when found incomplete.
var (
	scriptListIndex = newScript("list_index")
	scriptListFill  = newScript("list_fill")
)

// listIndexChunk bounds the rows one list_index call reads (about one
// HMGET a row: some 1-1.5 ms for 128 rows on a busy machine, 3-6 ms for
// 256), so that no call holds the server long: a page of limit 1,000 takes
// eight calls.
const listIndexChunk = 128

// listAllChunk bounds the rows one list_all call reads, so that one call
// holds the server's thread for a few milliseconds at most whatever the
// page's limit (about 2.5 ms for 128 rows at 1M executions on 256
// partitions; a call of 256 rows took 10-15 ms): a page of limit 1,000
// takes eight calls, each after the last member the previous one read.
const listAllChunk = 128

// listAll answers a page of list_suspended on a standalone server: the
// limit+1 first rows after the member after (with tag, only those
// carrying it), in calls of list_all of at most chunk rows each
// (listAllChunk; one call for a page of limit 100). Each call reads its
// rows atomically, so a row it returns is an execution suspended at that
// call, and the next call starts after the last member it read: an
// execution that left the index before the call that would have read it
// is not listed and the next one takes its place, and paging visits every
// execution that stays suspended throughout exactly once, in order, as
// with the per-partition steps (listPartitions).
func (b *Backend) listAll(ctx context.Context, after string, limit int, tag string, chunk int) (contracts.ListSuspendedResult, error) {
	keys := b.listAllKeys(tag)
	l, _, err := listChunks(after, limit, chunk, func(after string, n int) ([]any, error) {
		return b.runListAll(ctx, keys, after, strconv.Itoa(n))
	})
	return l, err
}

// listIndex answers a page of list_suspended on a standalone server from
// the global list indexes (lua/list_index.lua), in calls of at most chunk
// rows (listIndexChunk), with the cursor semantics of listAll. ok is false
// when a call answered that the indexes are not complete (not backfilled
// yet, list_fill.lua): the page must then be read with listAll.
func (b *Backend) listIndex(ctx context.Context, after string, limit int, tag string, chunk int) (contracts.ListSuspendedResult, bool, error) {
	l, incomplete, err := listChunks(after, limit, chunk, func(after string, n int) ([]any, error) {
		return b.run(ctx, scriptListIndex, 0, after, strconv.Itoa(n), tag)
	})
	return l, !incomplete && err == nil, err
}

// listChunks reads the limit+1 first rows after the member after with
// call, which answers up to n rows after a member (a list_all or
// list_index reply), in calls of at most chunk rows. incomplete reports a
// call answering {'incomplete'} (list_index).
func listChunks(after string, limit, chunk int, call func(after string, n int) ([]any, error)) (_ contracts.ListSuspendedResult, incomplete bool, _ error) {
	want := limit + 1 // one more than the page: whether another follows
	var rows []contracts.SuspendedExecution
	for len(rows) < want {
		n := min(want-len(rows), chunk)
		v, err := call(after, n)
		if err != nil {
			return contracts.ListSuspendedResult{}, false, err
		}
		if len(v) == 1 && str(v, 0) == "incomplete" {
			return contracts.ListSuspendedResult{}, true, nil
		}
		found, last, err := parseListAll(v)
		if err != nil {
			return contracts.ListSuspendedResult{}, false, err
		}
		if len(found) > n || len(found) > 0 && last <= after {
			return contracts.ListSuspendedResult{}, false, interpretError(errMalformedReply)
		}
		rows = append(rows, found...)
		if len(found) < n {
			break // no more after these
		}
		after = last
	}
	return driver.PageSuspended(rows, limit), false, nil
}

// listAllKeys returns the KEYS of list_all: partition 0's script keys,
// then each partition's keystore hash, store marker and the index listed
// (idx:suspended, or idx:tag:<tag> with a tag). Those without a tag are
// made once per prefix and partition count (listAllUntagged).
func (b *Backend) listAllKeys(tag string) []string {
	cache := listAllScope{b.prefix, b.parts}
	if tag == "" {
		if k, ok := listAllUntagged.Load(cache); ok {
			return k.([]string)
		}
	}
	index := "idx:suspended"
	if tag != "" {
		index = "idx:tag:" + tag
	}
	keys := make([]string, 0, 3+3*b.parts)
	keys = append(keys, b.scriptKeys(0)...)
	for p := range b.parts {
		keys = append(keys, b.keystoreKey(p), b.markerKey(p), b.key(p, index))
	}
	if tag == "" {
		listAllUntagged.Store(cache, keys)
	}
	return keys
}

// listAllScope names the stores whose list_all KEYS without a tag are
// the same: the keys depend on the prefix and the partition count alone.
type listAllScope struct {
	prefix string
	parts  int
}

// listAllUntagged holds the list_all KEYS without a tag per listAllScope
// (never modified once stored).
var listAllUntagged sync.Map

// runListAll calls list_all with keys (EVALSHA, then EVAL when the server
// does not know it), partition 0's store marker last in ARGV.
func (b *Backend) runListAll(ctx context.Context, keys []string, args ...any) ([]any, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	v, err := scriptListAll.Run(ctx, b.client, keys, b.scriptArgs(0, args)...).Slice()
	if err != nil {
		return nil, interpretError(err)
	}
	return v, nil
}

// parseListAll decodes a list_all reply (rows of listRowLen values, the
// member first) into rows in member order, and returns the last member.
func parseListAll(v []any) ([]contracts.SuspendedExecution, string, error) {
	if len(v)%listRowLen != 0 {
		return nil, "", interpretError(errMalformedReply)
	}
	type row struct {
		member string
		x      contracts.SuspendedExecution
	}
	rows := make([]row, 0, len(v)/listRowLen)
	for i := 0; i < len(v); i += listRowLen {
		m := str(v, i)
		if len(m) < 22 || m[20] != ':' {
			return nil, "", interpretError(errMalformedReply)
		}
		x, err := decodeListRow(v, i, m[21:])
		if err != nil {
			return nil, "", err
		}
		rows = append(rows, row{m, x})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].member < rows[j].member })
	out := make([]contracts.SuspendedExecution, len(rows))
	for i, r := range rows {
		out[i] = r.x
	}
	last := ""
	if len(rows) > 0 {
		last = rows[len(rows)-1].member
	}
	return out, last, nil
}

// listFillChunk bounds the members one list_fill call copies (with their
// tags: about 1.5 ms for 200 on a busy machine), and listFillWidth the calls
// sent in one pipeline, so that the server interleaves other clients'
// commands with a backfill's every few milliseconds.
const (
	listFillChunk = 200
	listFillWidth = 8
)

// fillListsLater starts fillLists in the background unless one runs
// already. It stops when the backend closes; a backfill that failed is
// started again by the next list that finds the indexes incomplete.
func (b *Backend) fillListsLater() {
	if !b.filling.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer b.filling.Store(false)
		_ = b.fillLists(b.life, listFillChunk)
	}()
}

// fillLists backfills the global list indexes of a standalone server from
// every partition's indexes, chunk members per list_fill call, then marks
// them complete unless another backfill began since or the list keys were
// deleted meanwhile (see list_fill.lua, also for why writers may run
// meanwhile). Running it again, or in several processes at once, changes
// nothing more.
func (b *Backend) fillLists(ctx context.Context, chunk int) error {
	id := driver.NewID()
	v, err := b.run(ctx, scriptListFill, 0, id, "0", "begin")
	if err != nil || str(v, 0) == "complete" {
		return err
	}
	next := map[int]string{} // where each partition's walk stands
	left := b.allPartitions()
	for len(left) > 0 {
		wave := left[:min(len(left), listFillWidth)]
		replies, err := b.runAll(ctx, scriptListFill, wave, func(p int) []any {
			return []any{next[p], strconv.Itoa(chunk), ""}
		})
		if err != nil {
			return err
		}
		var more []int
		for i, r := range replies {
			if r.err != nil {
				return r.err
			}
			if last := str(r.values, 0); last != "" {
				next[wave[i]] = last
				more = append(more, wave[i])
			}
		}
		left = append(more, left[len(wave):]...)
	}
	_, err = b.run(ctx, scriptListFill, 0, id, "0", "complete")
	return err
}

// checkLists asks, when a standalone backend opens, whether the global
// list indexes are complete (list_fill 'open', which marks a new store's
// complete at once), and backfills them in the background when not.
func (b *Backend) checkLists(ctx context.Context) error {
	v, err := b.run(ctx, scriptListFill, 0, "", "0", "open")
	if err != nil {
		return err
	}
	if str(v, 0) == "incomplete" {
		b.fillListsLater()
	}
	return nil
}
