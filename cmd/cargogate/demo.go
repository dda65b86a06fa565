package main

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cargogate/cargogate/internal/pollpty"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sync/errgroup"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/drivers"
	"github.com/cargogate/cargogate/gateway/station"
	"github.com/cargogate/cargogate/internal/central"
	"github.com/cargogate/cargogate/sync/envelope"
)

// cmdDemo runs the whole path on one machine with nothing installed: an
// embedded broker, the reference central pushing a realistic stream, a
// gateway wired exactly as `run` wires it, three stations whose scanners
// dial in over TCP and whose gates are real pseudo-terminals, and the page.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagsFor("demo")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	listen, pace, verbose := sval(fs, "listen"), dval(fs, "pace"), bval(fs, "v")
	if h, p, err := net.SplitHostPort(listen); err != nil {
		return usageError{msg: "--listen: " + err.Error()}
	} else if p == "0" {
		// The written configuration must name the port the page is on.
		if ln, err := net.Listen("tcp", net.JoinHostPort(h, "0")); err == nil {
			listen = ln.Addr().String()
			ln.Close()
		}
	}
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	dir, err := os.MkdirTemp("", "cargogate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// 1. The broker.
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	broker := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := broker.AddHook(new(auth.AllowHook), nil); err != nil {
		return err
	}
	if err := broker.AddListener(listeners.NewNet("demo", bln)); err != nil {
		return err
	}
	if err := broker.Serve(); err != nil {
		return err
	}
	defer broker.Close()
	brokerURL := "tcp://" + bln.Addr().String()
	say("· embedded MQTT broker on %s", brokerURL)

	// 2. The reference central.
	_, ckey, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		return err
	}
	const site, gw = "DEMO", "g01"
	cen, err := central.New(central.Options{Site: site, Broker: brokerURL, Signer: envelope.Signer{Kid: "central-demo", Key: ckey},
		DBPath: filepath.Join(dir, "central.db"), MaxOrdersPerMessage: 200, HeadInterval: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cen.Close()

	// 3. The stations' devices: scanners dial into the gateway, gates are ptys.
	type simStation struct {
		id, role, scanAddr string
		gate               *os.File // pty master; nil: no gate
		gatePath           string
	}
	var sims []*simStation
	for _, s := range []struct{ id, role string }{{"arr-1", "arrival"}, {"sort-1", "sort"}, {"gate-1", "gate"}} {
		ss := &simStation{id: s.id, role: s.role, scanAddr: freeAddr()}
		if s.role == "gate" {
			m, sl, err := pollpty.Open()
			if err != nil {
				return fmt.Errorf("gate pty: %w", err)
			}
			defer m.Close()
			defer sl.Close()
			ss.gate, ss.gatePath = m, sl.Name()
		}
		sims = append(sims, ss)
	}
	cfg := &config.Config{Site: site, Gateway: gw, DataDir: filepath.Join(dir, "gateway"),
		Central: config.Central{Broker: brokerURL, Keys: map[string]string{"central-demo": envelope.EncodePublicKey(cen.PublicKey())}},
		HTTP:    config.HTTP{Listen: listen}, Log: config.Log{Level: "info", Format: "text"},
		Ident: config.Identifiers{ParcelPatterns: []string{`^LP\d{14}$`},
			TransitPatterns: []string{`^TR\d{10}$`}, SealPatterns: []string{`^SH-\d{6}$`}}}
	if !verbose {
		cfg.Log.Level = "error"
	}
	for _, s := range sims {
		// Room for a second reader: a person scanning by hand next to
		// the simulated one.
		st := config.Station{ID: s.id, Role: s.role,
			Scanner: config.Device{Driver: "tcp-server", Section: &drivers.TCPServerConfig{Listen: s.scanAddr, MaxReaders: 4}}}
		if s.gate != nil {
			st.Gate = &config.Device{Driver: "serial", Section: &drivers.SerialGateConfig{Port: s.gatePath, Baud: 9600, Pass: "PASS\r\n", Stop: "STOP\r\n"}}
		}
		cfg.Stations = append(cfg.Stations, st)
	}
	// A handheld station: a phone or rugged handheld pairs with the link
	// printed below and scans with its camera-less scanner or keyboard.
	cfg.Stations = append(cfg.Stations, config.Station{ID: demoHandheld, Role: config.RoleSort,
		Scanner: config.Device{Driver: config.HandheldDriver, Section: &drivers.HandheldConfig{}}})
	// The demo runs the configuration it writes, so that the operator
	// commands can be tried against it with --config.
	cfgPath := filepath.Join(dir, "cargogate.yaml")
	if cfg, err = writeDemoConfig(cfgPath, cfg); err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cen.Run(gctx) })
	var chttp net.Listener
	if chttp, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return err
	}
	csrv := &http.Server{Handler: cen.Handler(), ReadHeaderTimeout: 5 * time.Second}
	g.Go(func() error { csrv.Serve(chttp); return nil })
	g.Go(func() error { <-gctx.Done(); return csrv.Close() })
	say("· reference central (site %s) ledger in %s, HTTP on http://%s (GET /events?gateway=%s)", site, dir, chttp.Addr(), gw)

	ready := make(chan *gatewayParts, 1)
	g.Go(func() error {
		return serve(gctx, cfg, gatewayDeps{ready: func(addr string, p *gatewayParts) {
			say("· gateway %s/%s started; live page: http://%s/", site, gw, addr)
			ready <- p
		}, observer: demoObserver{say}}, io.Discard, stderr)
	})
	var parts *gatewayParts
	select {
	case parts = <-ready:
	case <-gctx.Done():
		return g.Wait()
	}
	cen.AddGatewayKey(site+"/"+gw, parts.signer.Public())

	// 4. The story: central issues orders, stations scan, a forger tries.
	w := &world{rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))}
	g.Go(func() error { return w.issue(gctx, cen, say) })
	g.Go(func() error { return forger(gctx, cen, site, say) })
	for _, s := range sims {
		if s.role == "arrival" {
			g.Go(func() error { return w.truckLoop(gctx, cen, s.id, s.scanAddr, pace, say) })
			continue
		}
		g.Go(func() error { return w.scanLoop(gctx, s.id, s.scanAddr, pace) })
		if s.gate != nil {
			g.Go(func() error { return gateWatch(gctx, s.id, s.gate, say) })
		}
	}
	g.Go(func() error { return narrate(gctx, parts, say) })
	say("· three stations scanning (arrival, sort, gate); Ctrl-C stops the demo")
	say("· the scanners listen on TCP; one line (ending in CR or LF) is one scan:")
	for _, s := range sims {
		line := fmt.Sprintf("    %-7s %-8s scanner on %s", s.id, "("+s.role+")", s.scanAddr)
		if s.gate != nil {
			line += fmt.Sprintf(", gate on the pseudo-terminal %s (it receives PASS or STOP)", s.gatePath)
		}
		say("%s", line)
	}
	_, gatePort, _ := net.SplitHostPort(sims[len(sims)-1].scanAddr)
	say("  scan by hand at gate-1, in bash:  printf '%s\\r\\n' > /dev/tcp/127.0.0.1/%s", central.ParcelID(1), gatePort)
	say("                       or with nc:  printf '%s\\r\\n' | nc -q1 127.0.0.1 %s", central.ParcelID(1), gatePort)
	self := selfCommand(os.Args[0], exec.LookPath)
	say("· the demo's configuration is %s; try:", cfgPath)
	say("    %s status --config %s", self, cfgPath)
	say("    %s inspect %s --config %s", self, central.ParcelID(1), cfgPath)
	say("· handheld station %s: open this link on a phone or handheld (valid 10 minutes, once; a new one: %s pair %s --config %s;", demoHandheld, self, demoHandheld, cfgPath)
	say("  for a device on the LAN run the demo with --listen 0.0.0.0:8080)")
	if err := pairHandheld(cfg, demoHandheld, "demo-phone", "", stdout, stderr); err != nil {
		say("  (no pairing link: %v)", err)
	}
	err = g.Wait()
	say("· demo stopped; removed %s", dir)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// writeDemoConfig writes cfg as YAML to path and loads it back the way
// `run` does: what the demo runs is what the file says.
func writeDemoConfig(path string, cfg *config.Config) (*config.Config, error) {
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	// Unset fields (zero in the struct) are left out, as a person writes
	// a configuration: the defaults apply to them, as they would have.
	var tree any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		return nil, err
	}
	if data, err = yaml.Marshal(pruneZero(tree)); err != nil {
		return nil, err
	}
	head := []byte("# written by `cargogate demo`; removed when the demo stops\n")
	if err := os.WriteFile(path, append(head, data...), 0o600); err != nil {
		return nil, err
	}
	return config.Load(path)
}

// pruneZero drops zero values (0, "", false, 0s, empty lists and maps)
// from a decoded YAML tree.
func pruneZero(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e = pruneZero(e); e == nil {
				delete(x, k)
			} else {
				x[k] = e
			}
		}
		if len(x) == 0 {
			return nil
		}
		return x
	case []any:
		var out []any
		for _, e := range x {
			if e = pruneZero(e); e != nil {
				out = append(out, e)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case string:
		if x == "" || x == "0s" {
			return nil
		}
	case int:
		if x == 0 {
			return nil
		}
	case float64:
		if x == 0 {
			return nil
		}
	case bool:
		if !x {
			return nil
		}
	}
	return v
}

// narrate prints the gateway's link state every few seconds.
func narrate(ctx context.Context, p *gatewayParts, say func(string, ...any)) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s := p.link.Snapshot()
		state := "online"
		if !s.Online {
			state = "OFFLINE"
		}
		say("gateway  link %s, applied %d of head %d, outbox %d, events delivered %d, messages rejected %d",
			state, s.Watermark, s.Head, s.Outbox, s.EventsSent, s.Rejected)
	}
}

// demoObserver tells each decision in plain words.
type demoObserver struct{ say func(string, ...any) }

func (d demoObserver) Decided(o station.Outcome) {
	switch o.Kind {
	case "transit":
		return
	case "seal":
		d.say("station  %-6s seal %s seen", o.Station, o.Seal)
		return
	case "arrival":
		a := o.Arrival
		d.say("arrival  %-6s transit %s closed: seals ok %v (expected %v, seen %v), %d of %d bags counted, missing %v, extra %v",
			o.Station, a.Transit.ID, *a.SealsOK, a.SealsExpected, a.SealsSeen, *a.Counted, *a.Expected, a.Missing, a.Extra)
		return
	}
	verdict := "STOP"
	if o.Pass {
		verdict = "PASS"
	}
	what := o.Reason
	if o.Problem != "" {
		what += " (" + o.Problem + ")"
	}
	if len(o.Blocking) > 0 {
		what += fmt.Sprintf(": %s %s is %s", o.Blocking[0].Subject.Kind, o.Blocking[0].Subject.ID, o.Blocking[0].Reason)
	}
	kind := "code"
	if o.Subject != nil {
		kind = string(o.Subject.Kind)
	}
	d.say("station  %-6s scanned %s %q → %s %s", o.Station, kind, o.Code, verdict, what)
}

func (d demoObserver) Device(st, dev string, state drivers.State, detail string) {
	d.say("device   %s %s is %s %s", st, dev, state, detail)
}

// selfCommand is how to run this binary again, for the commands the demo
// suggests: "cargogate" when that is on PATH, "go run ./cmd/cargogate"
// when started by go run (a binary in Go's temporary build directory, and
// likely no cargogate installed), else the path it was started by.
func selfCommand(arg0 string, lookPath func(string) (string, error)) string {
	if p, err := lookPath("cargogate"); err == nil {
		if a, err := filepath.Abs(arg0); err == nil && (a == p || !strings.ContainsRune(arg0, '/')) {
			return "cargogate"
		}
	}
	if filepath.Base(filepath.Dir(arg0)) == "exe" && strings.Contains(arg0, "go-build") {
		return "go run ./cmd/cargogate"
	}
	return arg0
}
