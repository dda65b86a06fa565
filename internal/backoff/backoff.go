// Package backoff computes capped, jittered delays between reconnection
// attempts: the drivers' device connections and the events connection
// (sync/outbox) share it. Wait waits on the Backoff's Time, the caller's
// injected clock (nil: package time).
package backoff

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/cargogate/cargogate/internal/tstime"
)

// Defaults used by the drivers: 100ms doubling up to 10s (config key
// reconnect_max), ±20% jitter.
const (
	DefaultMin    = 100 * time.Millisecond
	DefaultMax    = 10 * time.Second
	DefaultJitter = 0.2
)

// Backoff yields delays Min, 2·Min, 4·Min, … capped at Max, each scaled by a
// random factor in [1−Jitter, 1+Jitter] and then clamped to [0, Max]. The
// zero value uses the defaults. A Backoff is not safe for concurrent use: each
// reconnect loop owns one.
type Backoff struct {
	Min    time.Duration // first delay; 0: DefaultMin
	Max    time.Duration // cap, jitter included; 0: DefaultMax
	Jitter float64       // fraction, 0 ≤ Jitter ≤ 1; 0: DefaultJitter, negative: none
	// Rand returns a number in [0, 1); nil: math/rand/v2.Float64. Tests set it.
	Rand func() float64
	// Time is the clock Wait waits on; nil: the real one.
	Time tstime.Clock

	cur time.Duration // base of the next delay; 0: Min
}

// Capped returns the drivers' backoff with the cap max (0: DefaultMax). A
// cap below DefaultMin lowers the first delay to it, so that a test may
// reconnect every few milliseconds.
func Capped(max time.Duration) Backoff {
	if max <= 0 {
		max = DefaultMax
	}
	return Backoff{Min: min(DefaultMin, max), Max: max}
}

// Cap is the longest delay b yields.
func (b *Backoff) Cap() time.Duration {
	_, hi, _ := b.limits()
	return hi
}

func (b *Backoff) limits() (lo, hi time.Duration, j float64) {
	lo, hi, j = b.Min, b.Max, b.Jitter
	if lo <= 0 {
		lo = DefaultMin
	}
	if hi <= 0 {
		hi = DefaultMax
	}
	if hi < lo {
		hi = lo
	}
	switch {
	case j == 0:
		j = DefaultJitter
	case j < 0:
		j = 0
	case j > 1:
		j = 1
	}
	return lo, hi, j
}

// Next returns the delay before the next attempt and advances the sequence.
func (b *Backoff) Next() time.Duration {
	lo, hi, j := b.limits()
	base := b.cur
	if base < lo {
		base = lo
	}
	if base > hi {
		base = hi
	}
	if base < hi/2 {
		b.cur = base * 2
	} else {
		b.cur = hi
	}
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	f := 1 + j*(2*r()-1) // in [1−j, 1+j)
	d := time.Duration(float64(base) * f)
	if d > hi {
		d = hi
	}
	if d < 0 {
		d = 0
	}
	return d
}

// Reset starts the sequence again at Min, after a connection that worked.
func (b *Backoff) Reset() { b.cur = 0 }

// Wait sleeps for Next() or until ctx is done; it reports whether the full
// delay elapsed (false: ctx is done, the caller should return).
func (b *Backoff) Wait(ctx context.Context) bool {
	return tstime.After(tstime.Or(b.Time), b.Next(), ctx.Done())
}
