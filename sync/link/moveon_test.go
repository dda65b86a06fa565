package link

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cargogate/cargogate/gateway/persist"
)

// TestControlMovesOnWhenCentralIsSilent: with a broker list, the third
// resync in a row unanswered for resync_timeout makes the order connection
// move on to the next broker (central may be on another of independent
// brokers), once; a replay_done resets the count; with a list of one
// (moveOn false) the resyncs simply go on.
func TestControlMovesOnWhenCentralIsSilent(t *testing.T) {
	for _, canMove := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			const timeout = 30 * time.Second
			l, err := New(Options{Site: "PVG-W", Gateway: "g07", Signer: ctlKey, GapGrace: time.Second, ResyncTimeout: timeout},
				&fakeStore{persist.Progress{Watermark: 10, MaxSeq: 10, Head: 10}}, &fakeOutbox{notify: make(chan struct{})}, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := &fakeConn{}
			l.conn = c
			var moved atomic.Int32
			ctl := l.newControl()
			ctl.moveOn = func() bool { moved.Add(1); return canMove }
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { ctl.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			l.setOnline(true)
			l.connected <- struct{}{}
			synctest.Wait()

			step := func(k int) { time.Sleep(time.Duration(k)*timeout + 200*time.Millisecond); synctest.Wait() }
			step(2) // two unanswered
			if n := moved.Load(); n != 0 {
				t.Fatalf("moved on %d times after two unanswered resyncs", n)
			}
			// Answered, then the connection comes up again: the count
			// starts again.
			got := c.resyncs(t)
			replayDone(l, got[len(got)-1].RequestID, 10)
			l.connected <- struct{}{}
			synctest.Wait()
			step(2)
			if n := moved.Load(); n != 0 {
				t.Fatalf("moved on %d times: the count did not start again", n)
			}
			step(1) // the third in a row
			if n := moved.Load(); n != 1 {
				t.Fatalf("moveOn called %d times after three unanswered resyncs, want 1", n)
			}
			// Resyncs: 3 before, then at the connection and two asked
			// again; moving on asks no more (the next goes out at the new
			// connection), a list of one asks again.
			n, want := len(c.resyncs(t)), 6
			if !canMove {
				want = 7
			}
			if n != want {
				t.Errorf("moveOn %v: %d resyncs, want %d", canMove, n, want)
			}
		})
	}
}
