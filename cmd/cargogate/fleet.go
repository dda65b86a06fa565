package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/gateway/screens"
	"github.com/cargogate/cargogate/internal/fleet"
)

const defaultFleetConfig = "/etc/cargogate/fleet.yaml"

// cmdFleet runs the fleet view (docs/fleet.md): a read-only subscriber to
// the site's signed statuses, serving the page, /api/fleet and /metrics
// behind the screens' token roles.
func cmdFleet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagsFor("fleet")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	path := sval(fs, "config")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return usageError{msg: fmt.Sprintf("no fleet configuration file %s: give one with --config FILE", path)}
	}
	cfg, err := fleet.LoadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: configuration has problems:\n", path)
		printProblems(stderr, err)
		return usageError{msg: "bad configuration", quiet: true}
	}
	log := newLogger(config.Log{Level: "info", Format: "text"}, stderr).With("part", "fleet")
	opts, err := cfg.Options()
	if err != nil {
		return err
	}
	opts.Log = log
	f, err := fleet.New(opts)
	if err != nil {
		return err
	}
	b := fleet.Broker{URL: cfg.Broker.URL, Username: cfg.Broker.Username, Password: cfg.Broker.Password}
	if strings.HasPrefix(cfg.Broker.URL, "ssl://") {
		if b.TLS, err = loadTLS(config.Central{CAFile: cfg.Broker.CAFile, CertFile: cfg.Broker.CertFile, KeyFile: cfg.Broker.KeyFile}); err != nil {
			return fmt.Errorf("broker: %w", err)
		}
	}
	h := cfg.HTTP
	creds := httpCredentials(config.HTTP{Token: h.Token, Tokens: h.Tokens})
	api := f.Handler()
	handler, err := screens.Protect(h.AllowedOrigins, creds, h.TrustLoopback != nil && !*h.TrustLoopback, []screens.Route{
		{Pattern: "GET /{$}", Need: screens.NeedView, Handler: api},
		{Pattern: "GET /static/", Need: screens.NeedView, Handler: api},
		{Pattern: "GET /api/fleet", Need: screens.NeedView, Handler: api},
		{Pattern: "GET /metrics", Need: screens.NeedView, Handler: api},
		{Pattern: "GET /healthz", Need: screens.NeedView, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "alive") })},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", h.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	srv := newHTTPServer(handler, log)
	log.Info("fleet view", "site", cfg.Site, "gateways", len(cfg.Gateways), "broker", cfg.Broker.URL, "http", ln.Addr().String(), "offline_after", cfg.OfflineAfter)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return f.Run(gctx, b) })
	g.Go(func() error {
		var err error
		if h.TLSCertFile != "" {
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			err = srv.ServeTLS(ln, h.TLSCertFile, h.TLSKeyFile)
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
		return srv.Close()
	})
	return g.Wait()
}
