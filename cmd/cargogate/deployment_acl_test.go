package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/internal/testenv"
)

// deploymentACL is the pattern-form ACL of docs/deployment.md, taken from
// the page: the fenced block that starts with its header line.
func deploymentACL(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	const header = "# customs/v1 ACL for site PVG-W, pattern form"
	_, rest, ok := strings.Cut(string(doc), "```\n"+header)
	if !ok {
		t.Fatalf("docs/deployment.md has no block starting %q", header)
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("the ACL block is not closed")
	}
	return header + block
}

// TestDeploymentACL runs mosquitto with the pattern-form ACL of
// docs/deployment.md (usernames: central's account, and each gateway's
// name): g07 receives the site's orders and head and its own replies and
// acks but not g08's, and central receives what g07 writes on its own
// topics but not what it writes on g08's or on orders. Each check ends
// with a sentinel on an allowed topic, so that "not received" is judged
// after the broker handled the denied message.
func TestDeploymentACL(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "cargogate.acl")
	if err := os.WriteFile(acl, []byte(deploymentACL(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	// No password_file: mosquitto takes the username as given (this test
	// is about the ACL, not authentication). "user root": run as root,
	// mosquitto would drop to its own user before reading the ACL in the
	// test's private directory (as in the TLS test).
	m := testenv.NewMosquitto(t, "user root", "acl_file "+acl)

	type inbox struct {
		mu  sync.Mutex
		got map[string][]string // topic → payloads
	}
	connect := func(user, id string, subs ...string) (mqtt.Client, *inbox) {
		t.Helper()
		in := &inbox{got: map[string][]string{}}
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(m.URL()).SetClientID(id).SetUsername(user).
			SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
		if tk := c.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
			t.Fatalf("%s: connect: %v", user, tk.Error())
		}
		t.Cleanup(func() { c.Disconnect(50) })
		for _, s := range subs {
			tk := c.Subscribe(s, 1, func(_ mqtt.Client, msg mqtt.Message) {
				in.mu.Lock()
				in.got[msg.Topic()] = append(in.got[msg.Topic()], string(msg.Payload()))
				in.mu.Unlock()
			})
			if !tk.WaitTimeout(10 * time.Second) {
				t.Fatalf("%s: subscribe %s: no answer", user, s)
			}
		}
		return c, in
	}
	has := func(in *inbox, topic string) bool {
		in.mu.Lock()
		defer in.mu.Unlock()
		return len(in.got[topic]) > 0
	}
	publish := func(c mqtt.Client, topic string) {
		t.Helper()
		if tk := c.Publish(topic, 1, false, "x"); !tk.WaitTimeout(10 * time.Second) {
			t.Fatalf("publish %s: no answer", topic)
		}
	}
	wait := func(in *inbox, topic string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !has(in, topic); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: never received", topic)
			}
		}
	}
	const p = "customs/v1/PVG-W/"

	// What central writes: g07 reads the site's topics and its own.
	_, g07 := connect("g07", "cargogate-PVG-W-g07", p+"orders", p+"head", p+"gw/g07/replay",
		p+"gw/g07/lookup/reply", p+"gw/g07/events/ack", p+"gw/g08/replay", p+"gw/g08/events/ack")
	cen, fromGW := connect("customs-central-PVG-W", "customs-central-PVG-W",
		p+"gw/+/resync", p+"gw/+/lookup", p+"gw/+/events", p+"gw/+/status")
	for _, leaf := range []string{"gw/g08/replay", "gw/g08/events/ack", "orders", "head", "gw/g07/replay", "gw/g07/lookup/reply", "gw/g07/events/ack"} {
		publish(cen, p+leaf)
	}
	for _, leaf := range []string{"orders", "head", "gw/g07/replay", "gw/g07/lookup/reply", "gw/g07/events/ack"} {
		wait(g07, p+leaf)
	}
	for _, leaf := range []string{"gw/g08/replay", "gw/g08/events/ack"} {
		if has(g07, p+leaf) {
			t.Errorf("g07 received %s: another gateway's topic", leaf)
		}
	}

	// What g07 writes: central reads g07's own topics only. Its events
	// connection uses the same account under another client id.
	gw, _ := connect("g07", "cargogate-PVG-W-g07-pub")
	for _, leaf := range []string{"gw/g08/events", "gw/g08/status", "orders", "gw/g07/resync", "gw/g07/lookup", "gw/g07/status", "gw/g07/events"} {
		publish(gw, p+leaf)
	}
	for _, leaf := range []string{"gw/g07/resync", "gw/g07/lookup", "gw/g07/status", "gw/g07/events"} {
		wait(fromGW, p+leaf)
	}
	for _, leaf := range []string{"gw/g08/events", "gw/g08/status"} {
		if has(fromGW, p+leaf) {
			t.Errorf("g07 wrote %s: another gateway's topic", leaf)
		}
	}
	g07.mu.Lock()
	orders := len(g07.got[p+"orders"])
	g07.mu.Unlock()
	if orders != 1 { // central's publication above, none of g07's
		t.Errorf("g07 received %d messages on orders, want 1 (central's): g07 wrote orders", orders)
	}
}
