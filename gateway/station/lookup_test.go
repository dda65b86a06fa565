package station

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
	"github.com/cargogate/cargogate/internal/tstime"
)

type unknownDecider struct{}

func (unknownDecider) Decide(customs.Subject, time.Time) rules.Decision {
	return rules.Decision{Reason: customs.ReasonUnknown}
}

// lookupLink records the deadline of each lookup.
type lookupLink struct{ deadlines []time.Duration }

func (*lookupLink) Online() bool      { return true }
func (*lookupLink) Watermark() uint64 { return 0 }
func (l *lookupLink) Lookup(ctx context.Context, _ customs.Subject) error {
	dl, _ := ctx.Deadline()
	l.deadlines = append(l.deadlines, time.Until(dl))
	return context.DeadlineExceeded
}

type fixedClock struct{}

func (fixedClock) Now() time.Time { return time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC) }

// TestSetLookupTimeout changes the lookup timeout of a station in place:
// lookups turned off, then on with a bound (the deadline the lookup is
// given, not how long it took).
func TestSetLookupTimeout(t *testing.T) {
	lk := &lookupLink{}
	s := New(Config{ID: "gate-3", LookupTimeout: 300 * time.Millisecond}, unknownDecider{}, nil, lk, fixedClock{}, nil, slog.New(slog.DiscardHandler))
	p := customs.Subject{Kind: customs.Parcel, ID: "RR000000001CN"}
	s.decide(context.Background(), p)
	if len(lk.deadlines) != 1 || lk.deadlines[0] > 300*time.Millisecond {
		t.Fatalf("configured 300ms: lookups %v", lk.deadlines)
	}
	s.SetLookupTimeout(-1)
	s.decide(context.Background(), p)
	if len(lk.deadlines) != 1 {
		t.Fatalf("lookups turned off: lookups %v", lk.deadlines)
	}
	s.SetLookupTimeout(time.Hour)
	s.decide(context.Background(), p)
	if len(lk.deadlines) != 2 || lk.deadlines[1] <= 300*time.Millisecond {
		t.Fatalf("an hour: lookups %v", lk.deadlines)
	}
	if got := s.LookupTimeout(); got != time.Hour {
		t.Fatalf("LookupTimeout %v", got)
	}
}

// firedClock is a tstime.Clock whose timers have fired already; it records
// the durations asked for.
type firedClock struct {
	mu    sync.Mutex
	asked []time.Duration
}

func (c *firedClock) Now() time.Time { return fixedClock{}.Now() }
func (c *firedClock) NewTicker(d time.Duration) (tstime.Ticker, <-chan time.Time) {
	t := time.NewTicker(time.Hour)
	return t, t.C
}
func (c *firedClock) NewTimer(d time.Duration) (tstime.Timer, <-chan time.Time) {
	c.mu.Lock()
	c.asked = append(c.asked, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return time.NewTimer(time.Hour), ch
}

func (c *firedClock) timers() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.asked)
}

// waitLink's lookups wait for their context and report its deadline.
type waitLink struct{ deadline time.Time }

func (*waitLink) Online() bool      { return true }
func (*waitLink) Watermark() uint64 { return 0 }
func (l *waitLink) Lookup(ctx context.Context, _ customs.Subject) error {
	l.deadline, _ = ctx.Deadline()
	<-ctx.Done()
	return ctx.Err()
}

// The lookup timeout runs on the station's injected clock (Config.Time),
// like its other waits: a lookup given an hour ends when that clock's
// timer fires, and its deadline is the clock's now plus the timeout.
func TestLookupTimeoutOnInjectedClock(t *testing.T) {
	clk := &firedClock{}
	lk := &waitLink{}
	s := New(Config{ID: "gate-3", LookupTimeout: 50 * time.Millisecond, Time: clk}, unknownDecider{}, nil, lk, fixedClock{}, nil, nil)
	d := s.decide(context.Background(), customs.Subject{Kind: customs.Parcel, ID: "RR000000001CN"})
	if d.Pass || d.Reason != customs.ReasonUnknown {
		t.Errorf("decision %+v, want STOP unknown", d)
	}
	if got := clk.timers(); !slices.Contains(got, 50*time.Millisecond) {
		t.Errorf("timers asked of the station's clock: %v, want the lookup timeout 50ms among them", got)
	}
	if want := clk.Now().Add(50 * time.Millisecond); !lk.deadline.Equal(want) {
		t.Errorf("lookup deadline %v, want %v (the injected clock's now + timeout)", lk.deadline, want)
	}
}
