package central

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/testenv"
	"github.com/cargogate/cargogate/sync/envelope"
)

// A broker slow to acknowledge central's publishes (a JetStream cluster
// after a node's death) must not stop central from recording and
// acknowledging the events of every gateway: its answers do not wait for
// their PUBACKs. A replay_done still waits for the replay's PUBACKs.
func TestRepliesDoNotWaitForBrokerAcks(t *testing.T) {
	broker, _ := testenv.StartMosquitto(t)
	hold := testenv.NewPubackHold(t, broker[len("tcp://"):])
	h := start(t, hold.URL(), func(o *Options) {
		o.GatewayKeys = envelope.Keyring{g07.Kid: g07.Public(), g08.Kid: g08.Public()}
		o.PublishTimeout = 10 * time.Minute // a wait for a PUBACK holds for the test's length
	})
	if _, _, err := h.c.Issue(context.Background(), parcelOrders(3)); err != nil {
		t.Fatal(err)
	}
	ackTopic := func(gw string) string { return customs.GatewayTopic(site, gw, customs.LeafEventsAck) }
	obs := dial(t, broker, "observer", ackTopic("g07"), ackTopic("g08"), customs.GatewayTopic(site, "g07", customs.LeafReplay))
	gw := dial(t, broker, "gateways")
	events := func(gateway, id string) customs.Events {
		return customs.Events{Type: customs.TypeEvents, Site: site, Gateway: gateway, Events: []customs.Event{scanEvent(id)}}
	}
	expectAck := func(gateway, id string) {
		t.Helper()
		topic, payload := obs.next(t)
		var a customs.EventsAck
		if err := json.Unmarshal(payload, &a); err != nil || topic != ackTopic(gateway) || fmt.Sprint(a.IDs) != "["+id+"]" {
			t.Fatalf("got %s %s, want the events_ack of %s for %s", topic, payload, gateway, id)
		}
	}

	hold.Hold()
	for i := range 3 {
		for _, g := range []struct {
			name string
			s    envelope.Signer
		}{{"g07", g07}, {"g08", g08}} {
			id := fmt.Sprintf("%s-E%d", g.name, i)
			gw.send(t, g.s, customs.GatewayTopic(site, g.name, customs.LeafEvents), events(g.name, id))
			h.expectHandled(t, "events:")
			expectAck(g.name, id)
		}
	}
	// The broker may forward an events_ack to the observer before its
	// PUBACK reaches the proxy: wait for the sixth.
	for deadline := time.Now().Add(waitFor); hold.Held() < 6; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d PUBACKs held, want the 6 events_acks' at least", hold.Held())
		}
	}
	if n := len(h.c.Events("")); n != 6 {
		t.Fatalf("%d events recorded, want 6", n)
	}

	// A resync: the replay goes out, replay_done waits for its PUBACK.
	gw.send(t, g07, customs.GatewayTopic(site, "g07", customs.LeafResync), customs.Resync{
		Type: customs.TypeResync, Site: site, Gateway: "g07", RequestID: "r1", FromSeq: 1,
	})
	h.expectHandled(t, "resync:")
	if _, payload := obs.next(t); !isType(payload, customs.TypeOrders) {
		t.Fatalf("got %s, want the replay's orders", payload)
	}
	select {
	case m := <-obs.msgs:
		t.Fatalf("%s arrived while the replay's PUBACK was held", m.Payload())
	case <-time.After(time.Second):
	}
	hold.Release()
	if _, payload := obs.next(t); !isType(payload, customs.TypeReplayDone) {
		t.Fatalf("got %s, want replay_done", payload)
	}
}

func isType(payload []byte, typ string) bool {
	p, err := customs.ReadProbe(payload)
	return err == nil && p.Type == typ
}
