// Package mqttstore is paho's memory store keeping copies (see Copy), for
// every persistent-session client: the gateway's order connection and the
// reference central.
package mqttstore

import (
	"bytes"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Copy is paho's memory store keeping copies: Put stores a copy of the
// packet and Get returns a fresh one. With the plain memory store, resume()
// after a (re)connection sets the DUP flag on the very packet object the
// sending goroutine may be writing at that moment — a data race in paho
// v1.5.1 that a publish made as the connection comes up runs into
// (central's head and replays; the gateway's status).
type Copy struct{ mqtt.Store }

var _ mqtt.Store = Copy{}

// New returns an empty Copy store.
func New() Copy { return Copy{mqtt.NewMemoryStore()} }

func (s Copy) Put(key string, m packets.ControlPacket) { s.Store.Put(key, clonePacket(m)) }

func (s Copy) Get(key string) packets.ControlPacket {
	if m := s.Store.Get(key); m != nil {
		return clonePacket(m)
	}
	return nil
}

// clonePacket copies m through its wire form; nil if it does not survive
// the round trip (the store then holds nothing, as after a crash).
func clonePacket(m packets.ControlPacket) packets.ControlPacket {
	var b bytes.Buffer
	if err := m.Write(&b); err != nil {
		return nil
	}
	c, err := packets.ReadPacket(&b)
	if err != nil {
		return nil
	}
	return c
}
