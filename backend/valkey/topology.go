package valkey

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// topologyRefreshInterval is the shortest time between two topology
// reloads a cluster backend asks for.
const topologyRefreshInterval = 250 * time.Millisecond

// topology keeps a cluster client's slot map fresh. go-redis reloads the
// map on a MOVED reply and otherwise every 60 s; but a master that died
// answers no MOVED (its connections are refused), so without help a
// client keeps calling the dead master for up to a minute after its
// replica took over. A call that meets a connection error, MOVED,
// CLUSTERDOWN, TRYAGAIN or READONLY therefore asks go-redis for a reload
// (ClusterClient.ReloadState: asynchronous, coalesced), at most once per
// topologyRefreshInterval. The hooks see every attempt, on the cluster
// client and on each node's client, so a reload usually lands while
// go-redis still retries the call (it retries connection errors up to
// max_redirects times); the later calls find the new master as soon as the
// cluster has one.
type topology struct {
	cc      *redis.ClusterClient
	last    atomic.Int64 // UnixNano of the last reload asked for
	reloads atomic.Int64 // reloads asked for, for tests
	hooked  sync.Map     // *redis.Client -> struct{}: node clients hooked
	off     atomic.Bool  // the backend is closed: the hooks do nothing
}

// watchTopology installs the reload hooks on cc and on every node client
// it creates from now on; Open calls it before cc's first command. New,
// given a client that may already have node clients, then calls
// hookNodes.
func watchTopology(cc *redis.ClusterClient) *topology {
	tp := &topology{cc: cc}
	cc.AddHook(topologyHook{tp})
	cc.OnNewNode(tp.hook)
	return tp
}

// hook installs the reload hook on a node client, once.
func (tp *topology) hook(node *redis.Client) {
	if _, done := tp.hooked.LoadOrStore(node, struct{}{}); !done {
		node.AddHook(topologyHook{tp})
	}
}

// hookNodes installs the reload hook on the node clients cc already has
// (those of its current slot map, which it loads when it has none). An
// unreachable cluster is not reported here: the first command reports it.
func (tp *topology) hookNodes(ctx context.Context) {
	_ = tp.cc.ForEachShard(ctx, func(_ context.Context, node *redis.Client) error {
		tp.hook(node)
		return nil
	})
}

// stop makes the hooks do nothing (go-redis cannot remove a hook).
func (tp *topology) stop() {
	if tp != nil {
		tp.off.Store(true)
	}
}

// noteError asks for a reload when err says the slot map may be stale.
func (tp *topology) noteError(err error) {
	if tp == nil || tp.off.Load() || !staleTopology(err) {
		return
	}
	now := time.Now().UnixNano()
	last := tp.last.Load()
	if now-last < int64(topologyRefreshInterval) || !tp.last.CompareAndSwap(last, now) {
		return
	}
	tp.reloads.Add(1)
	tp.cc.ReloadState(context.Background())
}

// topologyReplies are the server replies that mean the slot map is stale
// or the cluster is changing it: a slot moved, the cluster cannot serve
// (a master failed and no replica took over yet), a multi-key call during
// a move, a write sent to a node that became a replica.
var topologyReplies = []string{"MOVED", "CLUSTERDOWN", "TRYAGAIN", "READONLY"}

// staleTopology reports whether err (native, from go-redis) may come from
// a stale slot map: a topology reply, or a failure to reach or read the
// node (refused, reset, closed, timed out, a deadline while talking to
// it). A caller's cancellation, a closed client, an exhausted pool and
// redis.Nil are not.
func staleTopology(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) {
		return false
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range topologyReplies {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || isNetworkError(err)
}

// topologyHook reports every attempt's errors to a topology.
type topologyHook struct{ tp *topology }

func (h topologyHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h topologyHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.tp.noteError(err)
		return err
	}
}

func (h topologyHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.tp.noteError(err)
		for _, c := range cmds {
			if c.Err() != nil {
				h.tp.noteError(c.Err())
			}
		}
		return err
	}
}
