package tstime

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// After waits d on the clock, or less when done closes first; Std's
// tickers and timers are package time's, virtual in a synctest bubble.
func TestStdAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := Or(nil)
		start := c.Now()
		if !After(c, time.Minute, nil) || Since(c, start) != time.Minute {
			t.Fatalf("After a minute: %v elapsed", Since(c, start))
		}
		done := make(chan struct{})
		go func() { time.Sleep(time.Second); close(done) }()
		start = c.Now()
		if After(c, time.Hour, done) || Since(c, start) != time.Second {
			t.Fatalf("After with done closed at 1s: %v elapsed", Since(c, start))
		}
		tk, ch := c.NewTicker(time.Second)
		defer tk.Stop()
		<-ch
		tk.Reset(time.Minute)
		start = c.Now()
		if at := <-ch; at.Sub(start) != time.Minute {
			t.Fatalf("ticker reset to a minute ticked after %v", at.Sub(start))
		}
	})
}

// manualClock's timers fire when the test says.
type manualClock struct{ fire chan time.Time }

func (c manualClock) Now() time.Time { return time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC) }
func (c manualClock) NewTicker(time.Duration) (Ticker, <-chan time.Time) {
	panic("no ticker")
}
func (c manualClock) NewTimer(time.Duration) (Timer, <-chan time.Time) {
	return time.NewTimer(time.Hour), c.fire
}

// WithTimeout on a clock: done when the clock's timer fires, with
// DeadlineExceeded and the clock's deadline; cancel and the parent's end
// give Canceled; on Std it is context.WithTimeout.
func TestWithTimeout(t *testing.T) {
	c := manualClock{fire: make(chan time.Time, 1)}
	ctx, cancel := WithTimeout(context.Background(), c, time.Minute)
	defer cancel()
	if dl, ok := ctx.Deadline(); !ok || !dl.Equal(c.Now().Add(time.Minute)) {
		t.Errorf("deadline %v %v, want the clock's now + 1m", dl, ok)
	}
	if ctx.Err() != nil {
		t.Fatalf("done before the timer fired: %v", ctx.Err())
	}
	c.fire <- c.Now()
	<-ctx.Done()
	if ctx.Err() != context.DeadlineExceeded {
		t.Errorf("Err %v after the timer, want DeadlineExceeded", ctx.Err())
	}

	ctx, cancel = WithTimeout(context.Background(), c, time.Minute)
	cancel()
	<-ctx.Done()
	if ctx.Err() != context.Canceled {
		t.Errorf("Err %v after cancel, want Canceled", ctx.Err())
	}

	parent, stop := context.WithCancel(context.Background())
	ctx, cancel = WithTimeout(parent, c, time.Minute)
	defer cancel()
	stop()
	<-ctx.Done()
	if ctx.Err() != context.Canceled {
		t.Errorf("Err %v after the parent's end, want Canceled", ctx.Err())
	}

	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := WithTimeout(context.Background(), Std{}, time.Minute)
		defer cancel()
		start := time.Now()
		<-ctx.Done()
		if ctx.Err() != context.DeadlineExceeded || time.Since(start) != time.Minute {
			t.Errorf("Std: %v after %v", ctx.Err(), time.Since(start))
		}
	})
}
