package mqttstore

import (
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestCopies: Put keeps a copy and Get returns a fresh one, with the same
// content; a packet that does not survive the wire form is not kept.
func TestCopies(t *testing.T) {
	s := New()
	s.Open()
	defer s.Close()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.MessageID, pub.TopicName, pub.Payload = 1, 3, "a/b", []byte("payload")
	s.Put("o.3", pub)
	pub.Dup = true // the caller's packet changes: the stored one does not
	a, b := s.Get("o.3").(*packets.PublishPacket), s.Get("o.3").(*packets.PublishPacket)
	if a == pub || a == b {
		t.Fatal("Get returned a packet already handed out")
	}
	if a.Dup || a.MessageID != 3 || a.TopicName != "a/b" || string(a.Payload) != "payload" {
		t.Fatalf("stored packet %+v", a)
	}
	a.Dup = true
	if s.Get("o.3").(*packets.PublishPacket).Dup {
		t.Fatal("a change to a packet got from the store reached the store")
	}
}
