package station_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cargogate/cargogate/drivers"
	"github.com/cargogate/cargogate/gateway/ident"
	"github.com/cargogate/cargogate/gateway/station"
)

// scanners counts the scanners running, by station id.
type scanners struct {
	mu      sync.Mutex
	running map[string]int
}

func (s *scanners) get(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[id]
}

// countedScanner is running, for its station, while Run is.
type countedScanner struct {
	id string
	s  *scanners
	up chan struct{}
}

func (c countedScanner) Run(ctx context.Context, _ func(drivers.Read), _ drivers.StateFunc) error {
	c.s.mu.Lock()
	c.s.running[c.id]++
	c.s.mu.Unlock()
	close(c.up)
	<-ctx.Done()
	c.s.mu.Lock()
	c.s.running[c.id]--
	c.s.mu.Unlock()
	return nil
}

type setRig struct {
	t      *testing.T
	set    *station.Set
	g      *errgroup.Group
	ctx    context.Context
	sc     *scanners
	builds []string
	fail   string // build fails for this id
}

func newSetRig(t *testing.T) *setRig {
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	r := &setRig{t: t, set: station.NewSet(slog.New(slog.DiscardHandler)), g: g, ctx: gctx, sc: &scanners{running: map[string]int{}}}
	t.Cleanup(func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func (r *setRig) build(sp station.Spec) (*station.Station, error) {
	if sp.ID == r.fail {
		return nil, errors.New("no such port")
	}
	r.builds = append(r.builds, sp.ID)
	up := make(chan struct{})
	st := station.New(station.Config{ID: sp.ID, Role: "gate", Classifier: classifier(r.t), Scanner: countedScanner{sp.ID, r.sc, up},
		LookupTimeout: time.Second}, passAll{}, memJournal{}, nil, wallClock{}, nil, slog.New(slog.DiscardHandler))
	return st, nil
}

func (r *setRig) apply(specs ...station.Spec) error {
	r.t.Helper()
	r.builds = nil
	return r.set.Apply(r.ctx, r.g, specs, r.build)
}

func ids(sts []*station.Station) []string {
	var out []string
	for _, s := range sts {
		out = append(out, s.ID())
	}
	return out
}

// waitRunning waits until id has n scanners running; a station's scanner
// starts in its own goroutine after Apply returns.
func (r *setRig) waitRunning(id string, n int) {
	r.t.Helper()
	for deadline := time.Now().Add(wait); r.sc.get(id) != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("station %s: %d scanners running, want %d", id, r.sc.get(id), n)
		}
	}
}

// Apply starts new stations, keeps unchanged ones running (the same
// station, not rebuilt), restarts changed ones and stops removed ones.
func TestSetApply(t *testing.T) {
	r := newSetRig(t)
	if err := r.apply(station.Spec{ID: "a", Config: 1}, station.Spec{ID: "b", Config: 1}); err != nil {
		t.Fatal(err)
	}
	if got := ids(r.set.List()); !slices.Equal(got, []string{"a", "b"}) || !slices.Equal(r.builds, []string{"a", "b"}) {
		t.Fatalf("list %v, built %v", got, r.builds)
	}
	r.waitRunning("a", 1)
	r.waitRunning("b", 1)
	before := r.set.List()

	if err := r.apply(station.Spec{ID: "c", Config: 1}, station.Spec{ID: "a", Config: 1}, station.Spec{ID: "b", Config: 2}); err != nil {
		t.Fatal(err)
	}
	after := r.set.List()
	if got := ids(after); !slices.Equal(got, []string{"c", "a", "b"}) {
		t.Fatalf("list %v, want the specs' order", got)
	}
	if !slices.Equal(r.builds, []string{"c", "b"}) {
		t.Fatalf("built %v, want c (new) and b (changed)", r.builds)
	}
	if after[1] != before[0] {
		t.Fatal("unchanged station a was replaced")
	}
	if after[2] == before[1] {
		t.Fatal("changed station b was not rebuilt")
	}
	r.waitRunning("a", 1)
	r.waitRunning("b", 1) // the old b stopped before the new one started
	r.waitRunning("c", 1)

	if err := r.apply(station.Spec{ID: "a", Config: 1}); err != nil {
		t.Fatal(err)
	}
	if got := ids(r.set.List()); !slices.Equal(got, []string{"a"}) || len(r.builds) != 0 {
		t.Fatalf("list %v, built %v", got, r.builds)
	}
	// Apply returns once a removed station's loop has ended.
	if r.sc.get("b") != 0 || r.sc.get("c") != 0 {
		t.Fatalf("removed stations still running: b %d, c %d", r.sc.get("b"), r.sc.get("c"))
	}
	r.waitRunning("a", 1)
}

// A station that cannot be built fails the whole Apply before anything is
// stopped or started.
func TestSetApplyRefusedChangesNothing(t *testing.T) {
	r := newSetRig(t)
	if err := r.apply(station.Spec{ID: "a", Config: 1}, station.Spec{ID: "b", Config: 1}); err != nil {
		t.Fatal(err)
	}
	r.waitRunning("a", 1)
	r.waitRunning("b", 1)
	before := r.set.List()
	r.fail = "c"
	if err := r.apply(station.Spec{ID: "b", Config: 2}, station.Spec{ID: "c", Config: 1}); err == nil {
		t.Fatal("no error from a station that cannot be built")
	}
	if got := r.set.List(); !slices.Equal(got, before) {
		t.Fatalf("list %v after a refused apply, was %v", ids(got), ids(before))
	}
	if r.sc.get("a") != 1 || r.sc.get("b") != 1 || r.sc.get("c") != 0 {
		t.Fatalf("running a %d, b %d, c %d; want 1 1 0", r.sc.get("a"), r.sc.get("b"), r.sc.get("c"))
	}
}

// SetLookupTimeout and SetClassifier reach every running station.
func TestSetAppliesInPlace(t *testing.T) {
	r := newSetRig(t)
	if err := r.apply(station.Spec{ID: "a", Config: 1}, station.Spec{ID: "b", Config: 1}); err != nil {
		t.Fatal(err)
	}
	r.set.SetLookupTimeout(1500 * time.Millisecond)
	for _, s := range r.set.List() {
		if got := s.LookupTimeout(); got != 1500*time.Millisecond {
			t.Errorf("%s: lookup timeout %v", s.ID(), got)
		}
	}
	// A classifier that knows no parcel makes the parcel an invalid code.
	other, err := ident.New([]string{`^XX\d{3}$`}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.set.SetClassifier(other)
	for _, s := range r.set.List() {
		if out := scan(s, bag1); out.Pass || out.Reason != "invalid_code" {
			t.Errorf("%s: %s after SetClassifier: pass %v reason %s", s.ID(), bag1, out.Pass, out.Reason)
		}
	}
}
