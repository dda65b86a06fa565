package outbox

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/persist"
	"github.com/cargogate/cargogate/sync/envelope"
)

// The redelivery window run in a testing/synctest bubble: virtual time, a
// fake connection, no broker. TestRedeliverAfterReconnect covers the
// reconnection itself over a real broker.

// windowSource is an outbox that records what is put back.
type windowSource struct {
	mu      sync.Mutex
	pending []persist.Entry
	since   []time.Time // Redeliver's arguments
	notify  chan struct{}
}

func (s *windowSource) Pending(int, int) ([]persist.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]persist.Entry(nil), s.pending...), nil
}

func (s *windowSource) Delivered(es []persist.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = s.pending[len(es):]
	return nil
}

func (s *windowSource) Notify() <-chan struct{} { return s.notify }

func (s *windowSource) Redeliver(since time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.since = append(s.since, since)
	return 0, nil
}

func (s *windowSource) redelivered() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.since...)
}

// ackedConn acknowledges every publish at once.
type ackedConn struct{ n int }

type ackedToken struct{ done chan struct{} }

func (t ackedToken) Wait() bool                     { return true }
func (t ackedToken) WaitTimeout(time.Duration) bool { return true }
func (t ackedToken) Done() <-chan struct{}          { return t.done }
func (t ackedToken) Error() error                   { return nil }

func (c *ackedConn) Publish(string, byte, bool, any) mqtt.Token {
	c.n++
	t := ackedToken{done: make(chan struct{})}
	close(t.done)
	return t
}

// TestRedeliveryWindow: a connection back at T after one lost at L puts
// back at once what was delivered since L-window, and at T+window (not
// before, and within the idle round of a second) what was delivered since
// T.
func TestRedeliveryWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 30 * time.Second
		src := &windowSource{notify: make(chan struct{}, 1),
			pending: []persist.Entry{{Seq: 1, Data: []byte(`{"id":"e1"}`)}}}
		key := envelope.Signer{Kid: "PVG-W/g07", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
		d := New(Options{Site: "PVG-W", Gateway: "g07", Signer: key, RedeliverWindow: window}, src)

		lostAt := time.Now()
		time.Sleep(5 * time.Second) // the connection is down 5s
		backAt := time.Now()
		d.back(lostAt)
		if got := src.redelivered(); len(got) != 1 || !got[0].Equal(lostAt.Add(-window)) {
			t.Fatalf("at reconnection: put back since %v, want [%v]", got, lostAt.Add(-window))
		}
		if !d.RedeliverDue() {
			t.Fatal("no redelivery due after the reconnection")
		}

		c := &ackedConn{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.drain(ctx, c, make(chan struct{})) }()
		synctest.Wait()
		if c.n != 1 {
			t.Fatalf("published %d documents, want 1", c.n)
		}
		time.Sleep(window - 100*time.Millisecond)
		synctest.Wait()
		if got := src.redelivered(); len(got) != 1 || !d.RedeliverDue() {
			t.Fatalf("before the window passed: put back since %v, due %v", got, d.RedeliverDue())
		}
		time.Sleep(time.Second + 100*time.Millisecond)
		synctest.Wait()
		if got := src.redelivered(); len(got) != 2 || !got[1].Equal(backAt) || d.RedeliverDue() {
			t.Fatalf("after the window: put back since %v (want the second since %v), due %v", got, backAt, d.RedeliverDue())
		}
		time.Sleep(10 * window)
		synctest.Wait()
		if got := src.redelivered(); len(got) != 2 {
			t.Fatalf("put back again later: %v", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
