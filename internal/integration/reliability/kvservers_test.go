package reliability

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// kvFamily is one key-value server family: its server binary and its CLI.
type kvFamily struct {
	name   string // "valkey" or "redis"
	server string // binary name
	cli    string
}

// kvFamilies are the families the replica and failover tests run on, each
// when its binaries are installed (scripts/test-servers.sh installs both).
var kvFamilies = []kvFamily{
	{name: "valkey", server: "valkey-server", cli: "valkey-cli"},
	{name: "redis", server: "redis-server", cli: "redis-cli"},
}

// binaries returns the family's server and CLI paths, or skips t (fails it
// under CI=true) when one is missing.
func (f kvFamily) binaries(t testing.TB) (server, cli string) {
	t.Helper()
	server, err1 := exec.LookPath(f.server)
	cli, err2 := exec.LookPath(f.cli)
	if err1 != nil || err2 != nil {
		missingBinary(t, f.server+" and "+f.cli)
	}
	return server, cli
}

// kvNode is one private valkey-server or redis-server (testenv.KVServer:
// a child process of the test, so that it can be SIGKILLed, SIGSTOPped and
// SIGCONTed) without persistence, on free ports of 127.0.0.1, in its own
// temporary directory.
type kvNode struct{ *testenv.KVServer }

// startKVNode starts a node with extra arguments; cluster nodes get a bus
// port of their own (--cluster-port). The node is killed when t ends.
func startKVNode(t testing.TB, bin string, cluster bool, extra ...string) *kvNode {
	t.Helper()
	args := append([]string{"--save", "", "--appendonly", "no",
		"--repl-diskless-sync-delay", "0"}, extra...) // replicas sync at once
	return &kvNode{testenv.StartKVServer(t, bin, testenv.KVServerOptions{Args: args, Cluster: cluster})}
}

// signal sends sig (SIGSTOP, SIGCONT) to the node.
func (n *kvNode) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := n.Signal(sig); err != nil {
		t.Fatalf("signal %v to node %d: %v", sig, n.Port, err)
	}
}

// do runs one command on the node with a fresh connection.
func (n *kvNode) do(args ...any) (any, error) {
	c := n.Client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Result()
}

// info returns the fields of INFO section.
func (n *kvNode) info(section string) map[string]string {
	v, err := n.do("INFO", section)
	out := map[string]string{}
	if err != nil {
		return out
	}
	s, _ := v.(string)
	for _, line := range strings.Split(s, "\r\n") {
		if k, val, ok := strings.Cut(line, ":"); ok {
			out[k] = val
		}
	}
	return out
}

// --------------------------------------------------------------- cluster --

// clusterNodeTimeout is the private clusters' cluster-node-timeout: a
// master unreachable for that long is failed over by its replica.
const clusterNodeTimeout = 2 * time.Second

// kvCluster is a private cluster of masters, each with replicas, created
// with `<cli> --cluster create ... --cluster-replicas N`.
type kvCluster struct {
	fam   kvFamily
	cli   string
	nodes []*kvNode
}

func newKVCluster(t testing.TB, fam kvFamily, masters, replicas int) *kvCluster {
	t.Helper()
	bin, cli := fam.binaries(t)
	c := &kvCluster{fam: fam, cli: cli}
	var addrs []string
	for range masters * (1 + replicas) {
		n := startKVNode(t, bin, true, "--cluster-node-timeout", strconv.FormatInt(clusterNodeTimeout.Milliseconds(), 10))
		c.nodes = append(c.nodes, n)
		addrs = append(addrs, n.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s --cluster create: %v: %s", cli, err, out)
	}
	if !waitFor(60*time.Second, func() bool { return c.healthy(masters, masters*replicas) }) {
		t.Fatalf("the %s cluster never became healthy: %v", fam.name, c.describe())
	}
	return c
}

// url is the cluster's backend URL with P partitions under prefix.
func (c *kvCluster) url(partitions int, prefix string) string {
	var addrs []string
	for _, n := range c.nodes {
		addrs = append(addrs, n.Addr())
	}
	return fmt.Sprintf("valkey+cluster://%s?partitions=%d&prefix=%s", strings.Join(addrs, ","), partitions, prefix)
}

// clusterNodeInfo is one line of CLUSTER NODES.
type clusterNodeInfo struct {
	id, addr, masterID string
	master, fail       bool
	connected          bool
	slots              []string
}

// nodesView returns CLUSTER NODES as seen by the first running node that
// answers, or nil.
func (c *kvCluster) nodesView() []clusterNodeInfo {
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		v, err := n.do("CLUSTER", "NODES")
		if err != nil {
			continue
		}
		s, _ := v.(string)
		var out []clusterNodeInfo
		for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
			f := strings.Fields(line)
			if len(f) < 8 {
				continue
			}
			addr, _, _ := strings.Cut(f[1], "@")
			out = append(out, clusterNodeInfo{
				id: f[0], addr: addr, masterID: f[3],
				master:    strings.Contains(f[2], "master"),
				fail:      strings.Contains(f[2], "fail"),
				connected: f[7] == "connected",
				slots:     f[8:],
			})
		}
		return out
	}
	return nil
}

// healthy reports a cluster in state ok on every running node, with the
// given numbers of masters and replicas connected, and every replica in
// sync with its master.
func (c *kvCluster) healthy(masters, replicas int) bool {
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		if c.fieldOf(n, "CLUSTER", "INFO", "cluster_state") != "ok" {
			return false
		}
	}
	var m, r int
	for _, ni := range c.nodesView() {
		if ni.fail || !ni.connected {
			return false
		}
		if ni.master && len(ni.slots) > 0 {
			m++
		} else if !ni.master {
			r++
			if n := c.node(ni.addr); n == nil || n.info("replication")["master_link_status"] != "up" {
				return false
			}
		}
	}
	return m == masters && r == replicas
}

// fieldOf runs a command answering "field:value" lines and returns field.
func (c *kvCluster) fieldOf(n *kvNode, cmd, sub, field string) string {
	v, err := n.do(cmd, sub)
	if err != nil {
		return ""
	}
	s, _ := v.(string)
	for _, line := range strings.Split(s, "\r\n") {
		if k, val, ok := strings.Cut(line, ":"); ok && k == field {
			return val
		}
	}
	return ""
}

// node returns the node listening on addr.
func (c *kvCluster) node(addr string) *kvNode {
	for _, n := range c.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// masterOfSlot returns the node that CLUSTER NODES names master of slot.
func (c *kvCluster) masterOfSlot(slot int) (*kvNode, clusterNodeInfo) {
	for _, ni := range c.nodesView() {
		if !ni.master || ni.fail {
			continue
		}
		for _, r := range ni.slots {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated
			}
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			a, _ := strconv.Atoi(lo)
			b, _ := strconv.Atoi(hi)
			if slot >= a && slot <= b {
				return c.node(ni.addr), ni
			}
		}
	}
	return nil, clusterNodeInfo{}
}

// keySlot asks the cluster for key's hash slot.
func (c *kvCluster) keySlot(t testing.TB, key string) int {
	t.Helper()
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		v, err := n.do("CLUSTER", "KEYSLOT", key)
		if err == nil {
			return int(v.(int64))
		}
	}
	t.Fatalf("no node answered CLUSTER KEYSLOT")
	return -1
}

func (c *kvCluster) describe() string {
	var parts []string
	for _, ni := range c.nodesView() {
		role := "replica"
		if ni.master {
			role = "master"
		}
		if ni.fail {
			role += ",fail"
		}
		parts = append(parts, fmt.Sprintf("%s %s %v", ni.addr, role, ni.slots))
	}
	return strings.Join(parts, "; ")
}

// ------------------------------------------------------ primary + replica --

// kvPair is a private standalone primary with one replica.
type kvPair struct {
	primary, replica *kvNode
}

// newKVPair starts a primary and a replica of it and waits until the
// replica is in sync. extra are arguments of both servers.
func newKVPair(t testing.TB, fam kvFamily, extra ...string) *kvPair {
	t.Helper()
	bin, _ := fam.binaries(t)
	p := &kvPair{primary: startKVNode(t, bin, false, extra...)}
	p.replica = startKVNode(t, bin, false, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(p.primary.Port)}, extra...)...)
	if !waitFor(30*time.Second, p.primary.replicaConfirms) {
		t.Fatalf("the %s replica never came in sync: %s", fam.name, p.replica.LogTail())
	}
	return p
}

// replicaConfirms writes on n and reports whether one replica confirmed
// it (WAIT 1 within 100 ms): a replica reporting its link up may not be
// counted yet (Redis 7.0 starts counting it at its first acknowledgement,
// up to a second later).
func (n *kvNode) replicaConfirms() bool {
	c := n.Client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pipe := c.Pipeline()
	pipe.Set(ctx, "replica-check", "1", 0)
	wait := pipe.Do(ctx, "WAIT", 1, 100)
	_, _ = pipe.Exec(ctx)
	v, err := wait.Int64()
	return err == nil && v == 1
}

// url is the backend URL of node n with P partitions under prefix.
func kvURL(n *kvNode, partitions int, prefix string) string {
	return fmt.Sprintf("redis://%s/0?partitions=%d&prefix=%s", n.Addr(), partitions, prefix)
}
