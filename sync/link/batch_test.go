package link_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/persist"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/link"
)

// countingStore is the real store, with the size of every commit noted.
// The first commit waits for hold, so that everything fed meanwhile is
// queued when the batcher takes its next batch.
type countingStore struct {
	*store.Store
	hold    chan struct{}
	mu      sync.Mutex
	commits []int
}

func (s *countingStore) Apply(b persist.Batch) (persist.Result, error) {
	s.mu.Lock()
	first := len(s.commits) == 0
	s.commits = append(s.commits, len(b.Orders))
	s.mu.Unlock()
	if first {
		<-s.hold
	}
	return s.Store.Apply(b)
}

type ackMsg struct {
	payload []byte
	acked   chan struct{}
	once    sync.Once
}

func (m *ackMsg) Duplicate() bool   { return false }
func (m *ackMsg) Qos() byte         { return 1 }
func (m *ackMsg) Retained() bool    { return false }
func (m *ackMsg) Topic() string     { return customs.OrdersTopic("PVG-W") }
func (m *ackMsg) MessageID() uint16 { return 1 }
func (m *ackMsg) Payload() []byte   { return m.payload }
func (m *ackMsg) Ack()              { m.once.Do(func() { close(m.acked) }) }

// TestCommitBoundedInBytes: with a backlog queued, a commit takes messages
// only while its write estimate (a page per order plus the message bytes)
// stays within MaxBatchBytes, so bbolt's dirty pages (heap) and the burst
// the journal's fsync waits behind stay bounded; every order is still
// applied and every message acked after its commit.
func TestCommitBoundedInBytes(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "orders.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	jr, err := journal.Open(filepath.Join(dir, "events.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer jr.Close()
	cs := &countingStore{Store: st, hold: make(chan struct{})}
	const msgs, per = 20, 100
	var payloads [][]byte
	seq := uint64(0)
	for range msgs {
		var orders []customs.Order
		for range per {
			seq++
			orders = append(orders, customs.Order{Seq: seq, Action: customs.Release,
				Subject: customs.Subject{Kind: customs.Parcel, ID: fmt.Sprintf("LP%014d", seq)}})
		}
		p, err := centralKey.Seal(struct {
			Type   string          `json:"type"`
			Site   string          `json:"site"`
			Orders []customs.Order `json:"orders"`
		}{customs.TypeOrders, "PVG-W", orders})
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, p)
	}
	// Three messages fit, a fourth does not.
	bound := 3 * (per*4096 + int64(len(payloads[0])) + 512)
	lk, err := link.New(link.Options{Site: "PVG-W", Gateway: "g07", Broker: "tcp://127.0.0.1:1",
		Keys: envelope.Keyring{centralKey.Kid: centralKey.Public()}, Signer: gwKey, MaxBatchBytes: bound}, cs, jr, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lk.Ingest(ctx) }()
	defer func() { cancel(); <-done }()
	var ms []*ackMsg
	for _, p := range payloads {
		m := &ackMsg{payload: p, acked: make(chan struct{})}
		ms = append(ms, m)
		lk.Feed(m)
	}
	time.Sleep(200 * time.Millisecond) // the verifiers catch up; the first commit waits
	close(cs.hold)
	for i, m := range ms {
		select {
		case <-m.acked:
		case <-time.After(30 * time.Second):
			t.Fatalf("message %d not acked", i)
		}
	}
	cs.mu.Lock()
	commits := append([]int(nil), cs.commits...)
	cs.mu.Unlock()
	total := 0
	for _, n := range commits {
		total += n
		if n > 3*per {
			t.Errorf("a commit of %d orders (%d messages): over MaxBatchBytes, which holds 3", n, n/per)
		}
	}
	if total != msgs*per {
		t.Errorf("%d orders committed, want %d", total, msgs*per)
	}
	if len(commits) < msgs/3 {
		t.Errorf("%d commits for %d messages: at most 3 a commit needs at least %d", len(commits), msgs, msgs/3)
	}
	if p, _ := st.Progress(); p.Watermark != seq {
		t.Errorf("watermark %d, want %d", p.Watermark, seq)
	}
	t.Logf("commits: %v", commits)
}

// blockedStore is a store whose commits wait until open is closed.
type blockedStore struct {
	*store.Store
	open chan struct{}
}

func (s *blockedStore) Apply(b persist.Batch) (persist.Result, error) {
	<-s.open
	return s.Store.Apply(b)
}

// TestHandoffBoundedInBytes: while commits are slow, the messages the
// link takes in (and so holds in the heap) are bounded by their bytes:
// the handoff blocks, and the rest waits in the broker. Each message here
// is 256 KiB (an order message of about 1,000 orders is 200 KB); they
// are rejected, which holds them until their commit all the same.
func TestHandoffBoundedInBytes(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "orders.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	jr, err := journal.Open(filepath.Join(dir, "events.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer jr.Close()
	bs := &blockedStore{Store: st, open: make(chan struct{})}
	lk, err := link.New(link.Options{Site: "PVG-W", Gateway: "g07", Broker: "tcp://127.0.0.1:1",
		Keys: envelope.Keyring{centralKey.Kid: centralKey.Public()}, Signer: gwKey}, bs, jr, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lk.Ingest(ctx) }()
	defer func() { cancel(); <-done }()
	const msgs = 200
	junk := make([]byte, 256<<10)
	var fed atomic.Int64
	var ms []*ackMsg
	for range msgs {
		ms = append(ms, &ackMsg{payload: junk, acked: make(chan struct{})})
	}
	go func() {
		for _, m := range ms {
			lk.Feed(m)
			fed.Add(1)
		}
	}()
	time.Sleep(time.Second)
	// 8 MiB held (32 messages), 16 waiting at the handoff, a few in hand.
	if n := fed.Load(); n > 60 {
		t.Errorf("%d messages of 256 KiB taken in while commits wait (%d MiB): the handoff does not hold them back", n, n/4)
	}
	t.Logf("taken in while commits wait: %d messages", fed.Load())
	close(bs.open)
	for i, m := range ms {
		select {
		case <-m.acked:
		case <-time.After(30 * time.Second):
			t.Fatalf("message %d not acked", i)
		}
	}
}
