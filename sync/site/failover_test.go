package site

import (
	"testing"
	"time"

	"github.com/cargogate/cargogate/internal/natstest"
	"github.com/cargogate/cargogate/internal/testenv"
)

// TestEventsFailOverPastADeadNode: the gateway's first broker accepts TCP
// but the node behind it is dead (a proxy, a load balancer or a port
// forward in front of a killed NATS node), so the MQTT handshake ends in
// EOF. Both connections must move to the next node. The events
// connection, a new paho client per attempt, used to fall back to MQTT 3.1
// after the failed handshake and offer 3.1 to the next brokers too, which
// NATS refuses ("older protocol MQIsdp not supported"): it never came back
// while the first node was down, and no event left the outbox.
func TestEventsFailOverPastADeadNode(t *testing.T) {
	cl := natstest.Start(t, natsBin, natstest.Options{})
	urls := cl.URLs()
	px := testenv.NewProxy(t, cl.Nodes[0].MQTTAddr())
	f := newFleet(t, fleetOpts{
		gateways: 1,
		brokers:  func(int) []string { return []string{px.URL(), urls[1], urls[2]} },
		central:  rotate(urls, 1),
	})
	stop := f.scanning(300 * time.Millisecond)
	time.Sleep(time.Second)
	killed := time.Now()
	cl.Nodes[0].Kill()
	moved := f.failedOver(map[string]bool{px.URL(): true, urls[0]: true})
	caught := f.converged(killed)
	stop()
	r := f.finalCheck()
	t.Logf("first node killed behind a proxy: both connections on another node after %v, events from before the kill at central after %v; %s",
		moved.Round(time.Millisecond), caught.Round(time.Millisecond), r)
}
