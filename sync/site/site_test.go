package site

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/internal/natstest"
	"github.com/cargogate/cargogate/internal/testenv"
)

// gateways is the site's size in both forms: at least twenty
// (CARGOGATE_SITE_GATEWAYS overrides it, to debug a scenario on fewer).
var gateways = func() int {
	if n, err := strconv.Atoi(os.Getenv("CARGOGATE_SITE_GATEWAYS")); err == nil && n > 0 {
		return n
	}
	return 20
}()

// rotate returns urls starting at i: a client's own node first, then the
// others in turn.
func rotate(urls []string, i int) []string {
	i %= len(urls)
	return append(append([]string(nil), urls[i:]...), urls[:i]...)
}

// TestClusterSite runs twenty gateways and central on a 3-node NATS
// cluster (MQTT on JetStream, R3), every one configured with the three
// nodes in central.brokers (its own node first), while central issues
// orders and every station scans: a node is killed with SIGKILL and
// restarted, then another, then one gateway is partitioned from its node
// (a proxy cut) and healed (repeated in the long form). After each fault it
// waits until every gateway and central are connected to a live node, and
// until every gateway applied the head of that moment and central
// acknowledged every event made before the fault; at the end it runs the
// final check (applied_seq = head everywhere, every event at central
// exactly once, no PASS the ledger did not release).
func TestClusterSite(t *testing.T) {
	rounds := size(1, 4)
	outage := size(3*time.Second, 20*time.Second)
	cl := natstest.Start(t, natsBin, natstest.Options{})
	urls := cl.URLs()
	// Gateway i lives on node i%3; g01 reaches every node through a proxy
	// of its own, so that it can be partitioned from the node it is on when
	// the partition comes (a reconnection keeps the node last connected
	// to: after the kills it is no longer its first).
	pxs := make([]*testenv.Proxy, len(cl.Nodes))
	pxURLs := make([]string, len(cl.Nodes))
	for k, n := range cl.Nodes {
		pxs[k] = testenv.NewProxy(t, n.MQTTAddr())
		pxURLs[k] = pxs[k].URL()
	}
	f := newFleet(t, fleetOpts{
		gateways: gateways,
		brokers: func(i int) []string {
			if i == 0 {
				return rotate(pxURLs, 0)
			}
			return rotate(urls, i)
		},
		central: urls,
		onStuck: func() string { return cl.Consumers("PVG-W.gw") },
	})
	stopTraffic := f.traffic(size(50, 200))
	stopScans := f.scanning(size(2*time.Second, time.Second))
	time.Sleep(3 * time.Second)

	var figures []string
	figure := func(format string, a ...any) {
		figures = append(figures, fmt.Sprintf(format, a...))
		t.Log(figures[len(figures)-1])
	}
	// The node killed is the one most gateways are on (another than the
	// one killed just before): a reconnection keeps the node it reached,
	// so after a few faults a fixed choice would kill a node nobody uses.
	deadOf := func(k int) map[string]bool { return map[string]bool{cl.Nodes[k].URL(): true, pxs[k].URL(): true} }
	last := -1
	busiest := func() int {
		best, most := -1, 0
		for k := range cl.Nodes {
			if n := len(f.on(deadOf(k))); k != last && n > most {
				best, most = k, n
			}
		}
		if best < 0 {
			best = (last + 1) % len(cl.Nodes) // everyone on the node just killed and restarted
		}
		return best
	}
	for r := 0; r < rounds; r++ {
		for range 2 {
			k := busiest()
			last = k
			n := cl.Nodes[k]
			dead := deadOf(k)
			if on := f.on(dead); len(on) == 0 {
				t.Fatalf("kill -9 %s: no gateway on it", n.Name)
			}
			killed := time.Now()
			n.Kill()
			moved := f.failedOver(dead)
			caught := f.converged(killed)
			time.Sleep(outage)
			restarted := time.Now()
			back := n.Restart()
			took := f.converged(restarted)
			figure("kill -9 %s: every gateway and central on another node %v after the kill, site converged %v after the kill; down %v; node back and caught up in %v, site converged %v after its restart",
				n.Name, moved.Round(time.Millisecond), caught.Round(time.Millisecond), restarted.Sub(killed).Round(100*time.Millisecond),
				back.Round(time.Millisecond), took.Round(time.Millisecond))
		}
		st, ok := f.gws[0].status()
		k := slices.Index(pxURLs, st.Link.Broker)
		if !ok || k < 0 {
			t.Fatalf("partition: g01 on no proxy (broker %q)", st.Link.Broker)
		}
		px := pxs[k]
		cut := time.Now()
		px.Cut()
		moved := f.failedOver(map[string]bool{px.URL(): true})
		caught := f.converged(cut)
		time.Sleep(outage)
		px.Restore()
		healed := time.Now()
		took := f.converged(healed)
		figure("partition g01 from %s: g01 on another node %v after the cut, site converged %v after the cut; healed after %v, site converged %v after healing",
			cl.Nodes[k].Name, moved.Round(time.Millisecond), caught.Round(time.Millisecond), healed.Sub(cut).Round(time.Second), took.Round(time.Millisecond))
	}
	stopScans()
	issued := stopTraffic()
	r := f.finalCheck()
	t.Logf("FIGURE cluster-site: %d orders issued during the faults; central: %d publishes not acknowledged by the broker (orders committed, then filled by resync); %s\n  %s",
		issued, f.c.Stats().PublishErrors, r, strings.Join(figures, "\n  "))
}

// TestMosquittoSite is the simple case: the same twenty gateways on one
// mosquitto (persistence off, as in the fault suite), central issuing and
// stations scanning, the broker killed with SIGKILL once and restarted
// (losing every session, queue and the retained head), then the final
// check.
func TestMosquittoSite(t *testing.T) {
	outage := size(3*time.Second, 20*time.Second)
	m := testenv.NewMosquitto(t, "max_queued_messages 100000")
	f := newFleet(t, fleetOpts{
		gateways: gateways,
		brokers:  func(int) []string { return []string{m.URL()} },
		central:  []string{m.URL()},
	})
	stopTraffic := f.traffic(size(100, 200))
	stopScans := f.scanning(time.Second)
	time.Sleep(size(5*time.Second, 60*time.Second))
	steady := f.converged(time.Now())
	m.Kill()
	time.Sleep(outage)
	m.Restart()
	restarted := time.Now()
	took := f.converged(restarted)
	stopScans()
	issued := stopTraffic()
	r := f.finalCheck()
	t.Logf("FIGURE mosquitto-site: %d orders issued; steady-state catch-up %v; kill -9 of the broker for %v: site converged %v after its restart; central: %d publishes not acknowledged by the broker; %s",
		issued, steady.Round(time.Millisecond), outage, took.Round(time.Millisecond), f.c.Stats().PublishErrors, r)
}
