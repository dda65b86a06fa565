package station

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
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
