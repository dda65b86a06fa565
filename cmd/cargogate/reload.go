package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"

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
	"github.com/cargogate/cargogate/internal/liveness"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/link"
)

// stations wires the configured stations into a station.Set: drivers from
// the registry, arrival trackers, the stores and the link. The set keeps a
// station whose configuration is unchanged running across a reload.
type stations struct {
	*station.Set
	deps gatewayDeps
	st   *store.Store
	jr   *journal.Journal
	lk   *link.Link
	clk  *clock.Clock
	obs  tee
	log  *slog.Logger
	live *liveness.Registry // the station loops' heartbeats
	// bindHandheld gives a handheld station's scanner to the page's hub.
	bindHandheld func(id string, h *drivers.Handheld)

	cfg atomic.Pointer[config.Config] // the configuration in force
}

func (s *stations) config() *config.Config { return s.cfg.Load() }

func (s *stations) build(cfg *config.Config, sc config.Station, cls *ident.Classifier) (*station.Station, error) {
	scanner, err := s.deps.registry.NewScanner(sc.Scanner)
	if err != nil {
		return nil, fmt.Errorf("station %q: scanner: %w", sc.ID, err)
	}
	if hh, ok := scanner.(*drivers.Handheld); ok && s.bindHandheld != nil {
		s.bindHandheld(sc.ID, hh)
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
		LookupTimeout: cfg.Central.LookupTimeout, Arrival: arr, Liveness: s.live}, s.st, s.jr, s.lk, s.clk, s.obs, s.log), nil
}

// apply makes the running stations those of cfg (station.Set.Apply: a bad
// driver setting changes nothing) and gives them cls and cfg's lookup
// timeout.
func (s *stations) apply(ctx context.Context, g *errgroup.Group, cfg *config.Config, cls *ident.Classifier) error {
	specs := make([]station.Spec, 0, len(cfg.Stations))
	for _, sc := range cfg.Stations {
		specs = append(specs, station.Spec{ID: sc.ID, Config: sc})
	}
	err := s.Apply(ctx, g, specs, func(sp station.Spec) (*station.Station, error) {
		return s.build(cfg, sp.Config.(config.Station), cls)
	})
	if err != nil {
		return err
	}
	s.SetClassifier(cls)
	s.SetLookupTimeout(cfg.Central.LookupTimeout)
	s.cfg.Store(cfg)
	return nil
}

// reload loads the configuration again (SIGHUP). Every key is either
// applied in place (config.AppliedKeys: central keys and timeouts, retention,
// identifier patterns, stations, without dropping the central link) or
// needs a restart (config.RestartKeys), and then must be unchanged. A
// configuration with any problem is refused whole: the old one stays in
// force, and the log and the audit log say why.
func reload(ctx context.Context, g *errgroup.Group, path string, set *stations, lk *link.Link, ret *store.Retainer, insp *inspector, aud *audit.Log, log *slog.Logger) {
	refuse := func(why string, err error) {
		log.Error("configuration reload refused: "+why+"; keeping the running configuration", "err", err)
		aud.Add(audit.KindConfig, map[string]any{"event": "reload refused", "why": why, "error": fmt.Sprint(err)})
	}
	cfg, err := config.Load(path)
	if err != nil {
		refuse("invalid configuration", err)
		return
	}
	if key := config.RestartNeeded(set.config(), cfg); key != "" {
		refuse(key+" changed; restart needed", nil)
		return
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
	// Nothing can fail after the stations are in place.
	if err := set.apply(ctx, g, cfg, cls); err != nil {
		refuse("stations", err)
		return
	}
	lk.SetKeys(keys)
	lk.SetTimeouts(cfg.Central.GapGrace, cfg.Central.ResyncTimeout)
	ret.SetPolicy(retentionPolicy(cfg.Retention))
	insp.cls.Store(cls)
	log.Info("configuration reloaded", "digest", cfg.Digest(), "central_kids", sortedKeys(cfg.Central.Keys), "stations", len(cfg.Stations))
	aud.Add(audit.KindConfig, map[string]any{"event": "reloaded", "digest": cfg.Digest(), "central_kids": sortedKeys(cfg.Central.Keys)})
}

// sortedKeys are the keys of m, sorted.
func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
