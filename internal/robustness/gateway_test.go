package robustness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/clock"
	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/ident"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/station"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/link"
)

// The real gateway path: signed envelopes (real Ed25519 keys) go through
// the link's verify and commit code (link.Ingest/Feed: no broker, the test
// plays the broker and sees every PUBACK), into gateway/store; scans go
// through gateway/station with the store as its Decider, the real journal
// as its outbox, the real clock over an injected wall clock, and the real
// identifier classifier. Only the gate (a recorder) and the station's view
// of the link (online, lookup) are stand-ins, at their interfaces.

const (
	site      = "PVG-W"
	gwName    = "g07"
	outboxMax = 40 // the journal's max_events
)

var (
	centralKeys = map[string]envelope.Signer{
		kid1: {Kid: kid1, Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))},
		kid2: {Kid: kid2, Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))},
	}
	gwKey = envelope.Signer{Kid: site + "/" + gwName, Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
)

func keyring(kids []string) envelope.Keyring {
	k := envelope.Keyring{}
	for _, id := range kids {
		k[id] = centralKeys[id].Public()
	}
	return k
}

func topicOf(m *msg) string {
	switch m.Topic {
	case "replay":
		return customs.GatewayTopic(site, gwName, customs.LeafReplay)
	case "lookup":
		return customs.GatewayTopic(site, gwName, customs.LeafLookupReply)
	case "head":
		return customs.HeadTopic(site)
	}
	return customs.OrdersTopic(site)
}

// wire signs m as central would (and spoils it as m.Corrupt says).
func wire(m *msg) []byte {
	st := site
	if m.Corrupt == "site" {
		st = "PVG-X"
	}
	var doc any
	if m.Topic == "head" {
		doc = customs.Head{Type: customs.TypeHead, Site: st, Seq: m.Head, At: m.At}
	} else {
		raws := make([]json.RawMessage, 0, len(m.Orders))
		for _, w := range m.Orders {
			raws = append(raws, w.raw())
		}
		typ := customs.TypeOrders
		if m.Corrupt == "type" {
			typ = customs.TypeHead
		}
		doc = struct {
			Type      string            `json:"type"`
			Site      string            `json:"site"`
			RequestID string            `json:"request_id,omitempty"`
			Orders    []json.RawMessage `json:"orders"`
		}{typ, st, m.RequestID, raws}
	}
	b, err := centralKeys[m.Kid].Seal(doc)
	if err != nil {
		panic(err)
	}
	if m.Corrupt == "sig" {
		var env envelope.Envelope
		if err := json.Unmarshal(b, &env); err != nil {
			panic(err)
		}
		sig, _ := base64.StdEncoding.DecodeString(env.Sig)
		sig[0] ^= 0x40
		env.Sig = base64.StdEncoding.EncodeToString(sig)
		b, _ = json.Marshal(env)
	}
	return b
}

// fakeMsg is a received MQTT message whose PUBACK the test sees.
type fakeMsg struct {
	topic   string
	payload []byte
	ack     func()
	once    sync.Once
}

func (m *fakeMsg) Duplicate() bool   { return false }
func (m *fakeMsg) Qos() byte         { return 1 }
func (m *fakeMsg) Retained() bool    { return false }
func (m *fakeMsg) Topic() string     { return m.topic }
func (m *fakeMsg) MessageID() uint16 { return 1 }
func (m *fakeMsg) Payload() []byte   { return m.payload }
func (m *fakeMsg) Ack()              { m.once.Do(m.ack) }

var _ mqtt.Message = (*fakeMsg)(nil)

// stationLink is the station's view of the link: online as the history
// says, the real link's watermark, and lookups answered by the runner.
type stationLink struct {
	lk     *link.Link
	online bool
	lookup func(ctx context.Context, s customs.Subject) error
}

func (l *stationLink) Online() bool      { return l.online }
func (l *stationLink) Watermark() uint64 { return l.lk.Watermark() }
func (l *stationLink) Lookup(ctx context.Context, s customs.Subject) error {
	return l.lookup(ctx, s)
}

// gateway is one gateway's parts, on a data directory that outlives them.
type gateway struct {
	dir  string
	wall atomic.Int64 // unix nanos
	keys []string
	lp   bool
	st   *store.Store
	jr   *journal.Journal
	clk  *clock.Clock
	lk   *link.Link
	sl   *stationLink
	stn  *station.Station
	gate *recGate
	stop context.CancelFunc
	done chan error
	log  *slog.Logger
}

// recGate is the gate: it records each frame it is told.
type recGate struct {
	mu   sync.Mutex
	last *bool
}

func (g *recGate) Run(ctx context.Context, _ device.StateFunc) error { <-ctx.Done(); return nil }

func (g *recGate) Signal(_ context.Context, pass bool) error {
	g.mu.Lock()
	g.last = &pass
	g.mu.Unlock()
	return nil
}

// take returns what the gate was told since the last take (nil: nothing).
func (g *recGate) take() *bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := g.last
	g.last = nil
	return v
}

func dataDir() (string, error) {
	base := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm" // tmpfs: fsync is cheap, the code path is the same
	}
	return os.MkdirTemp(base, "cargogate-robust")
}

func (g *gateway) wallNow() time.Time { return time.Unix(0, g.wall.Load()).UTC() }

func classifier(lp bool) *ident.Classifier {
	var parcel []string
	if lp {
		parcel = []string{lpPattern}
	}
	c, err := ident.New(parcel, []string{transitPattern}, nil)
	if err != nil {
		panic(err)
	}
	return c
}

// start opens the stores and starts the link's ingest and the station, as
// cmd/cargogate does at start: the clock's floor is the stored one.
func (g *gateway) start(lookup func(ctx context.Context, s customs.Subject) error, online bool) error {
	var err error
	if g.st, err = store.Open(filepath.Join(g.dir, "orders.db"), store.Options{InitialMmapSize: 16 << 20}); err != nil {
		return err
	}
	if g.jr, err = journal.Open(filepath.Join(g.dir, "events.db"), journal.Options{MaxEvents: outboxMax, Log: g.log}); err != nil {
		g.st.Close()
		return err
	}
	prog, err := g.st.Progress()
	if err != nil {
		return err
	}
	// As cmd/cargogate starts: max(stored floor, stored wall reading).
	g.clk = clock.New(g.wallNow, prog.Floor)
	g.clk.Restore(prog.Wall)
	g.lk, err = link.New(link.Options{Site: site, Gateway: gwName, Broker: "tcp://127.0.0.1:1", Keys: keyring(g.keys),
		Signer: gwKey, Log: g.log}, g.st, g.jr, g.clk)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stop, g.done = cancel, make(chan error, 2)
	go func() { g.done <- g.lk.Ingest(ctx) }()
	go func() { g.done <- g.jr.Run(ctx) }() // the journal's group commit
	g.sl = &stationLink{lk: g.lk, online: online, lookup: lookup}
	g.gate = &recGate{}
	g.stn = station.New(station.Config{ID: "gate-1", Role: "gate", Classifier: classifier(g.lp), Gate: g.gate,
		LookupTimeout: time.Minute}, g.st, g.jr, g.sl, g.clk, nil, g.log)
	return nil
}

// halt stops ingest and closes the stores. A clean stop saves the clock's
// latest wall reading, as the gateway's wall keeper does when it stops.
func (g *gateway) halt() error {
	if g.stop == nil {
		return nil
	}
	g.stop()
	<-g.done
	<-g.done
	g.stop = nil
	err := g.st.SaveWall(g.clk.Now())
	g.jr.Close()
	g.st.Close()
	return err
}

// feedAll hands the messages to the link at once (it may commit them in
// one batch) and returns, for each, whether it was acknowledged within
// the bound.
func (g *gateway) feedAll(ms []*msg) []bool {
	acked := make([]bool, len(ms))
	ch := make(chan int, len(ms))
	for i, m := range ms {
		g.lk.Feed(&fakeMsg{topic: topicOf(m), payload: wire(m), ack: func() { ch <- i }})
	}
	bound := time.After(2 * time.Minute) // a bound on a failure, never a figure
	for n := 0; n < len(ms); n++ {
		select {
		case i := <-ch:
			acked[i] = true
		case <-bound:
			return acked
		}
	}
	return acked
}

// The kill -9 helper: a child process (this test binary again) that runs
// the link's ingest on the store and reports each PUBACK on stdout.

const childEnv = "CARGOGATE_ROBUST_CHILD"

// childMain runs in the child process.
func childMain() {
	dir := os.Getenv(childEnv)
	wall, _ := strconv.ParseInt(os.Getenv("CARGOGATE_ROBUST_WALL"), 10, 64)
	kids := strings.Split(os.Getenv("CARGOGATE_ROBUST_KIDS"), ",")
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(filepath.Join(dir, "orders.db"), store.Options{InitialMmapSize: 16 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	prog, err := st.Progress()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	clk := clock.New(func() time.Time { return time.Unix(0, wall).UTC() }, prog.Floor)
	clk.Restore(prog.Wall)
	lk, err := link.New(link.Options{Site: site, Gateway: gwName, Broker: "tcp://127.0.0.1:1", Keys: keyring(kids),
		Signer: gwKey, Log: log}, st, nopOutbox{}, clk)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	go lk.Ingest(context.Background())
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 4<<20), 4<<20)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) != 3 {
			continue
		}
		payload, _ := base64.StdEncoding.DecodeString(f[2])
		id := f[0]
		lk.Feed(&fakeMsg{topic: f[1], payload: payload, ack: func() {
			mu.Lock()
			fmt.Fprintf(out, "ack %s\n", id)
			out.Flush()
			mu.Unlock()
		}})
	}
	select {} // until killed
}

// nopOutbox is the child's outbox: the child never delivers events.
type nopOutbox struct{}

func (nopOutbox) Pending(int, int) ([]journal.Entry, error) { return nil, nil }
func (nopOutbox) Delivered([]journal.Entry) error           { return nil }
func (nopOutbox) Depth() (int, int64)                       { return 0, 0 }
func (nopOutbox) Notify() <-chan struct{}                   { return nil }

// killIngest runs ms through a child process and SIGKILLs it once it has
// acknowledged killAfter of them (at once for 0). It returns which were
// acknowledged before the kill. The gateway must be halted.
func (g *gateway) killIngest(ms []*msg, killAfter int) ([]bool, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+g.dir,
		"CARGOGATE_ROBUST_WALL="+strconv.FormatInt(g.wall.Load(), 10),
		"CARGOGATE_ROBUST_KIDS="+strings.Join(g.keys, ","))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		w := bufio.NewWriter(stdin)
		for i, m := range ms {
			fmt.Fprintf(w, "%d %s %s\n", i, topicOf(m), base64.StdEncoding.EncodeToString(wire(m)))
		}
		w.Flush()
	}()
	acked := make([]bool, len(ms))
	lines := make(chan string, len(ms))
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	n := 0
	bound := time.After(2 * time.Minute)
	for n < killAfter {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				return nil, fmt.Errorf("child ended: %s", stderr.String())
			}
			if i, err := strconv.Atoi(strings.TrimPrefix(l, "ack ")); err == nil && i < len(ms) {
				acked[i] = true
				n++
			}
		case <-bound:
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("child acknowledged %d of %d messages in 2 minutes", n, killAfter)
		}
	}
	cmd.Process.Kill() // SIGKILL
	for l := range lines {
		// Acks written before the kill were acks.
		if i, err := strconv.Atoi(strings.TrimPrefix(l, "ack ")); err == nil && i < len(ms) {
			acked[i] = true
		}
	}
	cmd.Wait()
	stdin.Close()
	return acked, nil
}
