package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/cargogate/cargogate/internal/tstime"
)

func TestBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		rnd  float64
	}{
		{"lowest", 0},
		{"middle", 0.5},
		{"highest", 0.999999},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{Rand: func() float64 { return tc.rnd }}
			base := DefaultMin
			for i := range 20 {
				d := b.Next()
				lo := time.Duration(float64(base) * (1 - DefaultJitter))
				hi := min(time.Duration(float64(base)*(1+DefaultJitter)), DefaultMax)
				if d < lo || d > hi {
					t.Fatalf("attempt %d: delay %v outside [%v, %v]", i, d, lo, hi)
				}
				if d > DefaultMax {
					t.Fatalf("attempt %d: delay %v above cap %v", i, d, DefaultMax)
				}
				base = min(base*2, DefaultMax)
			}
		})
	}
}

func TestDoublesThenCaps(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 5 * time.Second, Jitter: -1}
	want := []time.Duration{1, 2, 4, 5, 5, 5}
	for i, w := range want {
		if d := b.Next(); d != w*time.Second {
			t.Fatalf("attempt %d: got %v, want %v", i, d, w*time.Second)
		}
	}
	b.Reset()
	if d := b.Next(); d != time.Second {
		t.Fatalf("after Reset: got %v, want 1s", d)
	}
}

func TestJitterVaries(t *testing.T) {
	// The default source: every delay stays within bounds, and not all equal.
	seen := map[time.Duration]bool{}
	for range 50 {
		b := Backoff{}
		d := b.Next()
		if d < 80*time.Millisecond || d > 120*time.Millisecond {
			t.Fatalf("first delay %v outside [80ms, 120ms]", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatalf("50 first delays all equal: no jitter")
	}
}

func TestWaitCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := Backoff{Min: time.Hour, Max: time.Hour}
	if b.Wait(ctx) {
		t.Fatal("Wait on a done context reported a full delay")
	}
}

func TestCapped(t *testing.T) {
	for _, tc := range []struct {
		max, wantMin, wantCap time.Duration
	}{
		{0, DefaultMin, DefaultMax},
		{30 * time.Second, DefaultMin, 30 * time.Second},
		{time.Millisecond, time.Millisecond, time.Millisecond},
	} {
		b := Capped(tc.max)
		if b.Cap() != tc.wantCap {
			t.Errorf("Capped(%v).Cap() = %v, want %v", tc.max, b.Cap(), tc.wantCap)
		}
		for range 10 {
			if d := b.Next(); d > tc.wantCap {
				t.Errorf("Capped(%v): delay %v above the cap", tc.max, d)
			}
		}
		if b.Min != tc.wantMin {
			t.Errorf("Capped(%v).Min = %v, want %v", tc.max, b.Min, tc.wantMin)
		}
	}
}

// firedClock is a tstime.Clock whose timers have fired already; it records
// the durations asked for.
type firedClock struct{ asked []time.Duration }

func (c *firedClock) Now() time.Time { return time.Time{} }
func (c *firedClock) NewTicker(d time.Duration) (tstime.Ticker, <-chan time.Time) {
	panic("no ticker")
}
func (c *firedClock) NewTimer(d time.Duration) (tstime.Timer, <-chan time.Time) {
	c.asked = append(c.asked, d)
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return time.NewTimer(time.Hour), ch
}

// Wait waits on the Backoff's clock (the caller's injected one), not on
// package time: an hour-long delay returns at once on a clock whose timers
// have fired.
func TestWaitOnClock(t *testing.T) {
	clk := &firedClock{}
	b := Backoff{Min: time.Hour, Max: time.Hour, Jitter: -1, Time: clk}
	if !b.Wait(context.Background()) {
		t.Fatal("Wait reported ctx done")
	}
	if len(clk.asked) != 1 || clk.asked[0] != time.Hour {
		t.Errorf("timers asked of the clock: %v, want [1h]", clk.asked)
	}
}
