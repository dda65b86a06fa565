package outbox

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/persist"
	"github.com/cargogate/cargogate/sync/envelope"
)

// The ack timeout run in a testing/synctest bubble: virtual time, a fake
// connection that acknowledges every publish at once (PUBACK), no broker.

// ackSource is an outbox that takes out only what Delivered names.
type ackSource struct {
	mu      sync.Mutex
	pending []persist.Entry
	notify  chan struct{}
}

func (s *ackSource) Pending(max, _ int) ([]persist.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]persist.Entry(nil), s.pending[:min(max, len(s.pending))]...), nil
}

func (s *ackSource) Delivered(es []persist.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		for i, p := range s.pending {
			if p.Seq == e.Seq {
				s.pending = append(s.pending[:i], s.pending[i+1:]...)
				break
			}
		}
	}
	return nil
}

func (s *ackSource) Notify() <-chan struct{} { return s.notify }

func (s *ackSource) left() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// recordingConn acknowledges every publish at once and records the event
// ids of each.
type recordingConn struct {
	mu   sync.Mutex
	sent [][]string
}

type ackedToken struct{ done chan struct{} }

func (t ackedToken) Wait() bool                     { return true }
func (t ackedToken) WaitTimeout(time.Duration) bool { return true }
func (t ackedToken) Done() <-chan struct{}          { return t.done }
func (t ackedToken) Error() error                   { return nil }

func (c *recordingConn) Publish(_ string, _ byte, _ bool, payload any) mqtt.Token {
	payloadBytes := payload.([]byte)
	var env struct{ Payload []byte }
	_ = json.Unmarshal(payloadBytes, &env)
	var doc struct{ Events []struct{ ID string } }
	_ = json.Unmarshal(env.Payload, &doc)
	var ids []string
	for _, e := range doc.Events {
		ids = append(ids, e.ID)
	}
	c.mu.Lock()
	c.sent = append(c.sent, ids)
	c.mu.Unlock()
	t := ackedToken{done: make(chan struct{})}
	close(t.done)
	return t
}

func (c *recordingConn) sends() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]string(nil), c.sent...)
}

// TestAckTimeout: a PUBACK alone leaves an event in the outbox; an event
// central acknowledges leaves it and is not sent again; one it does not
// acknowledge within ack_timeout is sent again under the same id, not
// before.
func TestAckTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 30 * time.Second
		src := &ackSource{notify: make(chan struct{}, 1)}
		for i := 1; i <= 2; i++ {
			src.pending = append(src.pending, persist.Entry{Seq: uint64(i), Data: fmt.Appendf(nil, `{"id":"e%d"}`, i)})
		}
		key := envelope.Signer{Kid: "PVG-W/g07", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
		d := New(Options{Site: "PVG-W", Gateway: "g07", Signer: key, AckTimeout: timeout}, src)

		c := &recordingConn{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.drain(ctx, c, make(chan struct{})) }()
		synctest.Wait()
		if got := c.sends(); len(got) != 1 || fmt.Sprint(got[0]) != "[e1 e2]" {
			t.Fatalf("first sends %v, want [[e1 e2]]", got)
		}
		if src.left() != 2 {
			t.Fatalf("the PUBACK took events out of the outbox: %d left, want 2", src.left())
		}
		if _, ok := d.OldestUnacked(); !ok {
			t.Fatal("no unacknowledged event reported")
		}
		d.Acked([]string{"e1"})
		if src.left() != 1 {
			t.Fatalf("after events_ack of e1: %d left, want 1", src.left())
		}
		time.Sleep(timeout - 2*time.Second)
		synctest.Wait()
		if got := c.sends(); len(got) != 1 {
			t.Fatalf("sent again before ack_timeout: %v", got)
		}
		time.Sleep(3 * time.Second) // the idle round is a second
		synctest.Wait()
		got := c.sends()
		if len(got) != 2 || fmt.Sprint(got[1]) != "[e2]" {
			t.Fatalf("after ack_timeout sends %v, want e2 alone sent again", got)
		}
		d.Acked([]string{"e2"})
		if src.left() != 0 {
			t.Fatalf("after events_ack of e2: %d left", src.left())
		}
		if _, ok := d.OldestUnacked(); ok {
			t.Fatal("an unacknowledged event reported with none left")
		}
		time.Sleep(10 * timeout)
		synctest.Wait()
		if got := c.sends(); len(got) != 2 {
			t.Fatalf("sent again after every event was acknowledged: %v", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
