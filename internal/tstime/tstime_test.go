package tstime

import (
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
