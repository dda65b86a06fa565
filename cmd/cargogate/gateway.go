package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/drivers"
	"github.com/cargogate/cargogate/gateway/audit"
	"github.com/cargogate/cargogate/gateway/clock"
	"github.com/cargogate/cargogate/gateway/ident"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/screens"
	"github.com/cargogate/cargogate/gateway/station"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/internal/liveness"
	"github.com/cargogate/cargogate/internal/metrics"
	"github.com/cargogate/cargogate/internal/opsapi"
	"github.com/cargogate/cargogate/internal/sdnotify"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/link"
)

const (
	pairedFile  = "paired.json"
	keyFile     = "gateway.key"
	ordersFile  = "orders.db"
	journalFile = "events.db"
	auditFile   = "audit.db"
)

// gatewayDeps lets the demo swap in simulated devices; zero is production.
type gatewayDeps struct {
	registry *drivers.Registry
	// ready is called with the HTTP address once everything is started.
	ready func(httpAddr string, gw *gatewayParts)
	// observer hears every outcome besides the screens.
	observer station.Observer
	// reload asks for the configuration at configPath to be loaded again
	// (SIGHUP); nil: no reloads.
	reload     <-chan struct{}
	configPath string
}

// tee passes outcomes to several observers.
type tee []station.Observer

func (t tee) Decided(o station.Outcome) {
	for _, x := range t {
		x.Decided(o)
	}
}

func (t tee) Device(st, dev string, state drivers.State, detail string) {
	for _, x := range t {
		x.Device(st, dev, state, detail)
	}
}

type gatewayParts struct {
	signer    envelope.Signer
	link      *link.Link
	store     *store.Store
	stations  *stations
	retention *store.Retainer
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs a gateway until ctx is done: config → store → link → stations
// → screens.
func serve(ctx context.Context, cfg *config.Config, deps gatewayDeps, stdout, stderr io.Writer) error {
	log := newLogger(cfg.Log, stderr).With("site", cfg.Site, "gateway", cfg.Gateway)
	for _, w := range cfg.Warnings() {
		log.Warn("configuration: " + w)
	}
	if deps.registry == nil {
		deps.registry = drivers.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	removeStaleTemps(cfg.DataDir, log)
	key, created, err := envelope.LoadOrCreateKey(filepath.Join(cfg.DataDir, keyFile))
	if err != nil {
		return err
	}
	signer := envelope.Signer{Kid: cfg.Site + "/" + cfg.Gateway, Key: key}
	if created {
		log.Info("made a new gateway key", "kid", signer.Kid, "public_key", envelope.EncodePublicKey(signer.Public()))
	}
	keys, err := envelope.ParseKeyring(cfg.Central.Keys)
	if err != nil {
		return fmt.Errorf("central.keys: %w", err)
	}
	var stOpts store.Options
	// A test knob: the order store's initial memory map in bytes, so that
	// a test can make bbolt remap it (production maps 1 GiB up front).
	if v, err := strconv.Atoi(os.Getenv("CARGOGATE_TEST_STORE_MMAP")); err == nil && v > 0 {
		stOpts.InitialMmapSize = v
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, ordersFile), stOpts)
	if err != nil {
		return err
	}
	defer st.Close()
	jr, err := journal.Open(filepath.Join(cfg.DataDir, journalFile), journal.Options{KeepDelivered: true,
		MaxEvents: cfg.Outbox.MaxEvents, MaxBytes: int64(cfg.Outbox.MaxBytes), AlarmPercent: cfg.Outbox.AlarmPercent, Log: log})
	if err != nil {
		return err
	}
	defer jr.Close()
	aud, err := audit.Open(filepath.Join(cfg.DataDir, auditFile), log)
	if err != nil {
		return err
	}
	defer aud.Close()
	aud.Add(audit.KindStart, map[string]any{"version": version, "kid": signer.Kid, "config": cfg.Digest()})
	if created {
		aud.Add(audit.KindKey, map[string]any{"event": "gateway key made", "kid": signer.Kid, "public_key": envelope.EncodePublicKey(signer.Public())})
	}
	aud.Add(audit.KindConfig, map[string]any{"event": "loaded", "digest": cfg.Digest(), "central_kids": sortedKeys(cfg.Central.Keys)})
	prog, err := st.Progress()
	if err != nil {
		return err
	}
	clk := clock.New(nil, prog.Floor)
	clk.Restore(prog.Wall) // max(stored floor, stored wall reading)
	var tlsCfg *tls.Config
	brokers := cfg.Central.BrokerURLs() // one scheme for all (config)
	if len(brokers) > 0 && strings.HasPrefix(brokers[0], "ssl://") {
		if tlsCfg, err = loadTLS(cfg.Central); err != nil {
			return err
		}
	}
	// The link's and the stations' loops tick it; systemd's watchdog is
	// fed only while they all turn (watchdog below).
	live := &liveness.Registry{}
	lk, err := link.New(link.Options{Site: cfg.Site, Gateway: cfg.Gateway, Brokers: brokers,
		Username: cfg.Central.Username, Password: cfg.Central.Password, TLS: tlsCfg, Keys: keys, Signer: signer,
		Version: version, GapGrace: cfg.Central.GapGrace, ResyncTimeout: cfg.Central.ResyncTimeout,
		AckTimeout: cfg.Central.AckTimeout, Log: log, Audit: aud.Add, Liveness: live}, st, jr, clk)
	if err != nil {
		return err
	}
	cls, err := ident.New(cfg.Ident.ParcelPatterns, cfg.Ident.TransitPatterns, cfg.Ident.SealPatterns)
	if err != nil {
		return fmt.Errorf("identifiers: %w", err)
	}

	set := &stations{Set: station.NewSet(log), deps: deps, st: st, jr: jr, lk: lk, clk: clk, log: log, live: live}
	met := metrics.New(lk, st.Path(), jr.Path(), aud.Path())
	met.BuildInfo(version, orUnknown(commit), orUnknown(buildDate), runtime.Version())
	met.CounterFunc("cargogate_audit_lost_total",
		"Audit records the log could not take (queue full, commit failed); gap records in the chain stand for them.",
		func() float64 { return float64(aud.Lost()) })
	ops := opsapi.New(opsapi.Options{Backups: []opsapi.Backup{{Name: ordersFile, File: st}, {Name: journalFile, File: jr},
		{Name: auditFile, File: aud}}, Journal: jr, Audit: aud, Pub: signer.Public(), Dir: cfg.DataDir,
		Stall: cfg.HTTP.StreamStall, Log: log, VerifyEvery: verifyEvery})
	insp := &inspector{st: st, lk: lk, clk: clk}
	insp.cls.Store(cls)
	sizes := metrics.NewSizes(st.Path(), jr.Path(), aud.Path())
	hub := screens.New(screens.Options{Log: log, Status: func() any {
		c := set.config()
		doc := link.GatewayStatus(c.Site, c.Gateway, version, lk, clk, set.List())
		doc["store"] = sizes.Snapshot(time.Now())
		doc["audit"] = auditStatus(aud)
		return doc
	},
		Stations: screenStations(cfg), Inspector: insp,
		AllowedOrigins: cfg.HTTP.AllowedOrigins, Tokens: httpCredentials(cfg.HTTP),
		PairedFile: filepath.Join(cfg.DataDir, pairedFile), NoLoopback: !cfg.HTTP.Loopback(),
		Audit: pairingAudit(aud),
		Routes: append([]screens.Route{
			{Pattern: "GET /metrics", Handler: met.Handler()},
			{Pattern: "GET /healthz", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "alive") })},
			{Pattern: "GET /readyz", Handler: opsapi.Readyz(lk)},
		}, ops.Routes()...)})
	if err := hub.Err(); err != nil {
		return fmt.Errorf("paired devices: %w", err)
	}
	set.bindHandheld = func(id string, h *drivers.Handheld) { hub.BindHandheld(id, h) }
	set.obs = tee{hub, met, audit.Observer{Log: aud}}
	if deps.observer != nil {
		set.obs = append(set.obs, deps.observer)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return jr.Run(gctx) })  // the journal's group commit
	g.Go(func() error { return aud.Run(gctx) }) // the audit's group commit; Close commits the rest
	g.Go(func() error { return lk.Run(gctx) })
	cp := &audit.Checkpointer{Log: aud, Journal: jr, Kid: signer.Kid, Key: signer.Key, Gateway: cfg.Gateway, Logger: log}
	g.Go(func() error { return cp.Run(gctx) })
	ret := store.NewRetainer(st, jr, clk, retentionPolicy(cfg.Retention), log)
	g.Go(func() error { return ret.Run(gctx) })
	g.Go(func() error { return st.KeepWall(gctx, clk, time.Minute, log) })
	if err := set.apply(gctx, g, cfg, cls); err != nil {
		return err
	}
	if deps.reload != nil {
		g.Go(func() error {
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-deps.reload:
					reload(gctx, g, deps.configPath, set, lk, ret, insp, aud, log)
				}
			}
		})
	}
	httpAddr := ""
	if cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("http.listen: %w", err)
		}
		httpAddr = ln.Addr().String()
		srv := newHTTPServer(hub.Handler(), log)
		ln = limitListener(ln, cfg.HTTP.MaxConns)
		g.Go(func() error { return hub.Run(gctx) }) // closes the screens' WebSockets at shutdown
		g.Go(func() error {
			var err error
			if cfg.HTTP.TLSCertFile != "" {
				srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
				err = srv.ServeTLS(ln, cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile)
			} else {
				err = srv.Serve(ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	log.Info("gateway started", "version", version, "stations", len(cfg.Stations), "http", httpAddr,
		"applied_seq", prog.Watermark, "head_seq", prog.Head, "brokers", brokers)
	watchdog(gctx, g, live, log)
	if deps.ready != nil {
		deps.ready(httpAddr, &gatewayParts{signer: signer, link: lk, store: st, stations: set, retention: ret})
	}
	err = g.Wait()
	_ = sdnotify.Notify("STOPPING=1")
	log.Info("gateway stopped")
	return err
}

func loadTLS(c config.Central) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("central.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("central.ca_file: no certificates in %s", c.CAFile)
		}
		t.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("central.cert_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// screenStations lists the configured stations for the screens.
func screenStations(cfg *config.Config) []screens.StationInfo {
	out := make([]screens.StationInfo, 0, len(cfg.Stations))
	for _, sc := range cfg.Stations {
		out = append(out, screens.StationInfo{ID: sc.ID, Role: sc.Role, Gate: sc.Gate != nil && sc.Gate.Driver != "none",
			Handheld: sc.Scanner.Driver == config.HandheldDriver})
	}
	return out
}

// inspector answers the lookup screen from the local store (inspectCode).
type inspector struct {
	cls atomic.Pointer[ident.Classifier]
	st  *store.Store
	lk  *link.Link
	clk *clock.Clock
}

var _ screens.Inspector = (*inspector)(nil)

func (in *inspector) Inspect(code string) (screens.Inspection, error) {
	return inspectCode(in.cls.Load(), in.st, in.clk.Now(), in.lk.Watermark(), in.lk.Online(), code)
}

// inspectCode decides a code from the store as a station would
// (station.Inspect), with the orders its explanation names; applied and
// online are read before deciding.
func inspectCode(cls *ident.Classifier, st *store.Store, now time.Time, applied uint64, online bool, code string) (screens.Inspection, error) {
	return screens.Explain(station.Inspect(cls, st, code, now), st, now, applied, online)
}

// retentionPolicy is the store's retention policy of the configuration.
func retentionPolicy(r config.Retention) store.Policy {
	return store.Policy{OrdersDays: r.OrdersDays, EventsDays: r.EventsDays, Interval: r.Interval}
}

// staleTemps are the temporary files the gateway makes in data_dir: the
// verify snapshot and the download spools (api.go), the paired devices'
// file being saved (gateway/screens). One left there was left by a gateway
// that died before removing it (a verify snapshot is a whole copy of
// audit.db).
var staleTemps = []string{".verify-", ".spool-", ".paired-"}

// removeStaleTemps removes them at start, before anything makes new ones.
func removeStaleTemps(dir string, log *slog.Logger) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.Type().IsRegular() || !slices.ContainsFunc(staleTemps, func(p string) bool { return strings.HasPrefix(e.Name(), p) }) {
			continue
		}
		name := filepath.Join(dir, e.Name())
		if err := os.Remove(name); err != nil {
			log.Warn("stale temporary file not removed", "file", name, "err", err)
			continue
		}
		log.Info("stale temporary file removed (left by a gateway that stopped abruptly)", "file", name)
	}
}
