package main

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cargogate/cargogate/internal/pollpty"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sync/errgroup"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/drivers"
	"github.com/cargogate/cargogate/gateway/customs"
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
	say("· the demo's configuration is %s; try:", cfgPath)
	say("    cargogate status --config %s", cfgPath)
	say("    cargogate inspect %s --config %s", central.ParcelID(1), cfgPath)
	say("· handheld station %s: open this link on a phone or handheld (valid 10 minutes, once; a new one: cargogate pair %s --config %s;", demoHandheld, demoHandheld, cfgPath)
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

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

// world is what the demo's central has issued, so stations scan real codes.
type world struct {
	mu     sync.Mutex
	rng    *rand.Rand
	codes  []string // codes worth scanning: parcels, bags, ULDs
	serial int
}

func (w *world) pick() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.rng.IntN(100)
	switch {
	case r < 6 || len(w.codes) == 0:
		return central.ParcelID(90000000 + w.rng.IntN(1000000)) // never issued: unknown
	case r < 9:
		return []string{"hello", "RR123456784CN", "]C1" + "\x1d" + "0012345", "AKE1MU"}[w.rng.IntN(4)]
	}
	// Newer codes more often: they are what the floor is handling now.
	n := len(w.codes)
	i := n - 1 - int(float64(n)*w.rng.Float64()*w.rng.Float64())
	return w.codes[max(i, 0)]
}

// issue makes one ULD of bags of parcels at a time, with the mix a floor
// sees: most released, some held for inspection, a few cancelled, an
// occasional revoke or short expiry.
func (w *world) issue(ctx context.Context, cen *central.Central, say func(string, ...any)) error {
	tick := time.NewTicker(4 * time.Second)
	defer tick.Stop()
	for round := 0; ; round++ {
		now := time.Now().UTC()
		var orders []customs.Order
		var codes []string
		w.mu.Lock()
		uld := customs.Subject{Kind: customs.ULD, ID: central.ULDID(w.serial + 1)}
		var bags []customs.Subject
		held, cancelled := 0, 0
		for b := 0; b < 3; b++ {
			bag := customs.Subject{Kind: customs.Bag, ID: central.SSCC(w.serial*10 + b + 1)}
			var parcels []customs.Subject
			for p := 0; p < 6; p++ {
				w.serial++
				par := customs.Subject{Kind: customs.Parcel, ID: central.ParcelID(w.serial)}
				parcels = append(parcels, par)
				codes = append(codes, par.ID)
				exp := now.Add(72 * time.Hour)
				if w.rng.IntN(20) == 0 {
					exp = now.Add(20 * time.Second)
				}
				orders = append(orders, customs.Order{Action: customs.Release, Subject: par, ExpiresAt: exp, Office: "2244",
					Ref: fmt.Sprintf("2244%dE%09d", now.Year(), w.serial)})
				switch r := w.rng.IntN(100); {
				case r < 8:
					held++
					reason := []string{"inspection", "do_not_load", "detention"}[w.rng.IntN(3)]
					orders = append(orders, customs.Order{Action: customs.Hold, Subject: par, HoldID: fmt.Sprintf("H%d", w.serial), Reason: reason})
				case r < 10:
					cancelled++
					orders = append(orders, customs.Order{Action: customs.Cancel, Subject: par})
				case r < 11:
					orders = append(orders, customs.Order{Action: customs.Revoke, Subject: par})
				}
			}
			orders = append(orders, customs.Order{Action: customs.Link, Subject: bag, Children: parcels})
			bags = append(bags, bag)
			codes = append(codes, bag.ID)
		}
		orders = append(orders, customs.Order{Action: customs.Link, Subject: uld, Children: bags})
		codes = append(codes, uld.ID)
		w.mu.Unlock()
		first, last, err := cen.Issue(ctx, orders)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		w.mu.Lock()
		w.codes = append(w.codes, codes...)
		w.mu.Unlock()
		say("central  issued orders %d–%d: ULD %s, 3 bags, 18 parcels (%d held, %d cancelled)", first, last, uld.ID, held, cancelled)
		// An inspection that ends: lift a hold now and then.
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// scanLoop plays a scanner: it dials the station's TCP scanner port and
// types a code every pace.
func (w *world) scanLoop(ctx context.Context, id, addr string, pace time.Duration) error {
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	t := time.NewTicker(pace)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if conn == nil {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				continue
			}
			conn = c
		}
		if _, err := conn.Write([]byte(w.pick() + "\r\n")); err != nil {
			conn.Close()
			conn = nil
		}
	}
}

// truckLoop plays the arrival station: central issues a transit (its seals
// and its bags), the truck arrives, and the station scans the transit, its
// seals and its bags, then the transit again to close it. Every other truck
// has one bag missing and a foreign seal, as happens on a real dock.
func (w *world) truckLoop(ctx context.Context, cen *central.Central, id, addr string, pace time.Duration, say func(string, ...any)) error {
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	send := func(code string) bool {
		for conn == nil {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn = c
				break
			}
			select {
			case <-ctx.Done():
				return false
			case <-time.After(pace):
			}
		}
		if _, err := conn.Write([]byte(code + "\r\n")); err != nil {
			conn.Close()
			conn = nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pace):
			return true
		}
	}
	for truck := 1; ; truck++ {
		tr := customs.Subject{Kind: customs.Transit, ID: fmt.Sprintf("TR%010d", truck)}
		seals := []string{fmt.Sprintf("SH-%06d", 2*truck-1), fmt.Sprintf("SH-%06d", 2*truck)}
		var bags []customs.Subject
		var orders []customs.Order
		for b := 0; b < 4; b++ {
			bag := customs.Subject{Kind: customs.Bag, ID: central.SSCC(900000 + truck*10 + b)}
			bags = append(bags, bag)
			orders = append(orders, customs.Order{Action: customs.Release, Subject: bag, ExpiresAt: time.Now().Add(72 * time.Hour), Office: "2305"})
		}
		orders = append(orders,
			customs.Order{Action: customs.Seal, Subject: tr, Seals: seals, Office: "2305", Note: "sealed at the inland office (Suzhou)"},
			customs.Order{Action: customs.Link, Subject: tr, Children: bags, Office: "2305"})
		if _, _, err := cen.Issue(ctx, orders); err != nil {
			return nil
		}
		odd := truck%2 == 1
		if odd {
			say("truck    transit %s arriving from Suzhou: seals %v, 4 bags; one bag will be missing and one seal is not the one put on", tr.ID, seals)
		} else {
			say("truck    transit %s arriving from Suzhou: seals %v, 4 bags", tr.ID, seals)
		}
		codes := []string{tr.ID, seals[0]}
		if odd {
			codes = append(codes, "SH-999999")
		} else {
			codes = append(codes, seals[1])
		}
		for i, b := range bags {
			if odd && i == 3 {
				continue
			}
			codes = append(codes, b.ID)
		}
		codes = append(codes, tr.ID)
		for _, c := range codes {
			if !send(c) {
				return nil
			}
		}
		// A pause between trucks, with some ordinary scans.
		for range 6 {
			if !send(w.pick()) {
				return nil
			}
		}
	}
}

// gateWatch plays the gate controller: it reads the frames the gateway
// writes to the pty.
func gateWatch(ctx context.Context, id string, m *os.File, say func(string, ...any)) error {
	buf := make([]byte, 256)
	var pending string
	for ctx.Err() == nil {
		m.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _ := m.Read(buf)
		pending += string(buf[:n])
		for {
			i := strings.Index(pending, "\r\n")
			if i < 0 {
				break
			}
			frame := pending[:i]
			pending = pending[i+2:]
			what := "stays CLOSED"
			if frame == "PASS" {
				what = "OPENS"
			}
			say("gate     %s received %q: the gate %s", id, frame, what)
		}
	}
	return nil
}

// forger publishes a forged release now and then, as a hostile device on
// the LAN might: the gateway must reject it and change nothing.
func forger(ctx context.Context, cen *central.Central, site string, say func(string, ...any)) error {
	_, rogue, _ := ed25519.GenerateKey(crand.Reader)
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		o := customs.Order{Seq: cen.Head() + 1, Action: customs.Release, Subject: customs.Subject{Kind: customs.Parcel, ID: central.ParcelID(99000000 + n)}}
		payload, _ := json.Marshal(customs.Orders{Type: customs.TypeOrders, Site: site, Orders: []customs.Order{o}})
		msg, err := envelope.Signer{Kid: "central-demo", Key: rogue}.SealBytes(payload)
		if err != nil {
			return err
		}
		if err := cen.PublishRaw(customs.OrdersTopic(site), msg); err == nil {
			say("forger   published a release of %s signed with a stolen kid but the wrong key", o.Subject.ID)
		}
	}
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
