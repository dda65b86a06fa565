// Command customs-sim is the reference central customs (PROTOCOL.md §6) for
// one site: it keeps the ledger, publishes signed orders and the head over
// MQTT, answers resync and lookup, records the gateways' events, and takes
// orders from a file, a generator or HTTP.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cargogate/cargogate/internal/central"
	"github.com/cargogate/cargogate/sync/envelope"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "customs-sim:", err)
		os.Exit(1)
	}
}

const example = `
Example:
  # the central key (created 0600 if missing), for the gateways' central.keys
  customs-sim -key central.key -print-pubkey

  customs-sim -site PVG-W -broker tcp://127.0.0.1:1883 -db central.db \
    -key central.key -kid central-sim \
    -gateway-key PVG-W/g07=BASE64PUB -http 127.0.0.1:8090 \
    -orders orders.jsonl -generate 1000 -rate 50

  curl -d '{"action":"release","subject":{"kind":"parcel","id":"RR123456785CN"}}' \
    http://127.0.0.1:8090/orders
  curl 'http://127.0.0.1:8090/events?gateway=g07'
`

// keyFlag collects repeated -gateway-key kid=base64pub.
type keyFlag map[string]string

func (k keyFlag) String() string { return "" }

func (k keyFlag) Set(s string) error {
	kid, pub, ok := strings.Cut(s, "=")
	if !ok || kid == "" {
		return errors.New("want kid=base64pub, e.g. PVG-W/g07=…")
	}
	if _, dup := k[kid]; dup {
		return fmt.Errorf("kid %q given twice", kid)
	}
	k[kid] = pub
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("customs-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		site      = fs.String("site", "", "site name, e.g. PVG-W (required)")
		broker    = fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker URL, or a comma-separated list tried in turn (failover)")
		dbPath    = fs.String("db", "customs-sim.db", "ledger file (bbolt), created if missing")
		keyPath   = fs.String("key", "central.key", "central private key file, created (mode 0600) if missing")
		kid       = fs.String("kid", "central-sim", "kid of the central key")
		httpAddr  = fs.String("http", "127.0.0.1:8090", "HTTP listen address; empty: no HTTP")
		ordersF   = fs.String("orders", "", "file of JSON lines (or a JSON array) of orders without seq, issued at start")
		generate  = fs.Int("generate", 0, "orders to generate after start; -1: until stopped")
		rate      = fs.Float64("rate", 0, "generator rate in orders per second; 0: as fast as possible")
		seed      = fs.Uint64("seed", 1, "generator random seed")
		headEvery = fs.Duration("head-interval", central.DefaultHeadInterval, "longest time between head publications")
		clientID  = fs.String("client-id", "", "MQTT client id (default customs-sim-{site})")
		printPub  = fs.Bool("print-pubkey", false, "print the central public key (base64) and exit")
		verbose   = fs.Bool("v", false, "debug logging")
		gwKeys    = keyFlag{}
	)
	fs.Var(gwKeys, "gateway-key", "trusted gateway key `kid=base64pub` (kid is {site}/{gateway}); repeatable")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: customs-sim [flags]\n\nThe reference central customs for one site.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(stderr, example)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "customs-sim: unexpected arguments %q\n", fs.Args())
		return errUsage
	}

	key, created, err := envelope.LoadOrCreateKey(*keyPath)
	if err != nil {
		return err
	}
	signer := envelope.Signer{Kid: *kid, Key: key}
	if *printPub {
		fmt.Fprintln(stdout, envelope.EncodePublicKey(signer.Public()))
		return nil
	}
	if *site == "" {
		fmt.Fprintln(stderr, "customs-sim: -site is required")
		return errUsage
	}
	keyring, err := envelope.ParseKeyring(gwKeys)
	if err != nil {
		return fmt.Errorf("-gateway-key: %w", err)
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if created {
		log.Info("central key created", "path", *keyPath)
	}
	log.Info("central key", "kid", *kid, "public", envelope.EncodePublicKey(signer.Public()))

	c, err := central.New(central.Options{
		Site:         *site,
		Brokers:      strings.Split(*broker, ","),
		Signer:       signer,
		GatewayKeys:  keyring,
		DBPath:       *dbPath,
		ClientID:     *clientID,
		Logger:       log,
		HeadInterval: *headEvery,
	})
	if err != nil {
		return err
	}
	defer c.Close()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.Run(gctx) })

	if *httpAddr != "" {
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
		log.Info("http listening", "addr", ln.Addr().String())
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}

	if *ordersF != "" || *generate != 0 {
		g.Go(func() error {
			// Give the broker a moment so the first orders go out live; if it
			// is down they stay in the ledger for resync.
			wctx, cancel := context.WithTimeout(gctx, 5*time.Second)
			_ = c.WaitConnected(wctx)
			cancel()
			if *ordersF != "" {
				if err := issueFile(gctx, c, *ordersF, log); err != nil {
					return err
				}
			}
			if *generate != 0 {
				n := max(*generate, 0) // -1: until stopped
				issued, err := c.Generate(gctx, central.GenSpec{Count: n, Rate: *rate, Seed: *seed})
				log.Info("generator done", "issued", issued, "head", c.Head())
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

func issueFile(ctx context.Context, c *central.Central, path string, log *slog.Logger) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("-orders: %w", err)
	}
	defer f.Close()
	orders, err := central.ParseOrders(f, 0)
	if err != nil {
		return fmt.Errorf("-orders %s: %w", path, err)
	}
	first, last, err := c.Issue(ctx, orders)
	if err != nil {
		return fmt.Errorf("-orders %s: %w", path, err)
	}
	log.Info("orders file issued", "path", path, "first", first, "last", last)
	return nil
}
