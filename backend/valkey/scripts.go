package valkey

import (
	"context"
	"embed"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// newScript returns the embedded script lua/<name>.lua with the shared
// prelude (lua/prelude.lua) and then the libraries lua/<lib>.lua in front
// of it.
func newScript(name string, libs ...string) *redis.Script {
	src := mustRead("lua/prelude.lua")
	for _, lib := range libs {
		src += "\n" + mustRead("lua/"+lib+".lua")
	}
	return withPrelude(src + "\n" + mustRead("lua/"+name+".lua"))
}

// allScripts lists every script of the driver, in the order they were
// made (tests call each of them).
var allScripts []*redis.Script

// withPrelude makes a script of src, which starts with the prelude, and
// lists it in allScripts.
func withPrelude(src string) *redis.Script {
	s := redis.NewScript(src)
	allScripts = append(allScripts, s)
	return s
}

// The scripts. Each runs atomically on the one slot of its partition; what
// each guarantees is written at the top of its file.
var (
	scriptKeysLoad     = newScript("keys_load")
	scriptKeysKid      = newScript("keys_kid")
	scriptSeedInstall  = newScript("seed_install")
	scriptRotate       = newScript("rotate")
	scriptSuspendRead  = newScript("suspend_read")
	scriptSuspendWrite = newScript("suspend_write")
	scriptDeliver      = newScript("deliver")
	scriptDeliverRead  = newScript("deliver_read")
	scriptDeliverWrite = newScript("deliver_write")
	scriptObserve      = newScript("observe")
	scriptListPeek     = newScript("list_peek")
	scriptListRows     = newScript("list_rows")
	scriptClaimPeek    = newScript("claim_peek")
	scriptClaim        = newScript("claim", "claim_lib")
	scriptComplete     = newScript("complete")
	scriptRewrap       = newScript("rewrap")
	scriptRevoke       = newScript("revoke")
	scriptClaimHinted  = newScript("claim_hinted", "claim_lib")
	// Version 2 of the waitpoint lifecycle (docs/spec.md §8).
	scriptCreateRead   = newScript("create_read")
	scriptCreateWrite  = newScript("create_write")
	scriptGetWaitpoint = newScript("get_waitpoint", "waitpoint_lib")
	scriptExtend       = newScript("extend")
	scriptRelease      = newScript("release")
	scriptCancel       = newScript("cancel")
	// Operators' views (docs/spec.md §8.9), read-only.
	scriptDescribe = newScript("describe", "waitpoint_lib")
	scriptCount    = newScript("count")
)

// mustRead returns an embedded file.
func mustRead(name string) string {
	b, err := luaFiles.ReadFile(name)
	if err != nil {
		panic("valkey: missing " + name)
	}
	return string(b)
}

// key returns the key <prefix>ff:{p:N}:<suffix>. The hash tag {p:N} puts
// every key of partition N in one cluster slot.
func (b *Backend) key(partition int, suffix string) string {
	return b.prefix + "ff:{p:" + strconv.Itoa(partition) + "}:" + suffix
}

// keystoreKey is the partition's keystore hash, KEYS[1] of every script.
func (b *Backend) keystoreKey(partition int) string { return b.key(partition, "keys") }

// scriptKeys are the KEYS of a script on the partition: its keystore hash,
// its store marker (store.go) and, on a standalone server, the claim hint
// (see ff_hint in prelude.lua). The slice is shared: never modify it.
func (b *Backend) scriptKeys(partition int) []string { return b.keys[partition] }

// scriptArgs are the ARGV of a script on the partition: P, then args, then
// the value of the partition's store marker this backend expects, which
// the prelude compares (store.go).
func (b *Backend) scriptArgs(partition int, args []any) []any {
	argv := make([]any, 0, len(args)+2)
	argv = append(argv, strconv.Itoa(b.parts))
	argv = append(argv, args...)
	return append(argv, (*b.markers.Load())[partition])
}

// run calls a script on one partition: EVALSHA, falling back to EVAL (which
// caches it) when the server does not know it. args follow ARGV[1] = P;
// the store marker's value follows them (scriptArgs). With wait_replicas, a
// write script waits for the replicas (replication.go).
func (b *Backend) run(ctx context.Context, s *redis.Script, partition int, args ...any) ([]any, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	argv := b.scriptArgs(partition, args)
	if b.waits(s) {
		return b.runWaiting(ctx, s, b.scriptKeys(partition), partition, argv)
	}
	res, err := s.Run(ctx, b.client, b.scriptKeys(partition), argv...).Slice()
	if err != nil {
		return nil, interpretError(err)
	}
	return res, nil
}

// partitionReply is one partition's answer in a fan-out.
type partitionReply struct {
	values []any
	err    error // interpreted
}

// runAll calls a script once per partition in one pipeline, which costs
// one round trip per node (go-redis groups a cluster pipeline by node).
// argsFor gives each partition's arguments after ARGV[1] = P (and before
// the store marker's value, scriptArgs). If a node
// does not know the script (NOSCRIPT: a fresh or flushed server), the script
// is loaded on every master and only the calls that did not run are sent
// again. A failure of one partition is reported in its reply. With
// wait_replicas, the nodes of a write script's partitions then wait for
// their replicas (confirm), and a partition whose node did not confirm
// reports that.
func (b *Backend) runAll(ctx context.Context, s *redis.Script, partitions []int, argsFor func(p int) []any) ([]partitionReply, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	cmds := b.pipelineEvalSha(ctx, s, partitions, argsFor)
	var again []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		if err := b.loadEverywhere(ctx, s); err != nil {
			return nil, interpretError(err)
		}
		retry := make([]int, len(again))
		for i, idx := range again {
			retry[i] = partitions[idx]
		}
		for i, c := range b.pipelineEvalSha(ctx, s, retry, argsFor) {
			cmds[again[i]] = c
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, interpretError(err)
	}
	for _, c := range cmds {
		if errors.Is(c.Err(), redis.ErrClosed) {
			return nil, interpretError(c.Err()) // the backend, not a partition, failed
		}
	}
	out := make([]partitionReply, len(cmds))
	for i, c := range cmds {
		v, err := c.Slice()
		out[i] = partitionReply{values: v, err: interpretError(err)}
	}
	if b.waits(s) {
		var ok []int // indexes of the partitions whose script acknowledged a write
		for i, r := range out {
			if r.err == nil && acknowledges(r.values) {
				ok = append(ok, i)
			}
		}
		written := make([]int, len(ok))
		for j, i := range ok {
			written[j] = partitions[i]
		}
		for j, err := range b.confirm(ctx, written) {
			if err != nil {
				out[ok[j]] = partitionReply{err: err}
			}
		}
	}
	return out, nil
}

// pipelineEvalSha sends one EVALSHA per partition in one pipeline.
func (b *Backend) pipelineEvalSha(ctx context.Context, s *redis.Script, partitions []int, argsFor func(p int) []any) []*redis.Cmd {
	pipe := b.client.Pipeline()
	cmds := make([]*redis.Cmd, len(partitions))
	for i, p := range partitions {
		cmds[i] = s.EvalSha(ctx, pipe, b.scriptKeys(p), b.scriptArgs(p, argsFor(p))...)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command
	return cmds
}

// loadEverywhere loads a script on every master (on a cluster) or on the
// server, so that a pipeline of EVALSHA finds it wherever it lands.
func (b *Backend) loadEverywhere(ctx context.Context, s *redis.Script) error {
	if cc, ok := b.client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return s.Load(ctx, c).Err()
		})
	}
	return s.Load(ctx, b.client).Err()
}

// allPartitions returns 0..P-1.
func (b *Backend) allPartitions() []int {
	ps := make([]int, b.parts)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// errMalformedReply reports a script reply this driver cannot read: a bug
// or a store written by something else.
var errMalformedReply = errors.New("valkey: malformed script reply")

// str returns v[i] as a string ("" when missing or nil).
func str(v []any, i int) string {
	if i >= len(v) {
		return ""
	}
	switch x := v[i].(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

// num returns v[i] as an int64.
func num(v []any, i int) (int64, error) {
	s := str(v, i)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errMalformedReply
	}
	return n, nil
}

// formatInt formats a decimal for ARGV.
func formatInt(n int64) string { return strconv.FormatInt(n, 10) }
