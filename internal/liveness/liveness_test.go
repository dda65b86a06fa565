package liveness

import (
	"slices"
	"testing"
	"time"
)

// A loop that stops ticking is stale once maxAge has passed; ticking makes
// it alive again; a loop that returned (Stop) is no longer watched; a nil
// registry and nil beats do nothing.
func TestStale(t *testing.T) {
	now := time.Unix(1000, 0)
	r := &Registry{Now: func() time.Time { return now }}
	link, st := r.Beat("link"), r.Beat("station g1")
	if s := r.Stale(time.Second); len(s) != 0 || r.Len() != 2 {
		t.Fatalf("fresh: stale %v, len %d", s, r.Len())
	}
	now = now.Add(2 * time.Second)
	link.Tick()
	if s := r.Stale(time.Second); !slices.Equal(s, []string{"station g1"}) {
		t.Fatalf("station not ticking: stale %v", s)
	}
	now = now.Add(2 * time.Second)
	if s := r.Stale(time.Second); !slices.Equal(s, []string{"link", "station g1"}) {
		t.Fatalf("neither ticking: stale %v", s)
	}
	st.Tick()
	st.Stop()
	link.Tick()
	if s := r.Stale(time.Second); len(s) != 0 || r.Len() != 1 {
		t.Fatalf("after ticks and a stop: stale %v, len %d", s, r.Len())
	}
	var nr *Registry
	b := nr.Beat("x")
	b.Tick()
	b.Stop()
	if nr.Stale(0) != nil || nr.Len() != 0 {
		t.Fatal("nil registry")
	}
}
