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

func connect(t *testing.T, url, id string, clean bool, onMsg mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetDefaultPublishHandler(onMsg)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s to %s: %v", id, url, tok.Error())
	}
	return c
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
