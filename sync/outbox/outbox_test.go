package outbox_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/persist"
	"github.com/cargogate/cargogate/internal/testenv"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/outbox"
)

var gwKey = envelope.Signer{Kid: "PVG-W/g07", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}

// source is an in-memory outbox: the narrow interface the Deliverer
// consumes.
type source struct {
	mu          sync.Mutex
	pending     []persist.Entry
	delivered   []persist.Entry
	redelivered []time.Time
	notify      chan struct{}
}

func newSource() *source { return &source{notify: make(chan struct{}, 1)} }

func (s *source) add(n int) {
	s.mu.Lock()
	for range n {
		seq := uint64(len(s.pending) + len(s.delivered) + 1)
		s.pending = append(s.pending, persist.Entry{Seq: seq, Data: fmt.Appendf(nil, `{"id":"e%d"}`, seq)})
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *source) Pending(max, _ int) ([]persist.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]persist.Entry(nil), s.pending[:min(max, len(s.pending))]...), nil
}

func (s *source) Delivered(es []persist.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		for i, p := range s.pending {
			if p.Seq == e.Seq {
				s.delivered = append(s.delivered, p)
				s.pending = append(s.pending[:i], s.pending[i+1:]...)
				break
			}
		}
	}
	return nil
}

func (s *source) Notify() <-chan struct{} { return s.notify }

func (s *source) counts() (pending, delivered int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending), len(s.delivered)
}

var _ outbox.Source = (*source)(nil)

// subscribe collects the events documents central would receive.
func subscribe(t *testing.T, broker string) <-chan []byte {
	t.Helper()
	got := make(chan []byte, 100)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("outbox-test-central"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	topic := customs.GatewayTopic("PVG-W", "g07", customs.LeafEvents)
	if tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Payload() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return got
}

func start(t *testing.T, broker string, src *source, sent *atomic.Int64) *outbox.Deliverer {
	t.Helper()
	d := outbox.New(outbox.Options{Site: "PVG-W", Gateway: "g07", Signer: gwKey,
		Connect: func() *mqtt.ClientOptions {
			return mqtt.NewClientOptions().AddBroker(broker).SetClientID("cargogate-PVG-W-g07-pub").
				SetConnectTimeout(5 * time.Second)
		},
		Delivered: func(n int) { sent.Add(int64(n)) }}, src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return d
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Events go out in one signed events document per batch, oldest first,
// and leave the outbox only when central acknowledges their ids (here the
// test plays central and calls Acked with what it received).
func TestDeliver(t *testing.T) {
	broker, _ := testenv.StartMosquitto(t)
	got := subscribe(t, broker)
	src := newSource()
	src.add(3)
	var sent atomic.Int64
	d := start(t, broker, src, &sent)
	src.add(2) // woken by Notify

	keys := envelope.Keyring{gwKey.Kid: gwKey.Public()}
	var ids []string
	for len(ids) < 5 {
		var raw []byte
		select {
		case raw = <-got:
		case <-time.After(20 * time.Second):
			t.Fatalf("central got %d events, want 5", len(ids))
		}
		payload, kid, err := keys.Open(raw)
		if err != nil || kid != gwKey.Kid {
			t.Fatalf("events document not signed by the gateway: kid %q, %v", kid, err)
		}
		var doc struct {
			Type, Site, Gateway string
			Events              []struct{ ID string }
		}
		if err := json.Unmarshal(payload, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Type != customs.TypeEvents || doc.Site != "PVG-W" || doc.Gateway != "g07" {
			t.Errorf("document %s/%s/%s", doc.Type, doc.Site, doc.Gateway)
		}
		for _, e := range doc.Events {
			ids = append(ids, e.ID)
		}
	}
	for i, id := range ids {
		if want := fmt.Sprintf("e%d", i+1); id != want {
			t.Errorf("event %d is %s, want %s (decision order)", i, id, want)
		}
	}
	if !d.Online() {
		t.Error("not online after sending")
	}
	if p, n := src.counts(); p != 5 || n != 0 {
		t.Fatalf("after the PUBACKs alone: %d pending, %d delivered; want 5, 0", p, n)
	}
	d.Acked(ids[:2])
	if p, n := src.counts(); p != 3 || n != 2 || sent.Load() != 2 {
		t.Fatalf("after acking 2: %d pending, %d delivered, callback %d", p, n, sent.Load())
	}
	d.Acked(ids)
	if p, n := src.counts(); p != 0 || n != 5 || sent.Load() != 5 {
		t.Fatalf("after acking all: %d pending, %d delivered, callback %d", p, n, sent.Load())
	}
}
