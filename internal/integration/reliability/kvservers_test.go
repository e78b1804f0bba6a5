package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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

// kvNode is one private valkey-server or redis-server run as a child
// process of the test (never daemonized, so that the test can SIGKILL,
// SIGSTOP and SIGCONT it), without persistence, on free ports of
// 127.0.0.1, in its own temporary directory.
type kvNode struct {
	bin     string
	dir     string
	port    int
	busPort int      // cluster bus port; 0 for a standalone node
	args    []string // extra arguments, kept for restarts
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd exited (its Wait returned)
}

// startKVNode starts a node with extra arguments; cluster nodes get a bus
// port of their own (--cluster-port). The node is killed when t ends.
func startKVNode(t testing.TB, bin string, cluster bool, extra ...string) *kvNode {
	t.Helper()
	n := &kvNode{bin: bin, dir: t.TempDir(), args: extra}
	t.Cleanup(func() { n.kill() })
	var err error
	for range 5 { // a port taken between freePort and the bind: try others
		n.port = freePort(t)
		if cluster {
			n.busPort = freePort(t)
		}
		if err = n.start(); err == nil {
			return n
		}
	}
	t.Fatalf("start %s: %v", filepath.Base(bin), err)
	return nil
}

func (n *kvNode) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// start starts the node process (again) on its ports and directory and
// waits until it answers PING.
func (n *kvNode) start() error {
	args := []string{"--port", strconv.Itoa(n.port), "--bind", "127.0.0.1", "--dir", n.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", filepath.Join(n.dir, "server.log"),
		"--repl-diskless-sync-delay", "0"} // replicas sync at once
	if n.busPort != 0 {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(n.busPort))
	}
	n.cmd = exec.Command(n.bin, append(args, n.args...)...)
	if err := n.cmd.Start(); err != nil {
		n.cmd = nil
		return err
	}
	exited := make(chan struct{})
	n.exited = exited
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(exited) }(n.cmd)
	c := n.client()
	defer c.Close()
	ok := waitFor(20*time.Second, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err() == nil
	})
	select {
	case <-exited:
		n.cmd = nil
		return fmt.Errorf("exited at start-up: %s", n.logTail())
	default:
	}
	if !ok {
		n.kill()
		return fmt.Errorf("no answer on %d: %s", n.port, n.logTail())
	}
	return nil
}

// restart starts a killed node again on the same ports and directory.
func (n *kvNode) restart(t testing.TB) {
	t.Helper()
	if err := n.start(); err != nil {
		t.Fatalf("restart %s on %d: %v", filepath.Base(n.bin), n.port, err)
	}
}

// kill stops the node with SIGKILL (nothing is flushed) and reaps it.
func (n *kvNode) kill() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Kill() // SIGKILL ends a SIGSTOPped process too
	<-n.exited
	n.cmd = nil
}

// signal sends sig (SIGSTOP, SIGCONT) to the node.
func (n *kvNode) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if n.cmd == nil {
		t.Fatalf("signal %v: node %d is not running", sig, n.port)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to node %d: %v", sig, n.port, err)
	}
}

// client is an administrative client of this node alone.
func (n *kvNode) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: n.addr(), MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: 5 * time.Second, DisableIdentity: true})
}

// do runs one command on the node with a fresh connection.
func (n *kvNode) do(args ...any) (any, error) {
	c := n.client()
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

func (n *kvNode) logTail() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "server.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
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
		addrs = append(addrs, n.addr())
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
		addrs = append(addrs, n.addr())
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
		if n.cmd == nil {
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
		if n.cmd == nil {
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
		if n.addr() == addr {
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
		if n.cmd == nil {
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
	p.replica = startKVNode(t, bin, false, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(p.primary.port)}, extra...)...)
	if !waitFor(30*time.Second, p.primary.replicaConfirms) {
		t.Fatalf("the %s replica never came in sync: %s", fam.name, p.replica.logTail())
	}
	return p
}

// replicaConfirms writes on n and reports whether one replica confirmed
// it (WAIT 1 within 100 ms): a replica reporting its link up may not be
// counted yet (Redis 7.0 starts counting it at its first acknowledgement,
// up to a second later).
func (n *kvNode) replicaConfirms() bool {
	c := n.client()
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
	return fmt.Sprintf("redis://%s/0?partitions=%d&prefix=%s", n.addr(), partitions, prefix)
}
