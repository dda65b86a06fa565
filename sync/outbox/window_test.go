package outbox

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/persist"
	"github.com/cargogate/cargogate/sync/envelope"
)

// The window of events sent ahead of central's events_ack, run in a
// testing/synctest bubble against a large backlog.

// bigSource is a large outbox: seqs 1..n, events taken out only by
// Delivered, listed after a seq as the journal does (Afterer).
type bigSource struct {
	mu        sync.Mutex
	data      [][]byte // seq i+1
	delivered map[uint64]bool
	notify    chan struct{}
}

func newBigSource(n int) *bigSource {
	s := &bigSource{delivered: map[uint64]bool{}, notify: make(chan struct{}, 1)}
	for i := 1; i <= n; i++ {
		s.data = append(s.data, fmt.Appendf(nil, `{"id":"e%d","kind":"scan","station":"gate-3","at":"2026-12-01T08:00:00Z","decision":"PASS"}`, i))
	}
	return s
}

func (s *bigSource) PendingAfter(after uint64, max, maxBytes int) ([]persist.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []persist.Entry
	size := 0
	for seq := after + 1; seq <= uint64(len(s.data)) && len(out) < max; seq++ {
		if s.delivered[seq] {
			continue
		}
		v := s.data[seq-1]
		if len(out) > 0 && size+len(v) > maxBytes {
			break
		}
		size += len(v)
		out = append(out, persist.Entry{Seq: seq, Data: v})
	}
	return out, nil
}

func (s *bigSource) Pending(max, maxBytes int) ([]persist.Entry, error) {
	return s.PendingAfter(0, max, maxBytes)
}

func (s *bigSource) Delivered(es []persist.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		s.delivered[e.Seq] = true
	}
	return nil
}

func (s *bigSource) Notify() <-chan struct{} { return s.notify }

func (s *bigSource) left() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data) - len(s.delivered)
}

func (s *bigSource) isDelivered(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered[seq]
}

func flat(sends [][]string) []string {
	var out []string
	for _, s := range sends {
		out = append(out, s...)
	}
	return out
}

// ids e{from}..e{to}
func idRange(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("e%d", i))
	}
	return out
}

var testKey = envelope.Signer{Kid: "PVG-W/g07", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}

// TestWindowBoundsInFlight: 200,000 events pending and central silent.
// At most the window is sent ahead of central's events_ack, and what the
// Deliverer keeps of it (ids, bytes, one record a message) stays within
// the window; an events_ack frees room for as many more; after the ack
// timeout the window alone is sent again, under the same ids, oldest
// first — not the whole outbox.
func TestWindowBoundsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			backlog = 200_000
			timeout = 30 * time.Second
		)
		src := newBigSource(backlog)
		d := New(Options{Site: "PVG-W", Gateway: "g07", Signer: testKey, AckTimeout: timeout}, src)
		window := DefaultWindow
		c := &recordingConn{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.drain(ctx, c, make(chan struct{})) }()
		synctest.Wait()

		sent := flat(c.sends())
		if len(sent) != window {
			t.Fatalf("%d events sent with central silent, want the window, %d", len(sent), window)
		}
		if want := idRange(1, window); fmt.Sprint(sent) != fmt.Sprint(want) {
			t.Fatal("the window is not the oldest events in order")
		}
		checkBound := func(when string) {
			t.Helper()
			d.mu.Lock()
			defer d.mu.Unlock()
			if len(d.unack) > window || d.inflightBytes > DefaultWindowBytes+1024 || len(d.queue) > window {
				t.Fatalf("%s: tracking %d ids, %d bytes, %d records; the bound is %d events, %d bytes",
					when, len(d.unack), d.inflightBytes, len(d.queue), window, DefaultWindowBytes)
			}
		}
		checkBound("central silent")

		// An ack of the oldest 1,500 takes exactly those out and lets
		// 1,500 more go.
		d.Acked(idRange(1, 1500))
		synctest.Wait()
		if src.left() != backlog-1500 || !src.isDelivered(1) || !src.isDelivered(1500) || src.isDelivered(1501) {
			t.Fatalf("after an events_ack of e1..e1500: %d left", src.left())
		}
		sent = flat(c.sends())
		if want := idRange(1, window+1500); fmt.Sprint(sent) != fmt.Sprint(want) {
			t.Fatalf("after the ack %d events sent in all, want e1..e%d", len(sent), window+1500)
		}
		checkBound("after a partial ack")

		// The timeout: the window is sent again, nothing beyond it.
		before := len(c.sends())
		time.Sleep(timeout + 2*time.Second)
		synctest.Wait()
		again := flat(c.sends()[before:])
		if want := idRange(1501, window+1500); fmt.Sprint(again) != fmt.Sprint(want) {
			t.Fatalf("after ack_timeout %d events sent again, want the window e1501..e%d (%d)", len(again), window+1500, window)
		}
		checkBound("after the timeout")
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// ackingConn plays a healthy central: PUBACK at once, and an events_ack
// naming every event of a message after lag.
type ackingConn struct {
	recordingConn
	d       *Deliverer
	lag     time.Duration
	maxOpen int // most messages sent and not yet acknowledged at once
	open    int
}

func (c *ackingConn) Publish(topic string, qos byte, retained bool, payload any) mqtt.Token {
	t := c.recordingConn.Publish(topic, qos, retained, payload)
	sends := c.sends()
	ids := sends[len(sends)-1]
	c.mu.Lock()
	c.open++
	c.maxOpen = max(c.maxOpen, c.open)
	c.mu.Unlock()
	go func() {
		time.Sleep(c.lag)
		c.mu.Lock()
		c.open--
		c.mu.Unlock()
		c.d.Acked(ids)
	}()
	return t
}

// TestWindowDrainsWithAcks: with central acknowledging each message after
// a lag, 200,000 events drain with several messages in flight at once,
// each event sent once, none sent again.
func TestWindowDrainsWithAcks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const backlog = 200_000
		src := newBigSource(backlog)
		d := New(Options{Site: "PVG-W", Gateway: "g07", Signer: testKey}, src)
		c := &ackingConn{lag: 20 * time.Millisecond, d: d}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.drain(ctx, c, make(chan struct{})) }()
		for src.left() > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		sent := flat(c.sends())
		if len(sent) != backlog {
			t.Fatalf("%d events sent for %d: some sent again", len(sent), backlog)
		}
		if !sort.SliceIsSorted(sent, func(i, j int) bool {
			return len(sent[i]) < len(sent[j]) || len(sent[i]) == len(sent[j]) && sent[i] < sent[j]
		}) {
			t.Fatal("events not sent in decision order")
		}
		if c.maxOpen < 2 {
			t.Fatalf("at most %d message in flight: the drain waits for each events_ack", c.maxOpen)
		}
		if _, ok := d.OldestUnacked(); ok {
			t.Fatal("unacknowledged events reported after the drain")
		}
	})
}

// failingSource fails its first Delivered.
type failingSource struct {
	*bigSource
	failed bool
}

func (s *failingSource) Delivered(es []persist.Entry) error {
	if !s.failed {
		s.failed = true
		return errors.New("disk full")
	}
	return s.bigSource.Delivered(es)
}

// TestDeliveredFailsSentAgain: an events_ack whose events cannot be taken
// out of the outbox leaves them pending; they are sent again, under the
// same ids, without waiting for a reconnection, and leave on the next ack.
func TestDeliveredFailsSentAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &failingSource{bigSource: newBigSource(3)}
		d := New(Options{Site: "PVG-W", Gateway: "g07", Signer: testKey}, src)
		c := &recordingConn{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.drain(ctx, c, make(chan struct{})) }()
		synctest.Wait()
		d.Acked(idRange(1, 3)) // fails
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got := c.sends()
		if len(got) != 2 || fmt.Sprint(got[1]) != "[e1 e2 e3]" {
			t.Fatalf("sends %v: the events whose removal failed were not sent again", got)
		}
		d.Acked(idRange(1, 3))
		if src.left() != 0 {
			t.Fatalf("%d left after the second ack", src.left())
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
