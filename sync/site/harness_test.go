package site

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/central"
	"github.com/cargogate/cargogate/internal/natstest"
	"github.com/cargogate/cargogate/internal/testenv"
	"github.com/cargogate/cargogate/sync/envelope"
)

var longFlag = flag.Bool("long", false, "run the long form of the site scenarios (also CARGOGATE_SITE_LONG=1)")

func long() bool { return *longFlag || os.Getenv("CARGOGATE_SITE_LONG") == "1" }

// size picks the short or the long form's figure.
func size[T any](short, lng T) T {
	if long() {
		return lng
	}
	return short
}

// cargogateBin and natsBin are built once per test binary.
var cargogateBin, natsBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("site: skipped in -short mode")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "cargogate-site")
	if err != nil {
		panic(err)
	}
	bins, err := testenv.Build(dir, "./cmd/cargogate")
	if err == nil {
		natsBin, err = natstest.Build(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cargogateBin = bins["cargogate"]
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	siteName = "PVG-W"
	// settle bounds every wait for the site to converge: a bound on a
	// failure, never a figure.
	settle = 2 * time.Minute
)

// fleetOpts shape one site.
type fleetOpts struct {
	gateways int
	// brokers gives the broker URLs gateway i is configured with.
	brokers func(i int) []string
	// central is the broker URL list of central.
	central []string
	// onStuck is called when a wait fails, for the log (e.g. the
	// cluster's consumers).
	onStuck func() string
}

// fleet is the reference central (in-process, on a durable ledger) and
// the site's gateway processes, each with a gate station on two ptys.
type fleet struct {
	t      testing.TB
	o      fleetOpts
	dir    string
	signer envelope.Signer
	c      *central.Central
	stopC  context.CancelFunc
	ran    chan error
	gws    []*gateway
	seed   uint64
	// subjects are the distinct subjects of the ledger's latest orders,
	// refreshed while stations scan.
	subjects atomic.Pointer[[]customs.Subject]
}

// gateway is one gateway process and its station.
type gateway struct {
	f       *fleet
	i       int
	name    string
	dataDir string
	cfgPath string
	http    string
	scanner *testenv.Pty
	gate    *testenv.Pty
	proc    *testenv.Proc
	pub     ed25519.PublicKey

	mu    sync.Mutex
	scans []scanRec
	used  map[string]bool
}

type scanRec struct {
	code  string
	frame string // PASS or STOP
}

func newFleet(t testing.TB, o fleetOpts) *fleet {
	t.Helper()
	seed := testenv.Seed(t)
	f := &fleet{t: t, o: o, dir: t.TempDir(), seed: seed,
		signer: envelope.Signer{Kid: "central-site", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}}
	keys := envelope.Keyring{}
	for i := 0; i < o.gateways; i++ {
		g := f.newGateway(i)
		f.gws = append(f.gws, g)
		keys[siteName+"/"+g.name] = g.pub
	}
	logf, err := os.Create(filepath.Join(f.dir, "central.log"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := central.New(central.Options{
		Site: siteName, Brokers: o.central, Signer: f.signer, GatewayKeys: keys,
		DBPath: filepath.Join(f.dir, "central.db"), ClientID: "customs-site",
		Logger:       slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo})),
		HeadInterval: 2 * time.Second, MaxOrdersPerMessage: 100, ReplayOrdersPerMessage: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	ctx, cancel := context.WithCancel(context.Background())
	f.stopC, f.ran = cancel, make(chan error, 1)
	go func() { f.ran <- c.Run(ctx) }()
	t.Cleanup(func() {
		f.stopCentral()
		c.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			var keep []string
			for _, l := range strings.Split(string(b), "\n") {
				if !strings.Contains(l, `msg="orders issued"`) {
					keep = append(keep, l)
				}
			}
			t.Logf("--- central log (tail, without orders issued) ---\n%s", tail(strings.Join(keep, "\n"), 20000))
		}
		logf.Close()
	})
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		t.Fatalf("central not connected: %v", err)
	}
	for _, g := range f.gws {
		g.start()
	}
	f.waitAll("every gateway online", func(_ *gateway, st gwStatus) bool { return st.Link.Online && st.Link.PubOnline })
	return f
}

func (f *fleet) stopCentral() {
	if f.stopC == nil {
		return
	}
	f.stopC()
	if err := <-f.ran; err != nil {
		f.t.Errorf("central: %v", err)
	}
	f.stopC = nil
}

func (f *fleet) newGateway(i int) *gateway {
	t := f.t
	t.Helper()
	g := &gateway{f: f, i: i, name: fmt.Sprintf("g%02d", i+1), used: map[string]bool{}}
	dir := filepath.Join(f.dir, g.name)
	g.dataDir = filepath.Join(dir, "data")
	g.cfgPath = filepath.Join(dir, "cargogate.yaml")
	g.http = freeAddr(t)
	g.scanner, g.gate = testenv.NewPty(t), testenv.NewPty(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`site: %s
gateway: %s
data_dir: %s
central:
%s
  keys:
    %s: %q
  gap_grace: 500ms
  resync_timeout: 5s
  lookup_timeout: 2s
http:
  listen: %s
log:
  level: info
stations:
  - id: gate-1
    role: gate
    scanner: {driver: serial, port: %s, baud: 9600}
    gate:    {driver: serial, port: %s, baud: 9600}
`, siteName, g.name, g.dataDir, brokerConf(f.o.brokers(i)), f.signer.Kid, envelope.EncodePublicKey(f.signer.Public()),
		g.http, g.scanner.Path, g.gate.Path)
	if err := os.WriteFile(g.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cargogateBin, "keys", "--config", g.cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("cargogate keys: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "public_key: "); ok {
			if g.pub, err = envelope.ParsePublicKey(strings.TrimSpace(v)); err != nil {
				t.Fatalf("gateway key %q: %v", v, err)
			}
		}
	}
	if g.pub == nil {
		t.Fatalf("cargogate keys printed no public key: %s", out)
	}
	return g
}

// brokerConf is the central: lines naming the brokers: central.broker
// for one, central.brokers for several.
func brokerConf(urls []string) string {
	if len(urls) == 1 {
		return "  broker: " + urls[0]
	}
	return "  brokers: [" + strings.Join(urls, ", ") + "]"
}

func (g *gateway) start() {
	t := g.f.t
	t.Helper()
	g.proc = testenv.Start(t, "cargogate-"+g.name, cargogateBin, "run", "--config", g.cfgPath)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := g.status(); ok {
			return
		}
		if g.proc.Exited() {
			t.Fatalf("gateway %s exited at start:\n%s", g.name, tail(g.proc.Output(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gateway %s not answering on %s", g.name, g.http)
}

// gwStatus is the part of /api/status the scenarios read.
type gwStatus struct {
	Link struct {
		Online     bool    `json:"online"`
		PubOnline  bool    `json:"events_online"`
		Applied    uint64  `json:"applied_seq"`
		Outbox     int     `json:"outbox"`
		Broker     string  `json:"broker"`
		EventsBkr  string  `json:"events_broker"`
		Oldest     float64 `json:"outbox_oldest_s"`
		Conflicts  uint64  `json:"orders_conflict"`
		Resyncs    uint64  `json:"resyncs"`
		EventsSent uint64  `json:"events_sent"`
	} `json:"link"`
}

var httpc = http.Client{Timeout: 5 * time.Second}

func (g *gateway) status() (gwStatus, bool) {
	var st gwStatus
	r, err := httpc.Get("http://" + g.http + "/api/status")
	if err != nil {
		return st, false
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || json.Unmarshal(b, &st) != nil {
		return st, false
	}
	return st, true
}

// waitAll polls every gateway until cond holds for each, and returns how
// long that took; it fails after settle.
func (f *fleet) waitAll(what string, cond func(*gateway, gwStatus) bool) time.Duration {
	f.t.Helper()
	start := time.Now()
	done := make([]bool, len(f.gws))
	left := len(f.gws)
	var last gwStatus
	for time.Since(start) < settle {
		for i, g := range f.gws {
			if done[i] {
				continue
			}
			if st, ok := g.status(); ok && cond(g, st) {
				done[i] = true
				left--
			} else {
				last = st
			}
		}
		if left == 0 {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var late []string
	for i, d := range done {
		if !d {
			late = append(late, f.gws[i].name)
			// Its goroutines, into its output (logged as the test fails).
			_ = f.gws[i].proc.Signal(syscall.SIGQUIT)
		}
	}
	time.Sleep(time.Second)
	f.t.Logf("central: %+v", f.c.Stats())
	if f.o.onStuck != nil {
		f.t.Logf("when stuck:\n%s", f.o.onStuck())
	}
	f.t.Fatalf("%s: %v not there within %v; last status %+v; central head %d", what, late, settle, last.Link, f.c.Head())
	return 0
}

// converged waits until every gateway applied the ledger up to the head
// of now, is online on both connections, and holds no event older than
// healed unacknowledged by central; it returns the time since healed.
func (f *fleet) converged(healed time.Time) time.Duration {
	f.t.Helper()
	head := f.c.Head()
	f.waitAll(fmt.Sprintf("converged to head %d", head), func(_ *gateway, st gwStatus) bool {
		return st.Link.Applied >= head && st.Link.Online && st.Link.PubOnline &&
			(st.Link.Outbox == 0 || st.Link.Oldest < time.Since(healed).Seconds())
	})
	return time.Since(healed)
}

// on returns the gateways with a connection on a broker in urls. A fault
// must hit someone: a scenario checks it before each (a partition of a
// gateway no longer on the cut proxy tested nothing).
func (f *fleet) on(urls map[string]bool) []string {
	f.t.Helper()
	var names []string
	for _, g := range f.gws {
		if st, ok := g.status(); ok && (urls[st.Link.Broker] || urls[st.Link.EventsBkr]) {
			names = append(names, g.name)
		}
	}
	return names
}

// failedOver waits until every gateway has both connections up on a
// broker not in dead, and central too; it returns how long that took.
func (f *fleet) failedOver(dead map[string]bool) time.Duration {
	f.t.Helper()
	start := time.Now()
	for time.Since(start) < settle {
		if st := f.c.Stats(); st.Connected && !dead[f.c.Broker()] {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.waitAll("every connection on a live broker", func(_ *gateway, st gwStatus) bool {
		return st.Link.Online && st.Link.PubOnline && !dead[st.Link.Broker] && !dead[st.Link.EventsBkr]
	})
	if st := f.c.Stats(); !st.Connected || dead[f.c.Broker()] {
		f.t.Fatalf("central not on a live broker: connected %v, broker %s", st.Connected, f.c.Broker())
	}
	return time.Since(start)
}

// traffic issues about rate orders a second until stopped, in one orders
// message a second (as a customs system batches its decisions; one Issue
// per order would be one broker message per order, and every gateway
// answers each applied message with a status), and returns a stop function
// reporting how many it issued.
func (f *fleet) traffic(rate int) (stop func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	batch := max(1, rate)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			issued, err := f.c.Generate(ctx, central.GenSpec{Count: batch, Seed: f.seed + uint64(n.Load()), Batch: batch})
			n.Add(int64(issued))
			if err != nil && ctx.Err() == nil {
				f.t.Errorf("traffic: %v", err)
				return
			}
		}
	}()
	var once sync.Once
	stop = func() int { once.Do(func() { cancel(); wg.Wait() }); return int(n.Load()) }
	f.t.Cleanup(func() { stop() })
	return stop
}

// scanning has every station scan about once per every: mostly subjects
// of recent orders, each once per station, and one code in ten unknown.
// It returns a stop function.
func (f *fleet) scanning(every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the subjects of the latest orders
		defer wg.Done()
		for ctx.Err() == nil {
			head := f.c.Head()
			orders, err := f.c.Orders(max(1, head-400), head)
			if err == nil {
				seen := map[customs.Subject]bool{}
				var subs []customs.Subject
				for _, o := range orders {
					if !seen[o.Subject] {
						seen[o.Subject] = true
						subs = append(subs, o.Subject)
					}
				}
				f.subjects.Store(&subs)
			}
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	for _, g := range f.gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(f.seed, uint64(g.i)))
			for n := 0; ctx.Err() == nil; n++ {
				select {
				case <-ctx.Done():
					return
				case <-time.After(every/2 + rand.N(every)):
				}
				code := g.pick(rng, n)
				if code == "" {
					continue
				}
				if !g.scan(code) {
					return
				}
			}
		}()
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	f.t.Cleanup(stop) // before the ptys close
	return stop
}

// pick draws the next code: a subject of recent orders this station has
// not scanned, or now and then a parcel no order names.
func (g *gateway) pick(rng *rand.Rand, n int) string {
	if rng.IntN(10) == 0 {
		return central.ParcelID(50_000_000 + g.i*100_000 + n)
	}
	p := g.f.subjects.Load()
	if p == nil || len(*p) == 0 {
		return ""
	}
	for range 5 {
		sj := (*p)[rng.IntN(len(*p))]
		if !g.used[sj.ID] {
			g.used[sj.ID] = true
			return sj.ID
		}
	}
	return ""
}

// scan writes a code as the scanner and waits for the gate's frame; a
// scan without an answer fails the test (no gateway is killed here).
func (g *gateway) scan(code string) bool {
	if _, err := g.scanner.Master.Write([]byte(code + "\r\n")); err != nil {
		g.f.t.Errorf("%s: write to pty: %v", g.name, err)
		return false
	}
	frame := strings.TrimSpace(g.gate.ReadFrame(30*time.Second, "PASS\r\n", "STOP\r\n"))
	if frame == "" {
		g.f.t.Errorf("%s: scan %q: no gate frame", g.name, code)
		return false
	}
	g.mu.Lock()
	g.scans = append(g.scans, scanRec{code: code, frame: frame})
	g.mu.Unlock()
	return true
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
