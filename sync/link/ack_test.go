package link_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/internal/testenv"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/link"
)

// PROTOCOL amendment 3: events leave the outbox on central's events_ack,
// not on the broker's PUBACK.

func appendEvents(t *testing.T, j *journal.Journal, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		ev := fmt.Sprintf(`{"id":"ev-%04d","kind":"device","station":"gate-3","at":"2026-12-01T08:00:00Z","device":"gate","state":"up","detail":"test"}`, i)
		if _, err := j.Append(context.Background(), []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
}

func depth(j *journal.Journal) int { n, _ := j.Depth(); return n }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached", what)
		}
	}
}

// TestForgedEventsAckRemovesNothing: with central away, an event sent (and
// PUBACKed) stays in the outbox; an events_ack naming it signed with the
// wrong key, or for another gateway, is rejected and audited and removes
// nothing; the same ack signed by central's key removes it.
func TestForgedEventsAckRemovesNothing(t *testing.T) {
	r := newRig(t)
	r.until("connected", func(s link.Snapshot) bool { return s.Online && s.PubOnline })
	r.stopC()
	r.stopC = nil

	cli := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(r.broker).SetClientID("forger"))
	if tk := cli.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	defer cli.Disconnect(100)
	seen := make(chan struct{}, 10)
	if tk := cli.Subscribe(customs.GatewayTopic("PVG-W", "g07", customs.LeafEvents), 1, func(mqtt.Client, mqtt.Message) { seen <- struct{}{} }); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	appendEvents(t, r.j, 1, 1)
	select {
	case <-seen:
	case <-time.After(20 * time.Second):
		t.Fatal("the event was not sent")
	}
	ackTopic := customs.GatewayTopic("PVG-W", "g07", customs.LeafEventsAck)
	send := func(s envelope.Signer, gw string) {
		t.Helper()
		msg, err := s.Seal(customs.EventsAck{Type: customs.TypeEventsAck, Site: "PVG-W", Gateway: gw, IDs: []string{"ev-0001"}})
		if err != nil {
			t.Fatal(err)
		}
		if tk := cli.Publish(ackTopic, 1, false, msg); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
			t.Fatal(tk.Error())
		}
	}
	rejected := r.link.Snapshot().Rejected
	forged := envelope.Signer{Kid: centralKey.Kid, Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))}
	send(forged, "g07")
	r.until("forged ack rejected", func(s link.Snapshot) bool { return s.Rejected == rejected+1 })
	send(centralKey, "g08")
	r.until("ack for another gateway rejected", func(s link.Snapshot) bool { return s.Rejected == rejected+2 })
	if n := depth(r.j); n != 1 {
		t.Fatalf("outbox after the bad acks: %d events, want 1", n)
	}
	if a := r.audited("order_rejected"); len(a) < 2 {
		t.Fatalf("bad acks not audited: %v", a)
	}
	send(centralKey, "g07")
	waitUntil(t, "the event taken out by central's ack", func() bool { return depth(r.j) == 0 })
}

// TestEventsIntoTheVoid: central away while the broker restarts without
// persistence (its queue for central lost) and events are published into
// the void (PUBACKed, routed to no one); central back: every event
// arrives, once after de-duplication, and the outbox empties.
func TestEventsIntoTheVoid(t *testing.T) {
	dir := t.TempDir()
	m := testenv.NewMosquitto(t)
	cdb := filepath.Join(dir, "central.db")
	_, stopC := startCentral(t, m.URL(), cdb, 200*time.Millisecond)
	st, err := store.Open(filepath.Join(dir, "orders.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	j, err := journal.Open(filepath.Join(dir, "events.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go j.Run(ctx)
	l, err := link.New(link.Options{Site: "PVG-W", Gateway: "g07", Broker: m.URL(),
		Keys: envelope.Keyring{centralKey.Kid: centralKey.Public()}, Signer: gwKey,
		GapGrace: 300 * time.Millisecond, ResyncTimeout: time.Second, AckTimeout: time.Second,
		Log: slog.New(slog.DiscardHandler)}, st, j, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, "link up", func() bool { s := l.Snapshot(); return s.Online && s.PubOnline })

	appendEvents(t, j, 1, 5)
	waitUntil(t, "first events acknowledged", func() bool { return depth(j) == 0 })

	stopC() // central away: the broker queues for its session

	appendEvents(t, j, 6, 5)
	time.Sleep(500 * time.Millisecond) // sent, PUBACKed, queued for central
	m.Restart()                        // without persistence: the queue is gone
	waitUntil(t, "link back", func() bool { s := l.Snapshot(); return s.Online && s.PubOnline })
	appendEvents(t, j, 11, 5) // into the void: no session for central
	time.Sleep(2 * time.Second)
	if n := depth(j); n != 10 {
		t.Fatalf("outbox with central away: %d events, want 10 (a PUBACK must not take them out)", n)
	}

	c2, stopC2 := startCentral(t, m.URL(), cdb, 200*time.Millisecond)
	defer stopC2()
	waitUntil(t, "every event acknowledged", func() bool { return depth(j) == 0 })
	evs := c2.Events("g07")
	ids := map[string]int{}
	for _, e := range evs {
		ids[e.ID]++
	}
	if len(evs) != 15 || len(ids) != 15 {
		b, _ := json.Marshal(ids)
		t.Fatalf("central holds %d events, %d distinct, want 15: %s", len(evs), len(ids), b)
	}
	for i := 1; i <= 15; i++ {
		if ids[fmt.Sprintf("ev-%04d", i)] != 1 {
			t.Errorf("event ev-%04d held %d times", i, ids[fmt.Sprintf("ev-%04d", i)])
		}
	}
}
