package valkey

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// roundTrips counts what the client sends to the servers: single commands
// and pipelines (each pipeline to one node is one round trip), per node.
type roundTrips struct {
	mu        sync.Mutex
	on        bool
	singles   map[string]int // node address -> single commands
	pipelines map[string]int // node address -> pipelines
	piped     int            // commands sent inside pipelines
	hooked    map[*redis.Client]bool
}

func newRoundTrips() *roundTrips {
	return &roundTrips{singles: map[string]int{}, pipelines: map[string]int{}, hooked: map[*redis.Client]bool{}}
}

// isHandshake reports the commands go-redis sends when it dials a new
// connection (HELLO, CLIENT SETINFO, AUTH, SELECT): connection set-up, not
// round trips of the operation.
func isHandshake(cmds ...redis.Cmder) bool {
	for _, c := range cmds {
		switch c.Name() {
		case "hello", "client", "auth", "select", "readonly":
		default:
			return false
		}
	}
	return true
}

// hook returns a go-redis hook counting for the node at addr.
func (r *roundTrips) hook(addr string) redis.Hook { return nodeHook{r: r, addr: addr} }

// attach installs the counting hooks on c: on every node of a cluster, on
// the client itself otherwise. Call it before c's first command.
func (r *roundTrips) attach(c redis.UniversalClient) {
	switch c := c.(type) {
	case *redis.ClusterClient:
		c.OnNewNode(r.hookOnce)
	case *redis.Client:
		r.hookOnce(c)
	}
}

// hookOnce adds the counting hook to c unless it has it already (go-redis
// may announce one node client more than once).
func (r *roundTrips) hookOnce(c *redis.Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.hooked[c] {
		r.hooked[c] = true
		c.AddHook(r.hook(c.Options().Addr))
	}
}

// start resets the counts and starts counting.
func (r *roundTrips) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = true
	r.piped = 0
	clear(r.singles)
	clear(r.pipelines)
}

// stop stops counting and returns the totals.
func (r *roundTrips) stop() (singles, pipelines, nodes, piped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	for _, n := range r.singles {
		singles += n
	}
	for _, n := range r.pipelines {
		pipelines += n
	}
	return singles, pipelines, len(r.pipelines), r.piped
}

type nodeHook struct {
	r    *roundTrips
	addr string
}

func (h nodeHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h nodeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.r.mu.Lock()
		if h.r.on && !isHandshake(cmd) {
			h.r.singles[h.addr]++
		}
		h.r.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h nodeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.r.mu.Lock()
		if h.r.on && !isHandshake(cmds...) {
			h.r.pipelines[h.addr]++
			h.r.piped += len(cmds)
		}
		h.r.mu.Unlock()
		return next(ctx, cmds)
	}
}

// coldScripts makes the shared test servers look as if their script cache
// were empty, without touching it: until the client sends its first SCRIPT
// LOAD, every EVALSHA it pipelines names the SHA1 of no script, so the
// server answers NOSCRIPT. Attach it before the client's first command.
type coldScripts struct {
	loaded    atomic.Bool
	rewritten atomic.Int64
}

// unknownSHA is the SHA1 of no script the driver loads.
const unknownSHA = "ffffffffffffffffffffffffffffffffffffffff"

func (cs *coldScripts) attach(c redis.UniversalClient) {
	switch c := c.(type) {
	case *redis.ClusterClient:
		c.OnNewNode(func(n *redis.Client) { n.AddHook(coldHook{cs}) })
	case *redis.Client:
		c.AddHook(coldHook{cs})
	}
}

type coldHook struct{ cs *coldScripts }

func (h coldHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h coldHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); len(a) > 1 && strings.EqualFold(cmd.Name(), "script") &&
			strings.EqualFold(fmt.Sprint(a[1]), "load") {
			h.cs.loaded.Store(true)
		}
		return next(ctx, cmd)
	}
}

func (h coldHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !h.cs.loaded.Load() {
			for _, c := range cmds {
				if a := c.Args(); len(a) > 1 && strings.EqualFold(c.Name(), "evalsha") {
					a[1] = unknownSHA
					h.cs.rewritten.Add(1)
				}
			}
		}
		return next(ctx, cmds)
	}
}
