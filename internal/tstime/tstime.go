// Package tstime is the time the gateway's loops run on: a Clock that tells
// the time and makes tickers and timers, after tailscale's tstime. Code that
// waits or measures takes a Clock (an Options field, nil meaning Std), so
// that a test can drive it; the real one is package time. Under
// testing/synctest the real one is already virtual inside the bubble, which
// is how the loops are tested: without sleeping and without a broker.
//
// This clock measures intervals; it is not the time floor decisions are
// judged at (gateway/clock).
package tstime

import (
	"context"
	"time"
)

// Clock tells the time and makes tickers and timers.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker and its channel (time.NewTicker).
	NewTicker(d time.Duration) (Ticker, <-chan time.Time)
	// NewTimer returns a timer and its channel (time.NewTimer).
	NewTimer(d time.Duration) (Timer, <-chan time.Time)
}

// Ticker is a running ticker.
type Ticker interface {
	Stop()
	Reset(d time.Duration)
}

// Timer is a running timer.
type Timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// Std is the real clock: package time.
type Std struct{}

// Now is time.Now.
func (Std) Now() time.Time { return time.Now() }

// NewTicker is time.NewTicker.
func (Std) NewTicker(d time.Duration) (Ticker, <-chan time.Time) {
	t := time.NewTicker(d)
	return t, t.C
}

// NewTimer is time.NewTimer.
func (Std) NewTimer(d time.Duration) (Timer, <-chan time.Time) {
	t := time.NewTimer(d)
	return t, t.C
}

// Or returns c, or Std when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Std{}
	}
	return c
}

// Since is the time elapsed on c since t.
func Since(c Clock, t time.Time) time.Duration { return c.Now().Sub(t) }

// After waits d on c, or until done is closed; it reports whether d passed.
// Unlike time.After, it stops its timer when done wins.
func After(c Clock, d time.Duration, done <-chan struct{}) bool {
	t, ch := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-done:
		return false
	}
}

var _ Clock = Std{}

// WithTimeout is context.WithTimeout on c: the context is done when c's
// timer of d fires, with Err context.DeadlineExceeded, and its Deadline is
// c.Now()+d. On Std it is context.WithTimeout itself.
func WithTimeout(parent context.Context, c Clock, d time.Duration) (context.Context, context.CancelFunc) {
	if _, std := c.(Std); std || c == nil {
		return context.WithTimeout(parent, d)
	}
	deadline := c.Now().Add(d)
	ctx, cancel := context.WithCancelCause(parent)
	t, fired := c.NewTimer(d)
	go func() {
		defer t.Stop()
		select {
		case <-fired:
			cancel(context.DeadlineExceeded)
		case <-ctx.Done():
		}
	}()
	return &clockCtx{Context: ctx, deadline: deadline}, func() { cancel(context.Canceled) }
}

// clockCtx is a context cancelled by a Clock's timer.
type clockCtx struct {
	context.Context
	deadline time.Time
}

func (c *clockCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *clockCtx) Err() error {
	err := c.Context.Err()
	if err != nil && context.Cause(c.Context) == context.DeadlineExceeded {
		return context.DeadlineExceeded
	}
	return err
}
