// Package clock is the one clock of the core. It judges expiry against a
// time floor: the latest of the wall clock and the newest central timestamp
// ever seen, so a clock set back by a bad NTP server cannot revive an expired
// release.
package clock

import (
	"sync"
	"time"
)

// Clock gives the time decisions are judged at.
type Clock struct {
	wall func() time.Time

	mu    sync.Mutex
	floor time.Time
	// seen is the latest wall clock reading: a wall clock set back cannot
	// revive a release the gateway already saw expire, even with no central
	// time since. The gateway persists Now() with the store (every batch
	// and every minute) and gives it back to Restore after a restart.
	seen time.Time
}

// New returns a clock over wall (time.Now when nil) with a starting floor
// (the persisted one; zero for none).
func New(wall func() time.Time, floor time.Time) *Clock {
	if wall == nil {
		wall = time.Now
	}
	return &Clock{wall: wall, floor: floor}
}

// Restore raises the latest wall clock reading to t, one persisted before
// a restart: the clock starts from max(stored floor, stored reading), so a
// wall clock set back while the gateway was down revives nothing. A time
// past 2200 is ignored, as by Observe.
func (c *Clock) Restore(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.seen) && t.Before(maxFloor) {
		c.seen = t
	}
}

// Wall is the wall clock.
func (c *Clock) Wall() time.Time { return c.wall() }

// Now is the latest of the wall clock, the floor and the latest wall
// clock reading seen (since the start, or restored).
func (c *Clock) Now() time.Time {
	w := c.wall().Round(0) // wall time: a monotonic reading would hide a set-back
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.After(c.seen) {
		c.seen = w
	}
	if c.floor.After(c.seen) {
		return c.floor
	}
	return c.seen
}

// Observe raises the floor to t, a timestamp central vouched for. It
// reports whether the floor moved.
func (c *Clock) Observe(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A time past maxFloor is no real timestamp (and would not survive
	// being stored as nanoseconds): it is ignored, not believed.
	if t.After(c.floor) && t.Before(maxFloor) {
		c.floor = t
		return true
	}
	return false
}

// maxFloor bounds the timestamps the floor takes.
var maxFloor = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// Floor returns the floor.
func (c *Clock) Floor() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.floor
}

// Behind reports how far the wall clock is behind Now (0 if not): behind
// the floor, or set back since a later reading.
func (c *Clock) Behind() time.Duration {
	w := c.wall().Round(0)
	d := c.Now().Sub(w)
	if d < 0 {
		return 0
	}
	return d
}
