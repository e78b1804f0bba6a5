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
	want := limit + 1 // one more than the page: whether another follows
	keys := b.listAllKeys(tag)
	var rows []contracts.SuspendedExecution
	for len(rows) < want {
		n := min(want-len(rows), chunk)
		v, err := b.runListAll(ctx, keys, after, strconv.Itoa(n))
		if err != nil {
			return contracts.ListSuspendedResult{}, err
		}
		found, last, err := parseListAll(v)
		if err != nil {
			return contracts.ListSuspendedResult{}, err
		}
		if len(found) > n || len(found) > 0 && last <= after {
			return contracts.ListSuspendedResult{}, interpretError(errMalformedReply)
		}
		rows = append(rows, found...)
		if len(found) < n {
			break // no more after these
		}
		after = last
	}
	return driver.PageSuspended(rows, limit), nil
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
