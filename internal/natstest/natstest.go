// Package natstest starts a real NATS server cluster for tests: three
// nats-server processes on loopback ports, routed to each other, each with
// JetStream on its own store directory and an MQTT listener, configured as
// docs/deployment.md recommends (sync_interval always, MQTT streams with 3
// replicas). Nodes are real processes: a test kills one with SIGKILL and
// starts it again on the same ports and store. It is for tests only.
package natstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/internal/testenv"
)

// Module is the Go module the server is built from; go.mod names it as a
// tool (`tool github.com/nats-io/nats-server/v2`), so the version is the one
// go.mod requires.
const Module = "github.com/nats-io/nats-server/v2"

// readyTimeout bounds the wait for a cluster or a restarted node to serve
// MQTT. It bounds a failure, it is not a figure.
const readyTimeout = 90 * time.Second

// Build builds nats-server from the module into dir with the local Go
// toolchain and returns the binary's path. The NATS_SERVER environment
// variable names a prebuilt binary instead. Call it once per test binary
// (from TestMain).
func Build(dir string) (string, error) {
	if p := os.Getenv("NATS_SERVER"); p != "" {
		return p, nil
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "nats-server")
	cmd := exec.Command("go", "build", "-o", bin, Module)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", Module, err, out)
	}
	return bin, nil
}

// Cluster is three nats-server processes routed to each other.
type Cluster struct {
	t     testing.TB
	bin   string
	Nodes []*Node
}

// Node is one server of the cluster. Its ports and store directory stay
// the same across Kill and Start.
type Node struct {
	Name string
	c    *Cluster
	conf string
	dir  string
	// ports: client, cluster (routes), MQTT, HTTP monitoring
	client, route, mqttPort, monitor int

	mu   sync.Mutex
	proc *testenv.Proc
	runs int
}

// Options shape the cluster's configuration.
type Options struct {
	// Nodes is the cluster size; default 3.
	Nodes int
	// Extra is added at the top level of every node's configuration.
	Extra string
	// JetStream is added inside every node's jetstream block; empty: the
	// template's `limits { default_max_consumers: -1 }`.
	JetStream string
	// MQTT is added inside every node's mqtt block.
	MQTT string
}

// The MQTT ack_wait and max_ack_pending stay at their defaults (30 s,
// 1024): see docs/deployment.md for why.

// Start starts the cluster from bin (see Build) and waits until every node
// serves MQTT and JetStream has a meta leader. The nodes are killed at test
// cleanup.
func Start(t testing.TB, bin string, o Options) *Cluster {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	c := &Cluster{t: t, bin: bin}
	base := t.TempDir()
	// A free port may be taken by another process before the node binds
	// it: a node that exits at start is retried, with new ports for all.
	for attempt := 1; ; attempt++ {
		c.Nodes = nil
		dir := filepath.Join(base, fmt.Sprintf("try%d", attempt))
		for i := 0; i < o.Nodes; i++ {
			n := &Node{Name: fmt.Sprintf("n%d", i+1), c: c, dir: filepath.Join(dir, fmt.Sprintf("n%d", i+1))}
			n.client, n.route, n.mqttPort, n.monitor = freePort(t), freePort(t), freePort(t), freePort(t)
			c.Nodes = append(c.Nodes, n)
		}
		var routes []string
		for _, n := range c.Nodes {
			routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", n.route))
		}
		for _, n := range c.Nodes {
			if err := os.MkdirAll(n.dir, 0o755); err != nil {
				t.Fatal(err)
			}
			n.conf = filepath.Join(n.dir, "nats.conf")
			if err := os.WriteFile(n.conf, []byte(n.config(routes, o)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range c.Nodes {
			n.start()
		}
		if c.startedAll() || attempt == 3 {
			break
		}
		for _, n := range c.Nodes {
			n.Kill()
		}
	}
	c.WaitReady()
	return c
}

// startedAll reports whether every node is still running a moment after
// its start (a node whose port was taken exits at once).
func (c *Cluster) startedAll() bool {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.Nodes {
			if !n.Running() {
				c.t.Logf("nats %s exited at start; new ports:\n%s", n.Name, tail(n.Output(), 2000))
				return false
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// config is the node's configuration file: docs/examples/nats-node.conf
// with loopback ports and this node's directories.
func (n *Node) config(routes []string, o Options) string {
	return fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
  sync_interval: always
%s
}
cluster {
  name: site
  listen: 127.0.0.1:%d
  routes: [%s]
}
mqtt {
  listen: 127.0.0.1:%d
  stream_replicas: %d
%s
}
%s
`, n.Name, n.client, n.monitor, filepath.Join(n.dir, "js"), o.jetStream(), n.route,
		strings.Join(routes, ", "), n.mqttPort, len(routes), o.MQTT, o.Extra)
}

// jetStream is the jetstream block's extra lines: the template's limits
// unless Options.JetStream replaces them.
func (o Options) jetStream() string {
	if o.JetStream != "" {
		return o.JetStream
	}
	return "  limits { default_max_consumers: -1 }"
}

// URLs are the MQTT URLs of the nodes, tcp://127.0.0.1:PORT, in node order.
func (c *Cluster) URLs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.URL())
	}
	return out
}

// URL is the node's MQTT URL.
func (n *Node) URL() string { return "tcp://" + n.MQTTAddr() }

// MQTTAddr is the node's MQTT listener, 127.0.0.1:PORT.
func (n *Node) MQTTAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.mqttPort)) }

// Running reports whether the node's process is up.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc != nil && !n.proc.Exited()
}

func (n *Node) start() {
	n.c.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.runs++
	n.proc = testenv.Start(n.c.t, fmt.Sprintf("nats-%s#%d", n.Name, n.runs), n.c.bin, "-c", n.conf)
}

// Kill ends the node with SIGKILL, as a crash would.
func (n *Node) Kill() {
	n.mu.Lock()
	p := n.proc
	n.proc = nil
	n.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// Restart starts a killed node again on the same ports and store, waits
// until the cluster is ready again (the node caught up), and returns how
// long that took.
func (n *Node) Restart() time.Duration {
	n.c.t.Helper()
	n.Kill()
	start := time.Now()
	n.start()
	n.c.WaitReady()
	return time.Since(start)
}

// Output is what the node's current process logged.
func (n *Node) Output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return ""
	}
	return n.proc.Output()
}

// WaitReady waits until every running node is healthy (JetStream current,
// /healthz answers ok), agrees on a meta leader, and accepts an MQTT
// session.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	var last error
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		for {
			if last = n.ready(); last == nil {
				break
			}
			if !n.Running() {
				c.t.Fatalf("nats %s exited:\n%s", n.Name, n.Output())
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("nats %s not ready within %v: %v\n%s", n.Name, readyTimeout, last, tail(n.Output(), 4000))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// ready checks one node: healthy, a meta leader known, MQTT CONNECT
// answered.
func (n *Node) ready() error {
	cl := http.Client{Timeout: 2 * time.Second}
	r, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", n.monitor))
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 {
		return fmt.Errorf("healthz %d: %s", r.StatusCode, b)
	}
	leader, err := n.MetaLeader()
	if err != nil {
		return err
	}
	if leader == "" {
		return fmt.Errorf("no JetStream meta leader yet")
	}
	o := mqtt.NewClientOptions().AddBroker(n.URL()).SetClientID("natstest-probe-" + n.Name).
		SetCleanSession(true).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	cli := mqtt.NewClient(o)
	tok := cli.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("mqtt connect: %v", tok.Error())
	}
	cli.Disconnect(0)
	return nil
}

// MetaLeader is the JetStream meta leader's server name as this node sees
// it ("" when none).
func (n *Node) MetaLeader() (string, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	r, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz", n.monitor))
	if err != nil {
		return "", err
	}
	defer r.Body.Close()
	var jsz struct {
		Meta *struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if err := json.NewDecoder(r.Body).Decode(&jsz); err != nil {
		return "", err
	}
	if jsz.Meta == nil {
		return "", nil
	}
	return jsz.Meta.Leader, nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Consumers describes, as each running node sees them, the JetStream
// consumers of the MQTT messages stream whose filter subject contains
// filter (NATS subjects: "customs.v1.SITE.gw.*.events"): leader, pending,
// ack pending, redelivered. For a failing test's log.
func (c *Cluster) Consumers(filter string) string {
	var b strings.Builder
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		cl := http.Client{Timeout: 5 * time.Second}
		r, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz?accounts=true&streams=true&consumers=true&config=true", n.monitor))
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", n.Name, err)
			continue
		}
		var jsz struct {
			Accounts []struct {
				Streams []struct {
					Name      string `json:"name"`
					Consumers []struct {
						Name   string `json:"name"`
						Config struct {
							Filter string `json:"filter_subject"`
						} `json:"config"`
						Delivered struct {
							Stream uint64 `json:"stream_seq"`
						} `json:"delivered"`
						AckFloor struct {
							Stream uint64 `json:"stream_seq"`
						} `json:"ack_floor"`
						AckPending  int    `json:"num_ack_pending"`
						Redelivered int    `json:"num_redelivered"`
						Pending     uint64 `json:"num_pending"`
						PushBound   bool   `json:"push_bound"`
						Cluster     *struct {
							Leader string `json:"leader"`
						} `json:"cluster"`
					} `json:"consumer_detail"`
				} `json:"stream_detail"`
			} `json:"account_details"`
		}
		err = json.NewDecoder(r.Body).Decode(&jsz)
		r.Body.Close()
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", n.Name, err)
			continue
		}
		for _, a := range jsz.Accounts {
			for _, s := range a.Streams {
				for _, co := range s.Consumers {
					if !strings.Contains(co.Config.Filter, filter) {
						continue
					}
					leader := ""
					if co.Cluster != nil {
						leader = co.Cluster.Leader
					}
					fmt.Fprintf(&b, "%s: %s > %s filter %s leader %q delivered %d ack_floor %d ack_pending %d redelivered %d pending %d push_bound %v\n",
						n.Name, s.Name, co.Name, co.Config.Filter, leader, co.Delivered.Stream, co.AckFloor.Stream, co.AckPending, co.Redelivered, co.Pending, co.PushBound)
				}
			}
		}
	}
	return b.String()
}

// SyncAlways reports whether the node's JetStream fsyncs every write
// before acknowledging it (/varz jetstream.config.sync_always), which
// `jetstream { sync_interval: always }` sets.
func (n *Node) SyncAlways() (bool, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	r, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/varz", n.monitor))
	if err != nil {
		return false, err
	}
	defer r.Body.Close()
	var v struct {
		JetStream struct {
			Config *struct {
				SyncAlways bool `json:"sync_always"`
			} `json:"config"`
		} `json:"jetstream"`
	}
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
		return false, err
	}
	return v.JetStream.Config != nil && v.JetStream.Config.SyncAlways, nil
}
