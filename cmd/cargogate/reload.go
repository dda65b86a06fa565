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
			r.st.SetLookupTimeout(cfg.Central.LookupTimeout)
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

// restartKeys are the configuration keys a running gateway cannot take
// on: a reload that changes one is refused whole, naming it. Every other
// key is applied in place by reload (appliedKeys).
var restartKeys = []struct {
	key  string
	same func(a, b *config.Config) bool
}{
	{"site", func(a, b *config.Config) bool { return a.Site == b.Site }},
	{"gateway", func(a, b *config.Config) bool { return a.Gateway == b.Gateway }},
	{"data_dir", func(a, b *config.Config) bool { return a.DataDir == b.DataDir }},
	{"central.broker", func(a, b *config.Config) bool { return a.Central.Broker == b.Central.Broker }},
	{"central.username", func(a, b *config.Config) bool { return a.Central.Username == b.Central.Username }},
	{"central.password", func(a, b *config.Config) bool { return a.Central.Password == b.Central.Password }},
	{"central.ca_file", func(a, b *config.Config) bool { return a.Central.CAFile == b.Central.CAFile }},
	{"central.cert_file", func(a, b *config.Config) bool { return a.Central.CertFile == b.Central.CertFile }},
	{"central.key_file", func(a, b *config.Config) bool { return a.Central.KeyFile == b.Central.KeyFile }},
	{"http.listen", func(a, b *config.Config) bool { return a.HTTP.Listen == b.HTTP.Listen }},
	{"http.allowed_origins", func(a, b *config.Config) bool { return slices.Equal(a.HTTP.AllowedOrigins, b.HTTP.AllowedOrigins) }},
	{"http.token", func(a, b *config.Config) bool { return a.HTTP.Token == b.HTTP.Token }},
	{"log.level", func(a, b *config.Config) bool { return a.Log.Level == b.Log.Level }},
	{"log.format", func(a, b *config.Config) bool { return a.Log.Format == b.Log.Format }},
	{"outbox.max_events", func(a, b *config.Config) bool { return a.Outbox.MaxEvents == b.Outbox.MaxEvents }},
	{"outbox.max_bytes", func(a, b *config.Config) bool { return a.Outbox.MaxBytes == b.Outbox.MaxBytes }},
	{"outbox.alarm_percent", func(a, b *config.Config) bool { return a.Outbox.AlarmPercent == b.Outbox.AlarmPercent }},
	{"outbox.redeliver_window", func(a, b *config.Config) bool { return a.Outbox.RedeliverWindow == b.Outbox.RedeliverWindow }},
}

// appliedKeys are the keys reload applies in place.
var appliedKeys = []string{
	"central.keys", "central.gap_grace", "central.resync_timeout", "central.lookup_timeout",
	"retention.orders_days", "retention.events_days", "retention.interval",
	"identifiers", "stations",
}

// restartNeeded returns the first key that differs between old and cfg
// and needs a restart, or "".
func restartNeeded(old, cfg *config.Config) string {
	for _, k := range restartKeys {
		if !k.same(old, cfg) {
			return k.key
		}
	}
	return ""
}

// reload loads the configuration again (SIGHUP). Every key is either
// applied in place (appliedKeys: central keys and timeouts, retention,
// identifier patterns, stations, without dropping the central link) or
// needs a restart (restartKeys), and then must be unchanged. A
// configuration with any problem is refused whole: the old one stays in
// force, and the log and the audit log say why.
func reload(ctx context.Context, g *errgroup.Group, path string, set *stationSet, lk *link.Link, ret *retention, insp *inspector, aud *audit.Log, log *slog.Logger) {
	refuse := func(why string, err error) {
		log.Error("configuration reload refused: "+why+"; keeping the running configuration", "err", err)
		aud.Add(audit.KindConfig, map[string]any{"event": "reload refused", "why": why, "error": fmt.Sprint(err)})
	}
	cfg, err := config.Load(path)
	if err != nil {
		refuse("invalid configuration", err)
		return
	}
	if key := restartNeeded(set.config(), cfg); key != "" {
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
	ret.set(cfg.Retention)
	insp.cls.Store(cls)
	log.Info("configuration reloaded", "digest", cfg.Digest(), "central_kids", sortedKeys(cfg.Central.Keys), "stations", len(cfg.Stations))
	aud.Add(audit.KindConfig, map[string]any{"event": "reloaded", "digest": cfg.Digest(), "central_kids": sortedKeys(cfg.Central.Keys)})
}
