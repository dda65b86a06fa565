package main

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/drivers"
	"github.com/cargogate/cargogate/gateway/arrival"
	"github.com/cargogate/cargogate/gateway/audit"
	"github.com/cargogate/cargogate/gateway/clock"
	"github.com/cargogate/cargogate/gateway/ident"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/station"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/link"
)

// stationSet runs the configured stations and applies a new station list
// on reload: a station whose configuration is unchanged keeps running (its
// ports stay open, no scan is lost); a changed one is stopped and started
// again; a removed one is stopped; a new one is started.
type stationSet struct {
	deps gatewayDeps
	st   *store.Store
	jr   *journal.Journal
	lk   *link.Link
	clk  *clock.Clock
	obs  tee
	log  *slog.Logger

	mu      sync.Mutex
	cfg     *config.Config
	running map[string]*runningStation
}

type runningStation struct {
	cfg    config.Station
	st     *station.Station
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *stationSet) config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// list returns the running stations in configuration order.
func (s *stationSet) list() []*station.Station {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*station.Station
	for _, sc := range s.cfg.Stations {
		if r, ok := s.running[sc.ID]; ok {
			out = append(out, r.st)
		}
	}
	return out
}

func (s *stationSet) build(cfg *config.Config, sc config.Station, cls *ident.Classifier) (*station.Station, error) {
	scanner, err := s.deps.registry.NewScanner(sc.Scanner)
	if err != nil {
		return nil, fmt.Errorf("station %q: scanner: %w", sc.ID, err)
	}
	var gate drivers.Gate
	if sc.Gate != nil {
		if gate, err = s.deps.registry.NewGate(*sc.Gate); err != nil {
			return nil, fmt.Errorf("station %q: gate: %w", sc.ID, err)
		}
	}
	var arr *arrival.Tracker
	if sc.Role == config.RoleArrival {
		if arr, err = arrival.New(sc.ID, sc.CloseAfter, s.jr, s.st); err != nil {
			return nil, err
		}
	}
	return station.New(station.Config{ID: sc.ID, Role: sc.Role, Classifier: cls, Scanner: scanner, Gate: gate,
		LookupTimeout: cfg.Central.LookupTimeout, Arrival: arr}, s.st, s.jr, s.lk, s.clk, s.obs, s.log), nil
}

// apply makes the running stations those of cfg. Every new station is
// built before any is stopped, so a bad driver setting changes nothing.
func (s *stationSet) apply(ctx context.Context, g *errgroup.Group, cfg *config.Config, cls *ident.Classifier) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]config.Station{}
	built := map[string]*station.Station{}
	for _, sc := range cfg.Stations {
		want[sc.ID] = sc
		if r, ok := s.running[sc.ID]; ok && reflect.DeepEqual(r.cfg, sc) {
			continue
		}
		st, err := s.build(cfg, sc, cls)
		if err != nil {
			return err
		}
		built[sc.ID] = st
	}
	for id, r := range s.running {
		if _, keep := want[id]; keep && built[id] == nil {
			r.st.SetClassifier(cls)
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
		r := &runningStation{cfg: want[id], st: built[id], cancel: cancel, done: make(chan struct{})}
		s.running[id] = r
		g.Go(func() error {
			defer close(r.done)
			return r.st.Run(sctx)
		})
		s.log.Info("station started", "station", id)
	}
	s.cfg = cfg
	return nil
}

// reload loads the configuration again (SIGHUP). Trusted keys, identifier
// patterns and stations change in place, without dropping the central
// link; keys that need a restart (site, gateway, data_dir, the broker, the
// HTTP server, the outbox bounds) must be unchanged. A configuration with
// any problem is refused whole: the old one stays, and the log says why.
func reload(ctx context.Context, g *errgroup.Group, path string, set *stationSet, lk *link.Link, insp *inspector, aud *audit.Log, log *slog.Logger) {
	refuse := func(why string, err error) {
		log.Error("configuration reload refused; keeping the running configuration", "why", why, "err", err)
		aud.Add(audit.KindConfig, map[string]any{"event": "reload refused", "why": why, "error": fmt.Sprint(err)})
	}
	cfg, err := config.Load(path)
	if err != nil {
		refuse("invalid configuration", err)
		return
	}
	old := set.config()
	for key, same := range map[string]bool{
		"site": cfg.Site == old.Site, "gateway": cfg.Gateway == old.Gateway, "data_dir": cfg.DataDir == old.DataDir,
		"central (other than keys and timeouts)": cfg.Central.Broker == old.Central.Broker && cfg.Central.Username == old.Central.Username &&
			cfg.Central.Password == old.Central.Password && cfg.Central.CAFile == old.Central.CAFile &&
			cfg.Central.CertFile == old.Central.CertFile && cfg.Central.KeyFile == old.Central.KeyFile,
		"http": reflect.DeepEqual(cfg.HTTP, old.HTTP), "outbox": reflect.DeepEqual(cfg.Outbox, old.Outbox),
		"log": reflect.DeepEqual(cfg.Log, old.Log),
	} {
		if !same {
			refuse(key+" changed: needs a restart", nil)
			return
		}
	}
	keys, err := envelope.ParseKeyring(cfg.Central.Keys)
	if err != nil {
		refuse("central.keys", err)
		return
	}
	cls, err := ident.New(cfg.Ident.ParcelPatterns, cfg.Ident.TransitPatterns, cfg.Ident.SealPatterns)
	if err != nil {
		refuse("identifiers", err)
		return
	}
	if err := set.apply(ctx, g, cfg, cls); err != nil {
		refuse("stations", err)
		return
	}
	lk.SetKeys(keys)
	insp.cls.Store(cls)
	log.Info("configuration reloaded", "digest", cfg.Digest(), "central_kids", sortedKeys(cfg.Central.Keys), "stations", len(cfg.Stations))
	aud.Add(audit.KindConfig, map[string]any{"event": "reloaded", "digest": cfg.Digest(), "central_kids": sortedKeys(cfg.Central.Keys)})
}
