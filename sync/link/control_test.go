package link

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/persist"
	"github.com/cargogate/cargogate/sync/envelope"
)

// The control loop (§5.3 resync, the status) run against a fake order
// connection inside a testing/synctest bubble: virtual time, no broker, no
// sleeping. The same loop against the reference central over a real broker
// is TestResync.

var ctlKey = envelope.Signer{Kid: "PVG-W/g07", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}

// fakeConn is the order connection: always connected, every publish
// acknowledged at once and recorded.
type fakeConn struct {
	mu   sync.Mutex
	sent []sentMsg
}

type sentMsg struct {
	topic string
	at    time.Time
	data  []byte
}

type doneToken struct{ done chan struct{} }

func (t doneToken) Wait() bool                     { return true }
func (t doneToken) WaitTimeout(time.Duration) bool { return true }
func (t doneToken) Done() <-chan struct{}          { return t.done }
func (t doneToken) Error() error                   { return nil }

func newDoneToken() mqtt.Token {
	t := doneToken{done: make(chan struct{})}
	close(t.done)
	return t
}

func (c *fakeConn) IsConnected() bool   { return true }
func (c *fakeConn) Connect() mqtt.Token { return newDoneToken() }
func (c *fakeConn) Publish(topic string, _ byte, _ bool, payload any) mqtt.Token {
	c.mu.Lock()
	c.sent = append(c.sent, sentMsg{topic, time.Now(), payload.([]byte)})
	c.mu.Unlock()
	return newDoneToken()
}

// resyncs returns the resync requests published so far.
func (c *fakeConn) resyncs(t *testing.T) []customs.Resync {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []customs.Resync
	for _, m := range c.sent {
		if !strings.HasSuffix(m.topic, "/"+customs.LeafResync) {
			continue
		}
		payload, _, err := envelope.Keyring{ctlKey.Kid: ctlKey.Public()}.Open(m.data)
		if err != nil {
			t.Fatalf("resync not signed: %v", err)
		}
		var r customs.Resync
		if err := json.Unmarshal(payload, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

type fakeStore struct{ p persist.Progress }

func (s *fakeStore) Apply(persist.Batch) (persist.Result, error) { return persist.Result{}, nil }
func (s *fakeStore) Progress() (persist.Progress, error)         { return s.p, nil }

type fakeOutbox struct{ notify chan struct{} }

func (o *fakeOutbox) Pending(int, int) ([]persist.Entry, error) { return nil, nil }
func (o *fakeOutbox) Delivered([]persist.Entry) error           { return nil }
func (o *fakeOutbox) Notify() <-chan struct{}                   { return o.notify }
func (o *fakeOutbox) Depth() (int, int64)                       { return 0, 0 }

// controlRig starts the control loop of a link at watermark and head w,
// online on a fake connection, in the current synctest bubble.
func controlRig(t *testing.T, w uint64, gapGrace, resyncTimeout time.Duration) (*Link, *fakeConn) {
	t.Helper()
	return controlRigWith(t, &fakeStore{persist.Progress{Watermark: w, MaxSeq: w, Head: w}}, gapGrace, resyncTimeout)
}

// controlRigWith is controlRig on the given store.
func controlRigWith(t *testing.T, st Store, gapGrace, resyncTimeout time.Duration) (*Link, *fakeConn) {
	t.Helper()
	l, err := New(Options{Site: "PVG-W", Gateway: "g07", Signer: ctlKey, GapGrace: gapGrace, ResyncTimeout: resyncTimeout},
		st, &fakeOutbox{notify: make(chan struct{})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeConn{}
	l.conn = c
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { l.newControl().Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	l.setOnline(true)
	l.connected <- struct{}{}
	synctest.Wait()
	return l, c
}

// replayDone is central's replay_done for request id, up to upTo.
func replayDone(l *Link, id string, upTo uint64) { l.doneReq <- replayDoneMsg{id: id, upTo: upTo} }

// checkUndelivered checks the seqs held open as not delivered by a replay:
// the first run from..to (none when 0), in the snapshot, its alarm and
// its count.
func checkUndelivered(t *testing.T, l *Link, from, to uint64) {
	t.Helper()
	s := l.Snapshot()
	alarms := strings.Join(s.Alarms, "\n")
	if from == 0 {
		if s.UndeliveredOpen != 0 || len(s.Undelivered) != 0 || strings.Contains(alarms, "not delivered") {
			t.Errorf("undelivered %d %+v, alarms %q; want none", s.UndeliveredOpen, s.Undelivered, s.Alarms)
		}
		return
	}
	if len(s.Undelivered) == 0 || s.Undelivered[0].From != from || s.Undelivered[0].To != to || s.UndeliveredOpen < to-from+1 {
		t.Fatalf("undelivered %d %+v; want %d–%d", s.UndeliveredOpen, s.Undelivered, from, to)
	}
	if !strings.Contains(alarms, fmt.Sprintf("%d", from)) || !strings.Contains(alarms, "not delivered") {
		t.Errorf("alarms %q: none for seqs %d–%d", s.Alarms, from, to)
	}
	if s.Watermark >= from {
		t.Errorf("watermark %d at or above the undelivered seq %d", s.Watermark, from)
	}
}

// wantResyncs checks the resyncs published so far (from, to).
func wantResyncs(t *testing.T, c *fakeConn, when string, want ...[2]uint64) []customs.Resync {
	t.Helper()
	got := c.resyncs(t)
	var pairs [][2]uint64
	for _, r := range got {
		pairs = append(pairs, [2]uint64{r.FromSeq, r.ToSeq})
	}
	if len(pairs) != len(want) {
		t.Fatalf("%s: resyncs %v, want %v", when, pairs, want)
	}
	for i := range want {
		if pairs[i] != want[i] {
			t.Fatalf("%s: resyncs %v, want %v", when, pairs, want)
		}
	}
	return got
}

// TestControlGapGraceAndResyncTimeout: at connection resync(W+1, 0); a gap
// open for gap_grace (and not before) resync(W+1, top); with one
// outstanding no other; after resync_timeout without replay_done the
// resync again from S+1.
func TestControlGapGraceAndResyncTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grace, timeout = 2 * time.Second, 30 * time.Second
		l, c := controlRig(t, 10, grace, timeout)
		start := time.Now()
		got := wantResyncs(t, c, "at connection", [2]uint64{11, 0})
		replayDone(l, got[0].RequestID, 10) // replay_done: none outstanding
		synctest.Wait()

		// Central's head shows seqs 11..15: a gap, opened now.
		l.head.Store(15)
		l.committed <- persist.Result{}
		synctest.Wait()
		if s := l.Snapshot(); s.GapSince == nil {
			t.Fatalf("gap not seen: %+v", s)
		}
		time.Sleep(grace - 50*time.Millisecond)
		synctest.Wait()
		wantResyncs(t, c, "before gap_grace", [2]uint64{11, 0})
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		got = wantResyncs(t, c, "after gap_grace", [2]uint64{11, 0}, [2]uint64{11, 15})
		sentAt := start.Add(grace)

		// No replay_done: the gap stays open, yet nothing more goes out
		// until resync_timeout has passed since the resync (checked on the
		// control loop's 100ms round).
		time.Sleep(sentAt.Add(timeout).Sub(time.Now()) + 50*time.Millisecond)
		synctest.Wait()
		wantResyncs(t, c, "within resync_timeout", [2]uint64{11, 0}, [2]uint64{11, 15})
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		got = wantResyncs(t, c, "after resync_timeout", [2]uint64{11, 0}, [2]uint64{11, 15}, [2]uint64{11, 0})

		// The replay fills the gap and its replay_done comes: nothing more.
		l.watermark.Store(15)
		l.settled.Store(15)
		replayDone(l, got[2].RequestID, 15)
		time.Sleep(2 * timeout)
		synctest.Wait()
		wantResyncs(t, c, "gap filled", [2]uint64{11, 0}, [2]uint64{11, 15}, [2]uint64{11, 0})
	})
}

// TestControlRejectedAndReconnect: a rejected message asks for everything
// above W after gap_grace; a reconnection sends resync(W+1, 0) at once,
// replacing the one outstanding.
func TestControlRejectedAndReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grace, timeout = 500 * time.Millisecond, 10 * time.Second
		l, c := controlRig(t, 7, grace, timeout)
		got := wantResyncs(t, c, "at connection", [2]uint64{8, 0})
		replayDone(l, got[0].RequestID, 7)
		synctest.Wait()

		l.C.Rejected.Add(1)
		l.committed <- persist.Result{}
		synctest.Wait()
		time.Sleep(grace - 50*time.Millisecond)
		synctest.Wait()
		wantResyncs(t, c, "before gap_grace", [2]uint64{8, 0})
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		wantResyncs(t, c, "after gap_grace", [2]uint64{8, 0}, [2]uint64{8, 0})

		// Outstanding, the connection drops and comes back: at once again.
		l.setOnline(false)
		time.Sleep(time.Second)
		l.setOnline(true)
		l.connected <- struct{}{}
		synctest.Wait()
		wantResyncs(t, c, "after reconnection", [2]uint64{8, 0}, [2]uint64{8, 0}, [2]uint64{8, 0})
	})
}

// TestControlSetTimeouts: a reload's new gap_grace counts from the next
// round of the loop.
func TestControlSetTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, c := controlRig(t, 0, time.Minute, time.Hour)
		got := wantResyncs(t, c, "at connection", [2]uint64{1, 0})
		replayDone(l, got[0].RequestID, 0)
		l.head.Store(3)
		l.committed <- persist.Result{}
		synctest.Wait()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		wantResyncs(t, c, "within the old gap_grace", [2]uint64{1, 0})
		l.SetTimeouts(5*time.Second, time.Hour) // the gap is open 5s already
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		wantResyncs(t, c, "after the reload", [2]uint64{1, 0}, [2]uint64{1, 3})
	})
}
