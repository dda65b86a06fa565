package faults

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
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/central"
	"github.com/cargogate/cargogate/internal/testenv"
	"github.com/cargogate/cargogate/sync/envelope"
)

var longFlag = flag.Bool("long", false, "run the long form of the fault suite (also CARGOGATE_FAULTS_LONG=1)")

// long reports whether the long form runs.
func long() bool { return *longFlag || os.Getenv("CARGOGATE_FAULTS_LONG") == "1" }

// size picks the short or the long form's figure.
func size(short, lng int) int {
	if long() {
		return lng
	}
	return short
}

// cargogateBin is the gateway binary, built once.
var cargogateBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("faults: skipped in -short mode")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "cargogate-faults")
	if err != nil {
		panic(err)
	}
	bins, err := testenv.Build(dir, "./cmd/cargogate")
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
	gwName   = "g07"
	// settle bounds every wait for the site to converge. It is a bound on a
	// failure, never a figure: tests assert on outcomes, not on wall time.
	settle = 3 * time.Minute
)

// siteOpts shape one test site.
type siteOpts struct {
	brokerConf    []string // extra mosquitto.conf lines
	proxy         bool     // the gateway reaches the broker through a fault proxy
	dataDir       string   // default: a temporary directory
	gapGrace      string   // default 500ms
	resyncTimeout string   // default 5s
	lookupTimeout string   // default 2s (generous under -race)
	outbox        string   // the outbox: YAML mapping; default {redeliver_window: 10s}
	perMessage    int      // central's orders per live message; default 100
	replayBatch   int      // central's orders per replay message; default 1000
	headInterval  time.Duration
	// lateOK: events may reach central out of decision order, because the
	// scenario makes the broker lose some and the gateway sends them again.
	lateOK bool
	// stopDefectsOK: STOPs the ledger released in every state the gateway
	// may have held are logged, not failed. No scenario needs it so far:
	// the audit's window already excuses a STOP on orders not yet applied
	// (lookup, outage), and STOPs for reason error (disk full, outbox
	// full) are not judged.
	stopDefectsOK bool
	// twoBrokers: a second, independent mosquitto (spare); the gateway
	// (central.brokers) and central both take the list [broker, spare].
	twoBrokers bool
}

// site is mosquitto, the reference central (in-process, on a durable
// ledger), and one gateway process with a gate station on two ptys.
type site struct {
	t      testing.TB
	o      siteOpts
	dir    string
	broker *testenv.Mosquitto
	spare  *testenv.Mosquitto // with twoBrokers
	proxy  *testenv.Proxy
	signer envelope.Signer
	gwPub  ed25519.PublicKey

	cmu        sync.Mutex
	central    *central.Central
	centralLog *os.File
	stopC      context.CancelFunc
	centralRun chan error

	cfgPath string
	gwHTTP  string
	scanner *testenv.Pty
	gate    *testenv.Pty
	gw      *testenv.Proc
	starts  int

	// scans records every scan written: code → frame seen ("" if none).
	smu   sync.Mutex
	scans []scanRec

	// seed is the scenario's seed (testenv.Seed, logged once; replay with
	// CARGOGATE_SEED); rng draws scanSample's choices from it.
	seed uint64
	rng  *rand.Rand
}

type scanRec struct {
	code  string
	frame string // PASS, STOP or "" when the gateway died first
}

func newSite(t testing.TB, o siteOpts) *site {
	t.Helper()
	if o.gapGrace == "" {
		o.gapGrace = "500ms"
	}
	if o.resyncTimeout == "" {
		o.resyncTimeout = "5s"
	}
	if o.lookupTimeout == "" {
		o.lookupTimeout = "2s"
	}
	if o.perMessage == 0 {
		o.perMessage = 100
	}
	if o.replayBatch == 0 {
		o.replayBatch = 1000
	}
	if o.headInterval == 0 {
		o.headInterval = 2 * time.Second
	}
	if o.outbox == "" {
		// Long enough for central to be back on a restarted broker (its
		// reconnect backoff starts at 1 s), short enough for the suite.
		o.outbox = "{redeliver_window: 10s}"
	}
	seed := testenv.Seed(t)
	s := &site{t: t, o: o, dir: t.TempDir(), seed: seed, rng: rand.New(rand.NewPCG(seed, 5))}
	if o.dataDir == "" {
		s.o.dataDir = filepath.Join(s.dir, "gw")
	}
	s.broker = testenv.NewMosquitto(t, o.brokerConf...)
	brokerURL := s.broker.URL()
	if o.proxy {
		s.proxy = testenv.NewProxy(t, s.broker.Addr())
		brokerURL = s.proxy.URL()
	}
	brokerKey := "broker: " + brokerURL
	if o.twoBrokers {
		s.spare = testenv.NewMosquitto(t, o.brokerConf...)
		brokerKey = fmt.Sprintf("brokers: [%s, %s]", brokerURL, s.spare.URL())
	}
	s.scanner, s.gate = testenv.NewPty(t), testenv.NewPty(t)
	s.gwHTTP = freeAddr(t)
	s.signer = envelope.Signer{Kid: "central-faults", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, 32))}
	s.cfgPath = filepath.Join(s.dir, "cargogate.yaml")
	outbox := ""
	if o.outbox != "" {
		outbox = "outbox: " + o.outbox + "\n"
	}
	cfg := fmt.Sprintf(`site: %s
gateway: %s
data_dir: %s
central:
  %s
  keys:
    %s: %q
  gap_grace: %s
  resync_timeout: %s
  lookup_timeout: %s
http:
  listen: %s
log:
  level: info
%sstations:
  - id: gate-1
    role: gate
    scanner: {driver: serial, port: %s, baud: 9600}
    gate:    {driver: serial, port: %s, baud: 9600}
`, siteName, gwName, s.o.dataDir, brokerKey, s.signer.Kid, envelope.EncodePublicKey(s.signer.Public()),
		o.gapGrace, o.resyncTimeout, o.lookupTimeout, s.gwHTTP, outbox, s.scanner.Path, s.gate.Path)
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cargogateBin, "keys", "--config", s.cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("cargogate keys: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "public_key: "); ok {
			if s.gwPub, err = envelope.ParsePublicKey(strings.TrimSpace(v)); err != nil {
				t.Fatalf("gateway key %q: %v", v, err)
			}
		}
	}
	if s.gwPub == nil {
		t.Fatalf("cargogate keys printed no public key: %s", out)
	}
	if s.centralLog, err = os.Create(filepath.Join(s.dir, "central.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stopCentral()
		s.closeCentral()
		if t.Failed() {
			b, _ := os.ReadFile(s.centralLog.Name())
			t.Logf("--- central log (tail) ---\n%s", tail(string(b), 8000))
		}
		s.centralLog.Close()
	})
	s.openCentral()
	s.runCentral()
	s.startGateway()
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// openCentral opens the ledger (again, after closeCentral).
func (s *site) openCentral() {
	s.t.Helper()
	c, err := central.New(central.Options{
		Site: siteName, Brokers: s.brokerURLs(), Signer: s.signer,
		GatewayKeys: envelope.Keyring{siteName + "/" + gwName: s.gwPub},
		DBPath:      filepath.Join(s.dir, "central.db"),
		// The same id on every restart: the broker keeps central's
		// session, and the events sent meanwhile, across a restart.
		ClientID:            "customs-faults",
		Logger:              slog.New(slog.NewTextHandler(s.centralLog, &slog.HandlerOptions{Level: slog.LevelInfo})),
		HeadInterval:        s.o.headInterval,
		MaxOrdersPerMessage: s.o.perMessage, ReplayOrdersPerMessage: s.o.replayBatch,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmu.Lock()
	s.central = c
	s.cmu.Unlock()
}

// brokerURLs are the brokers central connects to.
func (s *site) brokerURLs() []string {
	if s.spare != nil {
		return []string{s.broker.URL(), s.spare.URL()}
	}
	return []string{s.broker.URL()}
}

// runCentral connects central to the broker; stopCentral disconnects it
// (the ledger stays open: Issue and Record still work).
func (s *site) runCentral() {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	c := s.c()
	go func() { done <- c.Run(ctx) }()
	s.cmu.Lock()
	s.stopC, s.centralRun = cancel, done
	s.cmu.Unlock()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		s.t.Fatalf("central not connected: %v", err)
	}
}

func (s *site) stopCentral() {
	s.cmu.Lock()
	cancel, done := s.stopC, s.centralRun
	s.stopC, s.centralRun = nil, nil
	s.cmu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	if err := <-done; err != nil {
		s.t.Errorf("central: %v", err)
	}
}

func (s *site) closeCentral() {
	s.cmu.Lock()
	c := s.central
	s.central = nil
	s.cmu.Unlock()
	if c != nil {
		c.Close()
	}
}

// restartCentral reopens central on its ledger and connects it again (a
// Central runs once).
func (s *site) restartCentral() {
	s.stopCentral()
	s.closeCentral()
	s.openCentral()
	s.runCentral()
}

func (s *site) c() *central.Central {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.central
}

func (s *site) startGateway() {
	s.t.Helper()
	s.starts++
	s.gw = testenv.Start(s.t, fmt.Sprintf("cargogate#%d", s.starts), cargogateBin, "run", "--config", s.cfgPath)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get("http://" + s.gwHTTP + "/api/status"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		if s.gw.Exited() {
			s.t.Fatalf("gateway exited at start:\n%s", tail(s.gw.Output(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("gateway not answering on %s", s.gwHTTP)
}

// gwStatus is the part of /api/status the suite reads.
type gwStatus struct {
	Ready         bool     `json:"ready"`
	StoreWritable bool     `json:"store_writable"`
	Alarms        []string `json:"alarms"`
	Link          struct {
		Online     bool    `json:"online"`
		PubOnline  bool    `json:"events_online"`
		Broker     string  `json:"broker"`
		PubBroker  string  `json:"events_broker"`
		Applied    uint64  `json:"applied_seq"`
		Head       uint64  `json:"head_seq"`
		Lag        uint64  `json:"lag"`
		Outbox     int     `json:"outbox"`
		Rejected   uint64  `json:"rejected"`
		Duplicates uint64  `json:"orders_duplicate"`
		Conflicts  uint64  `json:"orders_conflict"`
		Resyncs    uint64  `json:"resyncs"`
		Resyncing  bool    `json:"resyncing"`
		Oldest     float64 `json:"outbox_oldest_s"`
		Redeliver  bool    `json:"redeliver_due"`
		OutboxH    *struct {
			Alarm   bool   `json:"alarm"`
			Refused uint64 `json:"refused"`
			Failed  uint64 `json:"failed"`
		} `json:"outbox_health"`
	} `json:"link"`
}

// status reads /api/status; ok is false when the gateway does not answer.
func (s *site) status() (gwStatus, bool) {
	var st gwStatus
	cl := http.Client{Timeout: 5 * time.Second}
	r, err := cl.Get("http://" + s.gwHTTP + "/api/status")
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

// waitFor polls the gateway's status until cond holds, failing after
// settle.
func (s *site) waitFor(what string, cond func(gwStatus) bool) gwStatus {
	s.t.Helper()
	deadline := time.Now().Add(settle)
	var st gwStatus
	for time.Now().Before(deadline) {
		var ok bool
		if st, ok = s.status(); ok && cond(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("%s: not reached within %v; last status %+v; central head %d", what, settle, st, s.c().Head())
	return st
}

// converge waits until the gateway applied every order of the ledger and
// delivered its outbox, and returns how long that took. It then waits for
// any redelivery after a reconnection (outbox.redeliver_window) to be done,
// which the figure leaves out.
func (s *site) converge() (time.Duration, gwStatus) {
	s.t.Helper()
	start := time.Now()
	head := s.c().Head()
	s.waitFor(fmt.Sprintf("applied_seq = head %d, outbox empty", head), func(st gwStatus) bool {
		return st.Link.Applied >= head && st.Link.Outbox == 0 && st.Link.Online
	})
	took := time.Since(start)
	st := s.waitFor("redelivery done", func(st gwStatus) bool {
		return st.Link.Applied >= head && st.Link.Outbox == 0 && st.Link.Online && !st.Link.Redeliver
	})
	return took, st
}

// scan writes a code as the scanner and waits for the gate's frame.
func (s *site) scan(code string) string {
	s.t.Helper()
	s.scanner.Write(s.t, code+"\r\n")
	f := strings.TrimSpace(s.gate.ReadFrame(20*time.Second, "PASS\r\n", "STOP\r\n"))
	s.smu.Lock()
	s.scans = append(s.scans, scanRec{code: code, frame: f})
	s.smu.Unlock()
	if f == "" {
		s.t.Fatalf("scan %q: no gate frame", code)
	}
	return f
}

// issue issues orders through central and returns the last seq.
func (s *site) issue(orders ...customs.Order) uint64 {
	s.t.Helper()
	_, last, err := s.c().Issue(context.Background(), orders)
	if err != nil {
		s.t.Fatal(err)
	}
	return last
}

func parcel(n int) customs.Subject {
	return customs.Subject{Kind: customs.Parcel, ID: central.ParcelID(n)}
}

func release(sj customs.Subject) customs.Order {
	return customs.Order{Action: customs.Release, Subject: sj, ExpiresAt: time.Now().Add(72 * time.Hour)}
}

// subjectsOf returns the distinct subjects of the ledger's orders from..to.
func (s *site) subjectsOf(from, to uint64) []customs.Subject {
	s.t.Helper()
	orders, err := s.c().Orders(from, to)
	if err != nil {
		s.t.Fatal(err)
	}
	seen := map[customs.Subject]bool{}
	var out []customs.Subject
	for _, o := range orders {
		if !seen[o.Subject] {
			seen[o.Subject] = true
			out = append(out, o.Subject)
		}
	}
	return out
}

// report is what a scenario's final check measured.
