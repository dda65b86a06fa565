package station

import (
	"context"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/cargogate/cargogate/gateway/ident"
)

// Spec is one configured station: its id and the configuration it is
// built from. A station whose Config is unchanged (reflect.DeepEqual)
// keeps running across Apply.
type Spec struct {
	ID     string
	Config any
}

// Factory builds a station from its spec: the caller's wiring of drivers,
// arrival tracking and the stores. It starts nothing.
type Factory func(Spec) (*Station, error)

// Group runs the stations' loops; the caller waits on it (an
// errgroup.Group).
type Group interface {
	Go(func() error)
}

// Set runs the configured stations and applies a new station list on
// reload: a station whose configuration is unchanged keeps running (its
// ports stay open, no scan is lost); a changed one is stopped and started
// again; a removed one is stopped; a new one is started.
type Set struct {
	log *slog.Logger

	mu      sync.Mutex
	order   []string // the ids of the specs last applied, in their order
	running map[string]*running
}

type running struct {
	spec   Spec
	st     *Station
	cancel context.CancelFunc
	done   chan struct{}
}

// NewSet returns an empty set; log may be nil.
func NewSet(log *slog.Logger) *Set {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Set{log: log, running: map[string]*running{}}
}

// Apply makes the running stations those of specs, building the new and
// changed ones with build and running them in g under ctx. Every new
// station is built before any is stopped, so a bad driver setting returns
// an error and changes nothing.
func (s *Set) Apply(ctx context.Context, g Group, specs []Spec, build Factory) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]Spec{}
	built := map[string]*Station{}
	for _, sp := range specs {
		want[sp.ID] = sp
		if r, ok := s.running[sp.ID]; ok && reflect.DeepEqual(r.spec.Config, sp.Config) {
			continue
		}
		st, err := build(sp)
		if err != nil {
			return err
		}
		built[sp.ID] = st
	}
	for id, r := range s.running {
		if _, keep := want[id]; keep && built[id] == nil {
			continue
		}
		r.cancel()
		<-r.done
		delete(s.running, id)
		s.log.Info("station stopped", "station", id)
	}
	ids := make([]string, 0, len(built))
	for id := range built {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		sctx, cancel := context.WithCancel(ctx)
		r := &running{spec: want[id], st: built[id], cancel: cancel, done: make(chan struct{})}
		s.running[id] = r
		g.Go(func() error {
			defer close(r.done)
			return r.st.Run(sctx)
		})
		s.log.Info("station started", "station", id)
	}
	s.order = s.order[:0]
	for _, sp := range specs {
		s.order = append(s.order, sp.ID)
	}
	return nil
}

// List returns the running stations in the order of the specs applied.
func (s *Set) List() []*Station {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Station
	for _, id := range s.order {
		if r, ok := s.running[id]; ok {
			out = append(out, r.st)
		}
	}
	return out
}

// SetClassifier gives every running station the identifier patterns c
// (config reload).
func (s *Set) SetClassifier(c *ident.Classifier) {
	for _, st := range s.List() {
		st.SetClassifier(c)
	}
}

// SetLookupTimeout gives every running station the lookup timeout d
// (config reload).
func (s *Set) SetLookupTimeout(d time.Duration) {
	for _, st := range s.List() {
		st.SetLookupTimeout(d)
	}
}
