package robustness

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

var (
	longFlag = flag.Bool("long", false, "run the long form: at least 10⁶ decisions (also CARGOGATE_ROBUST_LONG=1)")
	seedFlag = flag.Uint64("seed", 0, "base seed (also CARGOGATE_ROBUST_SEED); history i uses seed+i")
	onlyFlag = flag.Int("history", -1, "run only history i of the base seed (replay a failure)")
	verbose  = flag.Bool("robust.v", false, "log every operation of every history")
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		childMain()
		return
	}
	flag.Parse()
	os.Exit(m.Run())
}

func long() bool { return *longFlag || os.Getenv("CARGOGATE_ROBUST_LONG") == "1" }

func baseSeed(t testing.TB) uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	if s := os.Getenv("CARGOGATE_ROBUST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CARGOGATE_ROBUST_SEED: %v", err)
		}
		return v
	}
	return 20261206
}

// result is what one history did.
type result struct {
	Decisions int
	Passes    int
	Messages  int
	Faults    map[string]int
	Reasons   map[string]int // the gateway's decisions by reason
	// Fail is the first failure ("" if none): "FALSE PASS: …", a PASS the
	// oracle does not give, or "STOP WITHOUT CAUSE: …", a STOP where the
	// oracle passes although no retention has run (retention may forget
	// subjects that left the terminal, so after it such a STOP is only
	// counted).
	Fail        string
	FailStep    int // its op index
	Failures    int // histories that failed (long form totals)
	FalsePasses int // of which with a false PASS
	StopOracle  int // STOP where the oracle passes (lesser; counted)
	StopNotes   []string
	ReasonDiff  int // both STOP, reason not one the oracle allows
	Err         error
}

// runner plays one history against a fresh gateway and the model.
type runner struct {
	t  testing.TB
	h  *history
	gw *gateway

	// The model.
	ledger   map[uint64]mOrder // the orders the gateway acknowledged, first content kept
	or       *oracle           // over ledger, rebuilt when it changed
	dirty    bool
	floor    time.Time // newest central time among the orders applied (and heads)
	floorAll time.Time // the same over every order of an accepted message
	retained bool      // a retention has run
	seen     time.Time // latest wall reading at a decision (saved at every stop)
	seenEver time.Time // latest wall clock value of the history (any commit may read it)
	central  []wOrder  // every order central issued so far
	online   bool
	blocked  bool
	pending  int // events in the outbox
	late     []*msg
	lookup   string
	offset   time.Duration // wall clock minus true time
	res      result
	opIndex  int
}

func newRunner(t testing.TB, h *history) *runner {
	return &runner{t: t, h: h, ledger: map[uint64]mOrder{}, online: true, lookup: "silent",
		res: result{Faults: map[string]int{}, Reasons: map[string]int{}}}
}

// accepted reports whether the gateway takes m (§2): a good envelope, a
// trusted key.
func (r *runner) accepted(m *msg) bool {
	return m.Corrupt == "" && slices.Contains(r.gw.keys, m.Kid)
}

// acked records a PUBACK: the orders of an accepted message are applied.
func (r *runner) acked(m *msg) {
	if !r.accepted(m) {
		return
	}
	if m.Topic == "head" {
		if m.At.After(r.floor) {
			r.floor = m.At
		}
		if m.At.After(r.floorAll) {
			r.floorAll = m.At
		}
		return
	}
	if m.At.After(r.floorAll) {
		r.floorAll = m.At
	}
	for _, w := range m.Orders {
		if w.O.IssuedAt.After(r.floorAll) {
			r.floorAll = w.O.IssuedAt
		}
		if !w.applicable() {
			continue
		}
		if w.O.IssuedAt.After(r.floor) {
			r.floor = w.O.IssuedAt
		}
		if _, ok := r.ledger[w.O.Seq]; !ok {
			r.ledger[w.O.Seq] = model(w)
			r.dirty = true
		}
	}
}

func (r *runner) oracle() *oracle {
	if r.or == nil || r.dirty {
		orders := make([]mOrder, 0, len(r.ledger))
		for _, o := range r.ledger {
			orders = append(orders, o)
		}
		r.or, r.dirty = newOracle(orders), false
	}
	return r.or
}

// deliver feeds messages and applies the acknowledged ones to the model.
func (r *runner) deliver(ms []*msg) error {
	acked := r.gw.feedAll(ms)
	r.res.Messages += len(ms)
	for i, ok := range acked {
		if !ok {
			return fmt.Errorf("message not acknowledged: %s", ms[i])
		}
		r.acked(ms[i])
	}
	return nil
}

// checkDurable fails the history if a valid order of a message the gateway
// acknowledged is not in its store (before any retention, which may
// remove orders): lost to a kill, or dropped with a bad neighbour.
func (r *runner) checkDurable() error {
	if r.retained {
		return nil
	}
	for seq := range r.ledger {
		_, ok, err := r.gw.st.Order(seq)
		if err != nil {
			return err
		}
		if !ok {
			r.res.Fail = fmt.Sprintf("LOST ORDER of seq %d (%s): valid, in a message the gateway acknowledged, and not in its store after a restart", seq, r.ledger[seq])
			return nil
		}
	}
	return nil
}

// checkWatermark fails the history if the applied watermark is not
// the highest seq W with every seq up to W applied (§5.2).
func (r *runner) checkWatermark() error {
	var w uint64
	for {
		if _, ok := r.ledger[w+1]; !ok {
			break
		}
		w++
	}
	// The store's watermark, committed with the orders before the PUBACK
	// (the link's copy is set just after the PUBACKs).
	p, err := r.gw.st.Progress()
	if err != nil {
		return err
	}
	if got := p.Watermark; got != w && r.res.Fail == "" {
		r.res.Fail = fmt.Sprintf("WATERMARK of the gateway %d: every seq up to %d is applied and %d is not", got, w, w+1)
	}
	return nil
}

// lookupReply is central's answer to a lookup of s: every order issued on
// s and on the containers it is linked into.
func (r *runner) lookupReply(s customs.Subject) *msg {
	var ms []mOrder
	for _, w := range r.central {
		if w.applicable() {
			ms = append(ms, model(w))
		}
	}
	anc := newOracle(ms).ancestors(s)
	m := &msg{Topic: "lookup", Kid: r.gw.keys[0], RequestID: fmt.Sprintf("L%d", r.opIndex)}
	for _, w := range r.central {
		if _, ok := anc[w.O.Subject]; ok || w.O.Subject == s {
			m.Orders = append(m.Orders, w)
		}
	}
	return m
}

// stationLookup is the station's lookup, answered as the decide op says.
func (r *runner) stationLookup(ctx context.Context, s customs.Subject) error {
	r.res.Faults["lookup_"+r.lookup]++
	switch r.lookup {
	case "answer":
		return r.deliver([]*msg{r.lookupReply(s)})
	case "late":
		r.late = append(r.late, r.lookupReply(s))
	}
	return context.DeadlineExceeded
}

func (r *runner) start() error {
	if err := r.gw.start(r.stationLookup, r.online); err != nil {
		return err
	}
	// The clock's latest wall reading survives: the stop saved it (and
	// every batch stores it), and the start restores it.
	r.pending, _ = r.gw.jr.Depth()
	return nil
}

// run plays the history. It stops at the first PASS the oracle does not
// give.
func (r *runner) run() result {
	dir, err := dataDir()
	if err != nil {
		r.res.Err = err
		return r.res
	}
	defer os.RemoveAll(dir)
	r.gw = &gateway{dir: dir, keys: []string{kid1}, lp: true, log: slog.New(slog.DiscardHandler)}
	r.gw.wall.Store(time.Date(2026, 9, 1, 6, 0, 0, 0, time.UTC).UnixNano())
	if err := r.start(); err != nil {
		r.res.Err = err
		return r.res
	}
	defer func() { _ = r.gw.halt() }()
	for i := range r.h.Ops {
		r.opIndex = i
		o := &r.h.Ops[i]
		if *verbose {
			r.t.Logf("op %d: %s", i, o)
		}
		if err := r.do(o); err != nil {
			r.res.Err = fmt.Errorf("op %d (%s): %w", i, opNames[o.Kind], err)
			return r.res
		}
		if r.res.Fail != "" {
			r.res.FailStep = i
			return r.res
		}
	}
	return r.res
}

// sizes of the short and the long form.
func config() (histories int, cfg genConfig) {
	cfg = genConfig{Subjects: 120, Steps: 120, Decide: 6, Faults: 0.25}
	if long() {
		return 600, genConfig{Subjects: 300, Steps: 250, Decide: 8, Faults: 0.25}
	}
	return 20, cfg
}

func TestRobustness(t *testing.T) {
	n, cfg := config()
	if os.Getenv("CARGOGATE_ROBUST_NO_RETENTION") == "1" {
		cfg.NoRetention = true
	}
	if os.Getenv("CARGOGATE_ROBUST_NO_KILL") == "1" {
		cfg.NoKill = true
	}
	if os.Getenv("CARGOGATE_ROBUST_NO_MALFORMED") == "1" {
		cfg.NoMalformed = true
	}
	seed := baseSeed(t)
	t.Logf("base seed %d, %d histories of %d steps over %d subjects (replay one: -seed %d -history i)", seed, n, cfg.Steps, cfg.Subjects, seed)
	var total result
	total.Faults = map[string]int{}
	total.Reasons = map[string]int{}
	start := time.Now()
	ran := 0
	for i := range n {
		if *onlyFlag >= 0 && i != *onlyFlag {
			continue
		}
		ran++
		hs := seed + uint64(i)
		h := generate(hs, cfg)
		res := newRunner(t, h).run()
		for k, v := range h.Net {
			res.Faults[k] += v
		}
		t.Logf("history %d (seed %d): %d decisions (%d PASS), %d messages, faults %v, STOP where the oracle passes %d, other STOP reason %d",
			i, hs, res.Decisions, res.Passes, res.Messages, res.Faults, res.StopOracle, res.ReasonDiff)
		for _, n := range res.StopNotes {
			t.Logf("  %s", n)
		}
		total.Decisions += res.Decisions
		total.Passes += res.Passes
		total.Messages += res.Messages
		total.StopOracle += res.StopOracle
		total.ReasonDiff += res.ReasonDiff
		for k, v := range res.Faults {
			total.Faults[k] += v
		}
		for k, v := range res.Reasons {
			total.Reasons[k] += v
		}
		if res.Err != nil {
			t.Fatalf("history %d (seed %d): %v", i, hs, res.Err)
		}
		if res.Fail != "" {
			total.Failures++
			if strings.HasPrefix(res.Fail, "FALSE PASS") {
				total.FalsePasses++
			}
			t.Errorf("history %d (seed %d): failure at op %d: %s", i, hs, res.FailStep, res.Fail)
			if total.Failures == 1 {
				shrinkAndReport(t, h, cfg)
			}
			if !long() {
				t.FailNow()
			}
			// The long form goes on with the next history, to count.
		}
	}
	faults := 0
	keys := make([]string, 0, len(total.Faults))
	for k, v := range total.Faults {
		keys = append(keys, k)
		switch k {
		case "lookup_answer", "late_lookup_reply", "outbox_full_scan":
			// Not faults: a lookup answered in time, the replies of late
			// lookups (counted as lookup_late), scans while the outbox is full.
		default:
			faults += v
		}
	}
	sort.Strings(keys)
	var fs []string
	for _, k := range keys {
		fs = append(fs, fmt.Sprintf("%s %d", k, total.Faults[k]))
	}
	t.Logf("TOTAL: %d histories, %d decisions (%d PASS), %d messages, %d faults injected (%s), failed histories %d (with a false PASS %d), STOP where the oracle passes %d, other STOP reason %d, %s",
		ran, total.Decisions, total.Passes, total.Messages, faults, strings.Join(fs, ", "), total.Failures, total.FalsePasses, total.StopOracle, total.ReasonDiff, time.Since(start).Round(time.Second))
	t.Logf("decisions by reason: %v", total.Reasons)
	if long() && *onlyFlag < 0 && total.Decisions < 1_000_000 {
		t.Errorf("the long form made %d decisions, fewer than 10⁶", total.Decisions)
	}
}
