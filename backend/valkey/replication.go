package valkey

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Waiting for replicas (wait_replicas=N, docs/spec.md §6.1).
//
// WAIT N T blocks the connection it is sent on until N replicas confirmed
// the replication offset of that connection's last write, or T passed, and
// answers how many did. So every call of a write script is sent as one
// pipeline on the node that serves its partition (the standalone server,
// or the slot's master: ClusterClient.MasterForKey), one round trip:
//
//	EVALSHA <script> ...; SET <prefix>ff:{p:N}:wait 1; WAIT N T
//
// The SET is the wait mark: a script that answers without writing (an
// operation record re-sent, an idempotent replay, a duplicate delivery)
// moves no offset, and WAIT would then confirm only that connection's
// previous write; the mark always writes, so WAIT covers every write the
// node applied before it, the one the answer stands for included. A suspend
// answered by its idempotency record from the read step alone, and a seed
// or a rewrap answered from reads alone, send the mark and WAIT by
// themselves. Reads never wait, so a read may see a write that answered
// replication_unconfirmed and is lost in a failover later.
// Operations over every partition (seed, rotate_all, revoke, rewrap) send
// their pipeline as before, then one mark and WAIT per node (one more round
// trip per node, at once).
//
// Fewer than N confirmations: the call answers unavailable /
// replication_unconfirmed (retryable) whatever the script answered; the
// write stays applied on the primary. A script error (a contract error)
// answers as without replicas: nothing was written; so do the replies
// that acknowledge nothing (unwrittenReplies), although their WAIT, sent
// in the same pipeline, was waited for.
//
// WAIT confirms that N replicas hold the write in memory, which is what a
// failover needs: the promoted replica has it. WAITAOF (Valkey 8, Redis
// 7.2+; not Redis 7.0, which this driver supports) would also confirm
// that the replicas fsynced it to their append-only files, which matters
// only when the primary and those replicas can lose power together; the
// driver does not send it.

// writeScripts are the scripts that may write and acknowledge a write;
// with wait_replicas, their calls wait for the replicas. Read-only scripts
// (keys_load, keys_kid, suspend_read, deliver_read, observe, list_all,
// list_index, list_peek, list_rows, claim_peek, create_read, get_waitpoint,
// describe, count, the keystore snapshot) do not, nor list_fill, which
// writes only what it derives from the partitions' indexes (replicated in
// order, so a replica holding <prefix>ff:list-complete holds every chunk
// before it).
var writeScripts = map[*redis.Script]bool{
	scriptSeedInstall: true, scriptRotate: true, scriptRevoke: true, scriptRewrap: true,
	scriptSuspendWrite: true, scriptDeliver: true, scriptDeliverWrite: true,
	scriptClaim: true, scriptClaimHinted: true, scriptComplete: true,
	scriptCreateWrite: true, scriptExtend: true, scriptRelease: true, scriptCancel: true,
}

// unwrittenReplies are the first elements of write-script replies that
// wrote nothing the caller acknowledges: a two-step write that must read
// again (retry), the one-call delivery handing over to the slow path
// (slow), a claim that found nothing (none) or that names partitions to ask
// (hint, full). The call's WAIT reply is not read for them: only what is
// acknowledged waits for the replicas.
var unwrittenReplies = map[string]bool{"retry": true, "slow": true, "none": true, "hint": true, "full": true}

// acknowledges reports whether a write-script reply acknowledges a write.
func acknowledges(v []any) bool { return !unwrittenReplies[str(v, 0)] }

// waitMarkKey is the wait mark of partition p, in p's slot.
func (b *Backend) waitMarkKey(p int) string { return b.key(p, "wait") }

// waits reports whether calls of s wait for replicas.
func (b *Backend) waits(s *redis.Script) bool { return b.waitReplicas > 0 && writeScripts[s] }

// nodeFor returns the client of the node serving key: the standalone
// client, or the master of key's slot as the cluster client knows it.
func (b *Backend) nodeFor(ctx context.Context, key string) (*redis.Client, error) {
	if cc, ok := b.client.(*redis.ClusterClient); ok {
		return cc.MasterForKey(ctx, key)
	}
	return b.client.(*redis.Client), nil
}

// nodeAttempts bounds the attempts of a call sent to one node while the
// cluster's topology changes; between them the topology is reloaded
// (topology.noteError) and the node found again.
const nodeAttempts = 3

// onNode runs f with the node serving key. On a cluster, when f fails with
// a sign of a stale topology (a dead or demoted master, MOVED, CLUSTERDOWN)
// it waits a moment for the reload that sign asked for and runs f again on
// the node then serving key, up to nodeAttempts in all: f's calls are
// idempotent (write scripts answer a re-sent operation id from its record).
func (b *Backend) onNode(ctx context.Context, key string, f func(c *redis.Client) error) error {
	for attempt := 1; ; attempt++ {
		c, err := b.nodeFor(ctx, key)
		if err == nil {
			err = f(c)
		}
		if err == nil || b.topo == nil || attempt == nodeAttempts || !staleTopology(err) || ctx.Err() != nil {
			return err
		}
		b.topo.noteError(err)
		t := time.NewTimer(time.Duration(attempt) * topologyRefreshInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// runWaiting calls a write script with keys on the node serving keys[0],
// followed by the wait mark of partition mark and WAIT, in one pipeline
// (EVAL when the node does not know the script). It answers the script's
// reply, the script's error, or replication_unconfirmed.
func (b *Backend) runWaiting(ctx context.Context, s *redis.Script, keys []string, mark int, argv []any) ([]any, error) {
	var v []any
	err := b.onNode(ctx, keys[0], func(c *redis.Client) error {
		call, wait := b.pipelineWaiting(ctx, c, mark, func(p redis.Pipeliner) *redis.Cmd { return s.EvalSha(ctx, p, keys, argv...) })
		if redis.HasErrorPrefix(call.Err(), "NOSCRIPT") {
			call, wait = b.pipelineWaiting(ctx, c, mark, func(p redis.Pipeliner) *redis.Cmd { return s.Eval(ctx, p, keys, argv...) })
		}
		var err error
		if v, err = call.Slice(); err != nil || !acknowledges(v) {
			return err
		}
		return b.confirmed(wait)
	})
	if err != nil {
		return nil, interpretError(err)
	}
	return v, nil
}

// pipelineWaiting sends call (when not nil), the wait mark of partition
// mark and WAIT in one pipeline on c.
func (b *Backend) pipelineWaiting(ctx context.Context, c *redis.Client, mark int, call func(redis.Pipeliner) *redis.Cmd) (*redis.Cmd, waitCmds) {
	pipe := c.Pipeline()
	var cmd *redis.Cmd
	if call != nil {
		cmd = call(pipe)
	}
	w := waitCmds{mark: pipe.Set(ctx, b.waitMarkKey(mark), "1", 0)}
	w.wait = pipe.Do(ctx, "WAIT", b.waitReplicas, b.waitTimeout.Milliseconds())
	_, _ = pipe.Exec(ctx) // errors are read per command
	return cmd, w
}

// waitCmds are the wait mark and the WAIT of one pipeline.
type waitCmds struct {
	mark *redis.StatusCmd
	wait *redis.Cmd
}

// confirmed reads the wait mark and WAIT replies: nil when wait_replicas
// replicas confirmed, else replication_unconfirmed (or the native error of
// the mark or WAIT).
func (b *Backend) confirmed(w waitCmds) error {
	if err := w.mark.Err(); err != nil {
		return err
	}
	n, err := w.wait.Int64()
	if err != nil {
		return err
	}
	if n < int64(b.waitReplicas) {
		return contracts.ErrReplicationUnconfirmed.With(
			"wait_replicas: %d of the %d replicas asked for confirmed the write within %v (wait_timeout); it is applied on the primary and may not survive a failover (docs/spec.md §6.1)",
			n, b.waitReplicas, b.waitTimeout)
	}
	return nil
}

// confirm sends the wait mark and WAIT to every node serving one of
// partitions (at once, one round trip each) and reports, per partition,
// nil or why its node did not confirm (interpreted).
func (b *Backend) confirm(ctx context.Context, partitions []int) []error {
	out := make([]error, len(partitions))
	groups := map[*redis.Client][]int{} // node -> indexes into partitions
	for i, p := range partitions {
		c, err := b.nodeFor(ctx, b.keystoreKey(p))
		if err != nil {
			out[i] = interpretError(err)
			continue
		}
		groups[c] = append(groups[c], i)
	}
	var wg sync.WaitGroup
	for _, idx := range groups {
		wg.Go(func() {
			p := partitions[idx[0]]
			err := b.onNode(ctx, b.keystoreKey(p), func(c *redis.Client) error {
				_, wait := b.pipelineWaiting(ctx, c, p, nil)
				return b.confirmed(wait)
			})
			for _, i := range idx {
				out[i] = interpretError(err)
			}
		})
	}
	wg.Wait()
	return out
}

// confirmAll confirms every partition's node and answers the first error.
func (b *Backend) confirmAll(ctx context.Context) error {
	for _, err := range b.confirm(ctx, b.allPartitions()) {
		if err != nil {
			return err
		}
	}
	return nil
}
