package natstest

import (
	"fmt"
	"os"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "natstest")
	if err != nil {
		panic(err)
	}
	if bin, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// connect connects as a client would: MQTT 3.1.1, retried for a while
// (right after a node's death the cluster elects new stream leaders, and
// a session cannot be resumed until it has).
func connect(t *testing.T, url, id string, clean bool, onMsg mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(clean).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetDefaultPublishHandler(onMsg)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := mqtt.NewClient(o)
		tok := c.Connect()
		if tok.WaitTimeout(20*time.Second) && tok.Error() == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect %s to %s: %v", id, url, tok.Error())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func publish(t *testing.T, c mqtt.Client, topic, payload string, retained bool) {
	t.Helper()
	tok := c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// TestClusterKeepsAckedState is what the site relies on from the cluster:
// a retained message and a QoS 1 message queued for a persistent session
// (both acknowledged by the node they were published to) survive a kill -9
// of the node the subscriber's session was on; the session resumes on
// another node and gets the queued message, and the killed node comes back
// and serves again.
func TestClusterKeepsAckedState(t *testing.T) {
	c := Start(t, bin, Options{})
	for _, n := range c.Nodes {
		// The configuration's `sync_interval: always` took: every write is
		// fsynced before it is acknowledged.
		if ok, err := n.SyncAlways(); err != nil || !ok {
			t.Fatalf("%s: sync_always %v (%v), want true", n.Name, ok, err)
		}
	}
	got := make(chan string, 16)
	handler := func(_ mqtt.Client, m mqtt.Message) {
		got <- m.Topic() + "=" + string(m.Payload())
		m.Ack()
	}
	sub := connect(t, c.Nodes[0].URL(), "sub", false, handler)
	if tok := sub.Subscribe("site/q", 1, nil); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	sub.Disconnect(0)

	pub := connect(t, c.Nodes[1].URL(), "pub", true, nil)
	publish(t, pub, "site/head", "42", true)
	publish(t, pub, "site/q", "queued", false)
	pub.Disconnect(0)

	c.Nodes[0].Kill()
	// The session, its subscription and the queued message are in
	// JetStream (R3): they resume on another node.
	sub = connect(t, c.Nodes[2].URL(), "sub", false, handler)
	select {
	case m := <-got:
		if m != "site/q=queued" {
			t.Fatalf("got %q, want the queued message", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("queued message not delivered after the node's kill")
	}
	sub.Disconnect(0)
	c.Nodes[0].Restart()

	r := connect(t, c.Nodes[0].URL(), "reader", true, handler)
	if tok := r.Subscribe("site/head", 1, nil); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m != "site/head=42" {
			t.Fatalf("got %q, want the retained head", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("retained message lost with the node's kill")
	}
	r.Disconnect(0)
}

// TestConsumerLimitCapsMQTTSubscriptions: every QoS 1 subscription of a
// persistent MQTT session is a JetStream consumer on the MQTT messages
// stream, so jetstream.limits.default_max_consumers (1,000 by default
// since 2.15) caps the subscriptions of the whole site: a gateway holds 5,
// central 4. With the limit at 6, the seventh subscription is refused
// (SUBACK 0x80) until a consumer goes away.
func TestConsumerLimitCapsMQTTSubscriptions(t *testing.T) {
	c := Start(t, bin, Options{JetStream: "limits { default_max_consumers: 6 }"})
	sub := func(id string, topics ...string) map[string]byte {
		cl := connect(t, c.Nodes[0].URL(), id, false, func(mqtt.Client, mqtt.Message) {})
		defer cl.Disconnect(0)
		want := map[string]byte{}
		for _, tp := range topics {
			want[tp] = 1
		}
		tok := cl.SubscribeMultiple(want, nil)
		if !tok.WaitTimeout(20 * time.Second) {
			t.Fatalf("%s: no SUBACK", id)
		}
		return tok.(*mqtt.SubscribeToken).Result()
	}
	got := sub("a", "s/1", "s/2", "s/3", "s/4", "s/5")
	for tp, q := range got {
		if q != 1 {
			t.Fatalf("subscription %s refused (%#x) under the limit", tp, q)
		}
	}
	got = sub("b", "s/6", "s/7")
	refused := 0
	for _, q := range got {
		if q == 0x80 {
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("subscriptions 6 and 7 of a stream limited to 6 consumers: SUBACK %v, want one refused (0x80)", got)
	}
}
