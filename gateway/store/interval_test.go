package store

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cargogate/cargogate/gateway/clock"
)

// The retainer's interval in a testing/synctest bubble: pruning runs once
// per interval, not before; a reload's new interval counts from the
// reload, with the new days.
func TestRetainerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &prunes{}
		rt := NewRetainer(p, p, nowClock{}, Policy{OrdersDays: 30, EventsDays: 30, Interval: time.Hour}, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		start := time.Now()
		// rounds checks the number of pruning rounds so far and returns
		// their order and event cutoffs.
		rounds := func(when string, want int) (orders, events []time.Time) {
			t.Helper()
			synctest.Wait()
			p.mu.Lock()
			defer p.mu.Unlock()
			if len(p.orders) != want || len(p.events) != want {
				t.Fatalf("%s: %d order and %d event prunings, want %d", when, len(p.orders), len(p.events), want)
			}
			return append([]time.Time(nil), p.orders...), append([]time.Time(nil), p.events...)
		}
		time.Sleep(time.Hour - time.Second)
		rounds("before the interval", 0)
		time.Sleep(2 * time.Second)
		orders, _ := rounds("after the interval", 1)
		if c := orders[0]; !c.Equal(start.Add(time.Hour).AddDate(0, 0, -30)) {
			t.Errorf("orders cutoff %v, want 30 days before the round", c)
		}

		// At 1h30m a reload: every 10 minutes, 7 and 3 days.
		time.Sleep(29 * time.Minute)
		rt.SetPolicy(Policy{OrdersDays: 7, EventsDays: 3, Interval: 10 * time.Minute})
		reload := time.Now()
		time.Sleep(10*time.Minute - time.Second)
		rounds("before the new interval", 1)
		time.Sleep(2 * time.Second)
		orders, events := rounds("after the new interval", 2)
		round := reload.Add(10 * time.Minute)
		if c, e := orders[1], events[1]; !c.Equal(round.AddDate(0, 0, -7)) || !e.Equal(round.AddDate(0, 0, -3)) {
			t.Errorf("cutoffs after the reload %v and %v, want 7 and 3 days before %v", c, e, round)
		}
		time.Sleep(time.Hour)
		rounds("an hour later", 8)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// KeepWall stores the clock's reading every interval, in a
// testing/synctest bubble.
func TestKeepWallInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, err := Open(filepath.Join(t.TempDir(), "orders.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- st.KeepWall(ctx, clock.New(nil, time.Time{}), time.Minute, nil) }()
		wall := func() time.Time {
			synctest.Wait()
			p, err := st.Progress()
			if err != nil {
				t.Fatal(err)
			}
			return p.Wall
		}
		time.Sleep(59 * time.Second)
		if w := wall(); !w.IsZero() {
			t.Fatalf("stored %v before the interval", w)
		}
		time.Sleep(62 * time.Second) // 2m1s: the second round
		if w, want := wall(), start.Add(2*time.Minute); !w.Equal(want) {
			t.Fatalf("stored %v, want the reading of the round at %v", w, want)
		}
		time.Sleep(30 * time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if w, want := wall(), start.Add(151*time.Second); !w.Equal(want) {
			t.Fatalf("stored %v at the end, want %v", w, want)
		}
	})
}
