package central

import (
	"fmt"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/testenv"
	"github.com/cargogate/cargogate/sync/envelope"
)

// The MQTT client library reads the broker's PUBACKs on the goroutine that
// hands received messages to the router. When central's inbox is full and
// its processor waits for a free reply place (64 answers unacknowledged),
// the router blocks on the inbox, the PUBACKs that would free a place stay
// unread behind the next received message, and central stops until
// PublishTimeout (10 s per round of 64 answers by default). Here the
// broker's PUBACKs are held until the inbox has filled, then released:
// every event must be recorded soon after, the gateway sending again what
// central did not acknowledge, as a gateway does after its ack_timeout.
func TestFullInboxDoesNotStallReplies(t *testing.T) {
	defer func(d int) { inboxDepth = d }(inboxDepth)
	inboxDepth = 8
	broker, _ := testenv.StartMosquitto(t)
	hold := testenv.NewPubackHold(t, broker[len("tcp://"):])
	h := start(t, hold.URL(), func(o *Options) {
		o.GatewayKeys = envelope.Keyring{g07.Kid: g07.Public()}
		o.PublishTimeout = 10 * time.Minute
	})
	go func() { // the harness's hook must not hold the processor
		for range h.handled {
		}
	}()
	gw := dial(t, broker, "gateway")
	topic := customs.GatewayTopic(site, "g07", customs.LeafEvents)
	const n = maxRepliesInFlight + 40
	send := func(i int) {
		gw.send(t, g07, topic, customs.Events{Type: customs.TypeEvents, Site: site, Gateway: "g07",
			Events: []customs.Event{scanEvent(fmt.Sprintf("E%03d", i))}})
	}
	recorded := func() map[string]bool {
		got := map[string]bool{}
		for _, e := range h.c.Events("g07") {
			got[e.ID] = true
		}
		return got
	}
	resend := func(got map[string]bool) {
		for i := range n {
			if !got[fmt.Sprintf("E%03d", i)] {
				send(i) // not acknowledged: sent again, as after ack_timeout
			}
		}
	}
	hold.Hold()
	resend(nil)
	// Until 64 answers wait for their PUBACKs and the inbox is full
	// behind the processor that waits for a place.
	deadline := time.Now().Add(waitFor)
	for st := h.c.Stats(); st.RepliesInFlight < maxRepliesInFlight || st.Backlog < inboxDepth; st = h.c.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("%d PUBACKs held, %d replies in flight, backlog %d; want %d and %d", hold.Held(), st.RepliesInFlight, st.Backlog, maxRepliesInFlight, inboxDepth)
		}
		time.Sleep(500 * time.Millisecond)
		if st.RepliesInFlight < maxRepliesInFlight {
			resend(recorded())
		}
	}
	time.Sleep(200 * time.Millisecond)
	hold.Release()
	deadline = time.Now().Add(30 * time.Second)
	for {
		got := recorded()
		if len(got) == n {
			break
		}
		if time.Now().After(deadline) {
			st := h.c.Stats()
			t.Fatalf("%d of %d events recorded 30 s after the PUBACKs were released; backlog %d, replies in flight %d", len(got), n, st.Backlog, st.RepliesInFlight)
		}
		time.Sleep(2 * time.Second)
		resend(recorded())
	}
	t.Logf("every event recorded; %d messages dropped at a full inbox", h.c.Stats().InboxDropped)
}
