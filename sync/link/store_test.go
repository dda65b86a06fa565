package link

import (
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/cargogate/cargogate/internal/failover"
)

// TestOrderSessionStoreCopies: the order connection's session store hands
// out copies. With paho's plain memory store, resume() at a (re)connection
// sets the DUP flag on the very packet the sending goroutine is writing (a
// status published as the connection comes up): TestEventsIntoTheVoid
// failed with that data race once in 20 runs under load.
func TestOrderSessionStoreCopies(t *testing.T) {
	l := &Link{opts: Options{Site: "PVG-W", Gateway: "g07", Broker: "tcp://127.0.0.1:1"}}
	var err error
	if l.orders, err = failover.New([]string{l.opts.Broker}, failover.Options{}); err != nil {
		t.Fatal(err)
	}
	o := l.orderOptions([]byte("offline"))
	if o.Store == nil {
		t.Fatal("the order connection uses paho's default store (a memory store handing out its own packets)")
	}
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.MessageID, pub.TopicName, pub.Payload = 1, 7, "cargogate/PVG-W/gw/g07/status", []byte("x")
	o.Store.Open()
	defer o.Store.Close()
	o.Store.Put("o.7", pub)
	got, ok := o.Store.Get("o.7").(*packets.PublishPacket)
	if !ok {
		t.Fatalf("Get returned %T", o.Store.Get("o.7"))
	}
	if got == pub {
		t.Fatal("Get returned the packet that was Put: resume() would write the DUP flag into a packet being sent")
	}
	if got.MessageID != 7 || got.TopicName != pub.TopicName || string(got.Payload) != "x" {
		t.Fatalf("the copy differs: %+v", got)
	}
}
