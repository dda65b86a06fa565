package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/drivers"
	"github.com/cargogate/cargogate/gateway/clock"
	"github.com/cargogate/cargogate/gateway/ident"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/station"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/internal/testenv"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/link"
)

const (
	site    = "PVG-W"
	gwName  = "g07"
	kidName = "central-bench"
)

// row is one line of the table.
type row struct {
	target, what, value, goal, ratio, met string
}

type bench struct {
	ctx    context.Context
	o      options
	stderr io.Writer
	env    *env
	mach   machine
	broker string
	keys   envelope.Keyring
	signer envelope.Signer // central's
	gwKey  envelope.Signer
	log    *slog.Logger
	rows   []row
	notes  []string

	scanner, gate *testenv.Pty
	frames        chan frame

	heapPeak  atomic.Uint64
	allPeak   uint64 // the live heap's peak over targets 2, 4 and 5
	inStation stationTimes
	lastProg  time.Time
}

func newBench(ctx context.Context, o options, stderr io.Writer) (*bench, error) {
	dir := o.workDir
	if dir == "" {
		d, err := os.MkdirTemp("", "cargobench-")
		if err != nil {
			return nil, err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	b := &bench{ctx: ctx, o: o, stderr: stderr, env: &env{dir: dir}, mach: machineFacts(dir)}
	if o.workDir == "" && !o.keep {
		b.env.Cleanup(func() { os.RemoveAll(dir) })
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	b.keys = envelope.Keyring{kidName: pub}
	b.signer = envelope.Signer{Kid: kidName, Key: priv}
	_, gpriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	b.gwKey = envelope.Signer{Kid: site + "/" + gwName, Key: gpriv}
	lf, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		return nil, err
	}
	b.env.Cleanup(func() { lf.Close() })
	b.log = slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return b, nil
}

func (b *bench) close() { b.env.close() }

func (b *bench) dir(name string) string {
	d := filepath.Join(b.env.dir, name)
	if err := os.MkdirAll(d, 0o750); err != nil {
		b.env.fail(err.Error())
	}
	return d
}

// progress shows where a scenario stands, at most 5 times a second.
func (b *bench) progress(msg string) {
	if b.o.quiet || time.Since(b.lastProg) < 200*time.Millisecond {
		return
	}
	b.lastProg = time.Now()
	fmt.Fprintf(b.stderr, "\r\033[K%s", msg)
}

func (b *bench) phase(msg string) {
	if !b.o.quiet {
		fmt.Fprintf(b.stderr, "\r\033[K== %s\n", msg)
	}
}

func (b *bench) add(r row) { b.rows = append(b.rows, r) }

func (b *bench) note(f string, a ...any) { b.notes = append(b.notes, fmt.Sprintf(f, a...)) }

// all runs every scenario in the order that shares the most setup.
func (b *bench) all() error {
	if b.o.broker == "" {
		b.phase("starting mosquitto")
		m := testenv.NewMosquitto(b.env, "max_queued_messages 10000000", "max_queued_bytes 0",
			"max_inflight_messages 20000", "max_inflight_bytes 0", "memory_limit 0")
		b.broker = m.URL()
	} else {
		b.broker = b.o.broker
	}
	b.scanner, b.gate = testenv.NewPty(b.env), testenv.NewPty(b.env)
	b.frames = make(chan frame, 64)
	go readFrames(b.gate, b.frames)
	go b.sampleHeap()
	b.watchPeaks()
	go sampleLive(b.ctx)

	if err := b.ingestRatio(); err != nil {
		return fmt.Errorf("ingest ratio: %w", err)
	}
	return b.large()
}

// sampleHeap keeps the peak of the Go heap's live objects.
func (b *bench) sampleHeap() {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
		metrics.Read(s)
		v := s[0].Value.Uint64()
		for {
			old := b.heapPeak.Load()
			if v <= old || b.heapPeak.CompareAndSwap(old, v) {
				break
			}
		}
	}
}

// startProfile starts a CPU profile named name when -profile is set.
func (b *bench) startProfile(name string) func() {
	if b.o.profileDir == "" {
		return func() {}
	}
	if err := os.MkdirAll(b.o.profileDir, 0o750); err != nil {
		b.env.fail(err.Error())
	}
	f, err := os.Create(filepath.Join(b.o.profileDir, name+".cpu.pprof"))
	if err != nil {
		b.env.fail(err.Error())
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.env.fail(err.Error())
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// onLivePeak, when set (-profile), runs when the live heap reaches a new
// peak: it keeps a heap profile of the latest peak (at most one each 250 ms).
var onLivePeak atomic.Pointer[func()]

// peakProfile is the heap profile taken at the latest live peak.
var peakProfile struct {
	sync.Mutex
	buf  bytes.Buffer
	last time.Time
}

func (b *bench) watchPeaks() {
	if b.o.profileDir == "" {
		return
	}
	f := func() {
		peakProfile.Lock()
		defer peakProfile.Unlock()
		if time.Since(peakProfile.last) < 250*time.Millisecond {
			return
		}
		peakProfile.last = time.Now()
		peakProfile.buf.Reset()
		pprof.Lookup("heap").WriteTo(&peakProfile.buf, 0)
	}
	onLivePeak.Store(&f)
}

// writePeakProfile writes the heap profile of the latest live peak (the
// in-use figures are as of the GC before it).
func (b *bench) writePeakProfile(name string) {
	if b.o.profileDir == "" {
		return
	}
	peakProfile.Lock()
	defer peakProfile.Unlock()
	if err := os.WriteFile(filepath.Join(b.o.profileDir, name+".pprof"), peakProfile.buf.Bytes(), 0o640); err != nil {
		b.env.fail(err.Error())
	}
}

func (b *bench) writeHeapProfile(name string) {
	if b.o.profileDir == "" {
		return
	}
	f, err := os.Create(filepath.Join(b.o.profileDir, name+".pprof"))
	if err != nil {
		b.env.fail(err.Error())
	}
	defer f.Close()
	pprof.Lookup("allocs").WriteTo(f, 0)
}

// gateway is the gateway's parts, wired as `cargogate run` wires them:
// the store and journal stay open; the link and the station start and stop.
type gateway struct {
	b      *bench
	st     *store.Store
	jr     *journal.Journal
	clk    *clock.Clock
	lk     *link.Link
	cancel context.CancelFunc
	done   chan error
	doneN  int
}

func (b *bench) openGateway(storePath, journalPath string) (*gateway, error) {
	st, err := store.Open(storePath, store.Options{})
	if err != nil {
		return nil, err
	}
	jr, err := journal.Open(journalPath, journal.Options{KeepDelivered: true, DeliveredPerCommit: b.o.perDelivered})
	if err != nil {
		st.Close()
		return nil, err
	}
	go jr.Run(context.Background()) // until jr.Close
	prog, err := st.Progress()
	if err != nil {
		st.Close()
		jr.Close()
		return nil, err
	}
	return &gateway{b: b, st: st, jr: jr, clk: clock.New(nil, prog.Floor)}, nil
}

// start runs the link and, with withStation, one gate station on the ptys.
func (g *gateway) start(withStation bool) error {
	b := g.b
	lk, err := link.New(link.Options{Site: site, Gateway: gwName, Broker: b.broker, Keys: b.keys, Signer: b.gwKey,
		Version: "bench", MaxBatch: b.o.maxBatch, MaxBatchBytes: b.o.batchBytes, Log: b.log}, g.st, g.jr, g.clk)
	if err != nil {
		return err
	}
	g.lk = lk
	ctx, cancel := context.WithCancel(b.ctx)
	g.cancel, g.done = cancel, make(chan error, 2)
	n := 1
	go func() { g.done <- lk.Run(ctx) }()
	// Central's acknowledgements of events (amendment 3): without them no
	// event leaves the outbox.
	go b.acker(ctx)
	if withStation {
		cls, err := ident.New([]string{`^LP\d{14}$`}, nil, nil)
		if err != nil {
			cancel()
			return err
		}
		reg := drivers.Default()
		sc, err := reg.NewScanner(config.Device{Driver: "serial", Section: &drivers.SerialScannerConfig{Port: b.scanner.Path, Baud: 9600}})
		if err != nil {
			cancel()
			return err
		}
		gate, err := reg.NewGate(config.Device{Driver: "serial", Section: &drivers.SerialGateConfig{Port: b.gate.Path, Baud: 9600}})
		if err != nil {
			cancel()
			return err
		}
		// Lookups off: the bench has no central to answer them, and it
		// scans only released parcels.
		s := station.New(station.Config{ID: "gate-3", Role: "gate", Classifier: cls, Scanner: sc, Gate: gate, LookupTimeout: -1},
			g.st, g.jr, lk, g.clk, &b.inStation, b.log)
		n++
		go func() { g.done <- s.Run(ctx) }()
	}
	g.doneN = n
	return nil
}

// stop ends the link and station and waits for them.
func (g *gateway) stop() error {
	if g.cancel == nil {
		return nil
	}
	g.cancel()
	var errs []error
	for range g.doneN {
		if err := <-g.done; err != nil {
			errs = append(errs, err)
		}
	}
	g.cancel = nil
	return joinErrs(errs)
}

func (g *gateway) close() {
	g.stop()
	g.jr.Close()
	g.st.Close()
}

// waitWatermark waits until the link has applied every seq up to w.
func (g *gateway) waitWatermark(w uint64, timeout time.Duration, what string) error {
	deadline := time.Now().Add(timeout)
	for g.lk.Watermark() < w {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: watermark %d after %v, want %d", what, g.lk.Watermark(), timeout, w)
		}
		if err := g.b.ctx.Err(); err != nil {
			return err
		}
		g.b.progress(fmt.Sprintf("%s: applied %d/%d", what, g.lk.Watermark(), w))
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// percentile of sorted durations.
func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(float64(len(d)-1) * p)
	return d[i]
}

func sortDur(d []time.Duration) []time.Duration {
	slices.Sort(d)
	return d
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/1e3) }

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return fmt.Errorf("%s", strings.Join(s, "; "))
}

func (b *bench) printTable(w io.Writer) {
	m := b.mach
	fmt.Fprintf(w, "\ncargobench  %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %s, %d cores, kernel %s, %s, GOMAXPROCS %d\n", m.CPU, m.Cores, m.Kernel, m.Go, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "disk:    %s\n", m.Disk)
	fmt.Fprintf(w, "sizes:   -max-batch %d -max-batch-bytes %d -delivered-per-commit %d -subjects %d -ratio-msgs %d -scale-orders %d -per-msg %d -live-rate %d -duration %v -scans %d -decisions %d -outbox-events %d\n\n",
		b.o.maxBatch, b.o.batchBytes, b.o.perDelivered, b.o.subjects, b.o.ratioMsgs, b.o.scaleOrders, b.o.perMsg, b.o.liveRate, b.o.duration, b.o.scans, b.o.decisions, b.o.outboxEvents)
	head := row{"#", "measure", "value", "target", "vs bare", "met"}
	rows := append([]row{head}, b.rows...)
	var wd [6]int
	for _, r := range rows {
		for i, c := range []string{r.target, r.what, r.value, r.goal, r.ratio, r.met} {
			wd[i] = max(wd[i], len([]rune(c)))
		}
	}
	line := func(r row) {
		cells := []string{r.target, r.what, r.value, r.goal, r.ratio, r.met}
		var sb strings.Builder
		for i, c := range cells {
			pad := wd[i] - len([]rune(c))
			if i == 2 || i == 4 {
				sb.WriteString("| " + strings.Repeat(" ", pad) + c + " ")
			} else {
				sb.WriteString("| " + c + strings.Repeat(" ", pad) + " ")
			}
		}
		fmt.Fprintln(w, sb.String()+"|")
	}
	line(head)
	var sep strings.Builder
	for i := range wd {
		sep.WriteString("|" + strings.Repeat("-", wd[i]+2))
	}
	fmt.Fprintln(w, sep.String()+"|")
	for _, r := range b.rows {
		line(r)
	}
	for _, n := range b.notes {
		fmt.Fprintln(w, "note: "+n)
	}
}

// frame is one gate frame read from the gate pty, and when.
type frame struct {
	text string
	at   time.Time
}

// readFrames plays the gate controller: it reads the gate pty and reports
// each PASS or STOP frame as it completes.
func readFrames(p *testenv.Pty, out chan<- frame) {
	var buf []byte
	b := make([]byte, 512)
	for {
		n, err := p.Master.Read(b)
		at := time.Now()
		if err != nil {
			if n == 0 {
				if os.IsTimeout(err) {
					continue
				}
				return
			}
		}
		buf = append(buf, b[:n]...)
		for {
			i := strings.Index(string(buf), "\r\n")
			if i < 0 {
				break
			}
			out <- frame{string(buf[:i]), at}
			buf = buf[i+2:]
		}
	}
}

// stationTimes records each outcome's latency inside the station (decide,
// journal append with its fsync, gate write): set against scan to gate, it
// tells the gateway's share from the ptys' and the scheduler's.
type stationTimes struct {
	mu  sync.Mutex
	lat []time.Duration
}

var _ station.Observer = (*stationTimes)(nil)

func (s *stationTimes) Decided(o station.Outcome) {
	s.mu.Lock()
	s.lat = append(s.lat, o.Latency)
	s.mu.Unlock()
}

func (s *stationTimes) Device(string, string, drivers.State, string) {}

// take returns the latencies recorded since the last take, sorted.
func (s *stationTimes) take() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.lat
	s.lat = nil
	return sortDur(out)
}
