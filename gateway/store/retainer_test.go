package store

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/clock"
)

// Retention judges age at the earlier of the wall clock and central's time:
// a wall clock jumped forward moves nothing, and with no central time there
// is no time to judge by.
func TestRetentionNow(t *testing.T) {
	central := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ahead := central.AddDate(1, 0, 0)
	if got := RetentionNow(clock.New(func() time.Time { return ahead }, central)); !got.Equal(central) {
		t.Errorf("wall a year ahead: %v, want central's %v", got, central)
	}
	behind := central.Add(-time.Hour)
	if got := RetentionNow(clock.New(func() time.Time { return behind }, central)); !got.Equal(behind) {
		t.Errorf("wall behind: %v, want the wall's %v", got, behind)
	}
	if got := RetentionNow(clock.New(func() time.Time { return ahead }, time.Time{})); !got.IsZero() {
		t.Errorf("no central time: %v, want zero", got)
	}
}

// KeepWall stores the clock's reading at shutdown (and every interval).
func TestKeepWall(t *testing.T) {
	st, _ := openTemp(t)
	wall := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.KeepWall(ctx, clock.New(func() time.Time { return wall }, time.Time{}), time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	if p, _ := st.Progress(); !p.Wall.Equal(wall) {
		t.Errorf("stored wall reading %v, want %v", p.Wall, wall)
	}
}

// prunes records the cutoffs the retainer prunes with.
type prunes struct {
	mu       sync.Mutex
	orders   []time.Time
	events   []time.Time
	batches  int // order batches to report before Done
	eventsN  []int
	orderErr error
	request  chan struct{}
}

func (p *prunes) Prune(wall time.Time, keep time.Duration, _ int) (PruneResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.orders = append(p.orders, wall.Add(-keep))
	if p.request != nil {
		select {
		case p.request <- struct{}{}:
		default:
		}
	}
	if p.orderErr != nil {
		return PruneResult{}, p.orderErr
	}
	if p.batches > 0 {
		p.batches--
		return PruneResult{Orders: 2000}, nil
	}
	return PruneResult{Done: true}, nil
}

func (p *prunes) PruneDelivered(before time.Time, _ int) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, before)
	if len(p.eventsN) > 0 {
		n := p.eventsN[0]
		p.eventsN = p.eventsN[1:]
		return n, nil
	}
	return 0, nil
}

// nowClock is a clock whose wall and central floor are both now.
type nowClock struct{}

func (nowClock) Wall() time.Time  { return time.Now() }
func (nowClock) Floor() time.Time { return time.Now() }

// fixedClock reads wall and floor as set.
type fixedClock struct{ wall, floor time.Time }

func (c fixedClock) Wall() time.Time  { return c.wall }
func (c fixedClock) Floor() time.Time { return c.floor }

// One round prunes orders until Done and events until none is left, with
// the policy's days counted back from min(wall, floor); with no central
// time it prunes nothing, and an error ends that part of the round.
func TestRetainerRound(t *testing.T) {
	floor := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	pol := Policy{OrdersDays: 30, EventsDays: 10, Interval: time.Hour}

	p := &prunes{batches: 2, eventsN: []int{5, 3}}
	NewRetainer(p, p, fixedClock{wall: floor.AddDate(1, 0, 0), floor: floor}, pol, nil).prune(context.Background())
	if len(p.orders) != 3 || len(p.events) != 3 {
		t.Fatalf("%d order and %d event calls, want 3 and 3", len(p.orders), len(p.events))
	}
	if want := floor.AddDate(0, 0, -30); !p.orders[0].Equal(want) {
		t.Errorf("orders cutoff %v, want %v", p.orders[0], want)
	}
	if want := floor.AddDate(0, 0, -10); !p.events[0].Equal(want) {
		t.Errorf("events cutoff %v, want %v", p.events[0], want)
	}

	p = &prunes{}
	NewRetainer(p, p, fixedClock{wall: floor}, pol, nil).prune(context.Background())
	if len(p.orders)+len(p.events) != 0 {
		t.Fatalf("pruned with no central time: %v %v", p.orders, p.events)
	}

	p = &prunes{orderErr: errors.New("disk"), eventsN: []int{1}}
	NewRetainer(p, p, fixedClock{wall: floor, floor: floor}, pol, slog.New(slog.DiscardHandler)).prune(context.Background())
	if len(p.orders) != 1 || len(p.events) != 2 {
		t.Fatalf("after an orders error: %d order and %d event calls, want 1 and 2", len(p.orders), len(p.events))
	}
}

// TestRetainFollowsReload changes the retention in force in place, as a
// reload does: once the loop runs, an interval of an hour, then 10 ms with
// other numbers of days; pruning then runs with the new days (the cutoffs
// say so, not the time taken).
func TestRetainFollowsReload(t *testing.T) {
	p := &prunes{request: make(chan struct{}, 1)}
	rt := NewRetainer(p, p, nowClock{}, Policy{OrdersDays: 30, EventsDays: 30, Interval: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-p.request:
		case <-time.After(20 * time.Second):
			t.Fatalf("no pruning: %s", what)
		}
	}
	wait("running")
	rt.SetPolicy(Policy{OrdersDays: 30, EventsDays: 30, Interval: time.Hour})
	set := time.Now()
	rt.SetPolicy(Policy{OrdersDays: 7, EventsDays: 3, Interval: 10 * time.Millisecond})
	if got := rt.Policy(); got.OrdersDays != 7 || got.EventsDays != 3 {
		t.Fatalf("policy in force %+v", got)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		wait("after the reload")
		p.mu.Lock()
		c, e := p.orders[len(p.orders)-1], p.events[len(p.events)-1]
		p.mu.Unlock()
		if !c.Before(set.AddDate(0, 0, -7)) && !e.Before(set.AddDate(0, 0, -3)) {
			if c.After(time.Now().AddDate(0, 0, -7)) || e.After(time.Now().AddDate(0, 0, -3)) {
				t.Fatalf("cutoffs %v and %v: later than 7 and 3 days ago", c, e)
			}
			return // 7 and 3 days before a pruning after the reload
		}
		if time.Now().After(deadline) {
			t.Fatalf("still pruning with cutoffs %v and %v after the reload to 7 and 3 days", c, e)
		}
	}
}

// CopyFile and CompactFile keep the orders; on a store a running gateway
// holds, they say ErrLocked.
func TestCopyAndCompactFile(t *testing.T) {
	s, src := openTemp(t)
	P := parcel("RR123456785CN")
	mustApply(t, s, orders(rel(1, P)))
	dir := t.TempDir()
	if err := CopyFile(src, filepath.Join(dir, "x.db")); !errors.Is(err, ErrLocked) {
		t.Errorf("CopyFile of a held store: %v, want ErrLocked", err)
	}
	if err := CompactFile(src, filepath.Join(dir, "y.db")); !errors.Is(err, ErrLocked) {
		t.Errorf("CompactFile of a held store: %v, want ErrLocked", err)
	}
	s.Close()
	cp, compact := filepath.Join(dir, "copy.db"), filepath.Join(dir, "compact.db")
	if err := CopyFile(src, cp); err != nil {
		t.Fatal(err)
	}
	if err := CompactFile(src, compact); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{cp, compact} {
		s, err := Open(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		o, found, err := s.Order(1)
		s.Close()
		if err != nil || !found || o.Subject != P {
			t.Fatalf("%s: order 1 %+v %v %v", p, o, found, err)
		}
	}
	if err := CopyFile(filepath.Join(dir, "none.db"), filepath.Join(dir, "z.db")); err == nil {
		t.Fatal("copy of a missing file")
	}
}
