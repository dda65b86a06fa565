package station_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/rules"
	"github.com/cargogate/cargogate/gateway/station"
)

// The fakes below sit at the station's interfaces (Decider, Journal, Link,
// Clock, Scanner, Gate, Observer) and write what they are asked, in order,
// to one shared log, so that a test can say what happened before what.

// trail is the order of the calls made at the station's interfaces.
type trail struct {
	mu  sync.Mutex
	log []string
}

func (t *trail) add(format string, a ...any) {
	t.mu.Lock()
	t.log = append(t.log, fmt.Sprintf(format, a...))
	t.mu.Unlock()
}

func (t *trail) list() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.log)
}

// fakeDecider decides each subject id as its table says (unknown when not
// in it); a lookup may change the table (lookedUp).
type fakeDecider struct {
	tr       *trail
	mu       sync.Mutex
	by       map[string]rules.Decision
	lookedUp map[string]rules.Decision // applied by fakeLink.Lookup
	at       []time.Time
}

func (d *fakeDecider) Decide(s customs.Subject, now time.Time) rules.Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at = append(d.at, now)
	d.tr.add("decide %s", s.ID)
	if dec, ok := d.by[s.ID]; ok {
		return dec
	}
	return rules.Decision{Reason: customs.ReasonUnknown}
}

// fakeJournal keeps the events appended; err, when set, refuses them.
type fakeJournal struct {
	tr     *trail
	mu     sync.Mutex
	err    error
	events []customs.Event
}

func (j *fakeJournal) Append(_ context.Context, data []byte) (uint64, error) {
	var ev customs.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return 0, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		j.tr.add("journal %s refused", ev.Kind)
		return 0, j.err
	}
	j.events = append(j.events, ev)
	switch ev.Kind {
	case customs.EventScan:
		j.tr.add("journal scan %s", strings.ToUpper(ev.Decision))
	case customs.EventDevice:
		j.tr.add("journal device %s %s", ev.Device, ev.State)
	default:
		j.tr.add("journal %s", ev.Kind)
	}
	return uint64(len(j.events)), nil
}

func (j *fakeJournal) list() []customs.Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events)
}

// fakeLink is online or not at a watermark; a lookup applies the decider's
// lookedUp table, or fails with err.
type fakeLink struct {
	tr        *trail
	online    bool
	watermark uint64
	err       error
	d         *fakeDecider
}

func (l *fakeLink) Online() bool      { return l.online }
func (l *fakeLink) Watermark() uint64 { return l.watermark }
func (l *fakeLink) Lookup(ctx context.Context, s customs.Subject) error {
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("lookup without a deadline")
	}
	l.tr.add("lookup %s", s.ID)
	if l.err != nil {
		return l.err
	}
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	if dec, ok := l.d.lookedUp[s.ID]; ok {
		l.d.by[s.ID] = dec
	}
	return nil
}

// stoppedClock always says the same time.
type stoppedClock struct{ t time.Time }

func (c stoppedClock) Now() time.Time { return c.t }

// fakeGate records each signal after the journal's entries; err fails them.
type fakeGate struct {
	tr  *trail
	err error
}

func (g *fakeGate) Run(ctx context.Context, _ device.StateFunc) error { <-ctx.Done(); return nil }
func (g *fakeGate) Signal(_ context.Context, pass bool) error {
	g.tr.add("gate %s", map[bool]string{true: "PASS", false: "STOP"}[pass])
	return g.err
}

var (
	t0       = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	released = rules.Decision{Pass: true, Reason: customs.ReasonReleased, BasisSeq: 7}
	held     = rules.Decision{Reason: customs.ReasonHeldPrefix + "x-ray", BasisSeq: 8}
)

// TestHandle decides one read at a gate station for each way a scan can
// go: only a released subject whose event is journalled opens the gate,
// and the gate hears of it after the journal.
func TestHandle(t *testing.T) {
	const bag, other = "LP00000000000001", "LP00000000000002"
	for _, tc := range []struct {
		name       string
		read       device.Read
		decide     map[string]rules.Decision
		lookedUp   map[string]rules.Decision // what a lookup brings
		online     bool
		lookupErr  error
		lookup     time.Duration // lookup timeout; 0: lookups off
		journalErr error

		pass    bool
		reason  string
		problem string   // a part of Outcome.Problem; "" : none
		gate    string   // Outcome.Gate
		trail   []string // calls at the interfaces, in order
	}{{
		name: "released", read: device.Read{Line: []byte(bag)}, decide: map[string]rules.Decision{bag: released},
		pass: true, reason: customs.ReasonReleased, gate: "opened",
		trail: []string{"decide " + bag, "journal scan PASS", "gate PASS"},
	}, {
		name: "held", read: device.Read{Line: []byte(bag)}, decide: map[string]rules.Decision{bag: held},
		reason: held.Reason, gate: "closed",
		trail: []string{"decide " + bag, "journal scan STOP", "gate STOP"},
	}, {
		name: "unknown offline: no lookup", read: device.Read{Line: []byte(bag)}, lookup: time.Second,
		lookedUp: map[string]rules.Decision{bag: released},
		reason:   customs.ReasonUnknown, gate: "closed",
		trail: []string{"decide " + bag, "journal scan STOP", "gate STOP"},
	}, {
		name: "unknown online, lookups off", read: device.Read{Line: []byte(bag)}, online: true,
		lookedUp: map[string]rules.Decision{bag: released},
		reason:   customs.ReasonUnknown, gate: "closed",
		trail: []string{"decide " + bag, "journal scan STOP", "gate STOP"},
	}, {
		name: "unknown, looked up: released", read: device.Read{Line: []byte(bag)}, online: true, lookup: time.Second,
		lookedUp: map[string]rules.Decision{bag: released},
		pass:     true, reason: customs.ReasonReleased, gate: "opened",
		trail: []string{"decide " + bag, "lookup " + bag, "decide " + bag, "journal scan PASS", "gate PASS"},
	}, {
		name: "unknown, looked up: still unknown", read: device.Read{Line: []byte(bag)}, online: true, lookup: time.Second,
		lookedUp: map[string]rules.Decision{other: released},
		reason:   customs.ReasonUnknown, gate: "closed",
		trail: []string{"decide " + bag, "lookup " + bag, "decide " + bag, "journal scan STOP", "gate STOP"},
	}, {
		name: "unknown, lookup fails", read: device.Read{Line: []byte(bag)}, online: true, lookup: time.Second,
		lookupErr: context.DeadlineExceeded, lookedUp: map[string]rules.Decision{bag: released},
		reason: customs.ReasonUnknown, gate: "closed",
		trail: []string{"decide " + bag, "lookup " + bag, "journal scan STOP", "gate STOP"},
	}, {
		name: "held: no lookup", read: device.Read{Line: []byte(bag)}, online: true, lookup: time.Second,
		decide: map[string]rules.Decision{bag: held}, lookedUp: map[string]rules.Decision{bag: released},
		reason: held.Reason, gate: "closed",
		trail: []string{"decide " + bag, "journal scan STOP", "gate STOP"},
	}, {
		name: "invalid code", read: device.Read{Line: []byte("hello")}, decide: map[string]rules.Decision{"hello": released},
		reason: customs.ReasonInvalidCode, problem: "", gate: "closed",
		trail: []string{"journal scan STOP", "gate STOP"},
	}, {
		name: "overlong code", read: device.Read{Line: []byte(strings.Repeat("9", 513)), Overlong: true},
		reason: customs.ReasonInvalidCode, problem: "longer than 512", gate: "closed",
		trail: []string{"journal scan STOP", "gate STOP"},
	}, {
		name: "released, journal refuses", read: device.Read{Line: []byte(bag)}, decide: map[string]rules.Decision{bag: released},
		journalErr: errors.New("disk full"),
		reason:     customs.ReasonError, problem: "cannot record the decision: disk full", gate: "closed",
		trail: []string{"decide " + bag, "journal scan refused", "gate STOP"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &trail{}
			d := &fakeDecider{tr: tr, by: map[string]rules.Decision{}, lookedUp: tc.lookedUp}
			for k, v := range tc.decide {
				d.by[k] = v
			}
			j := &fakeJournal{tr: tr, err: tc.journalErr}
			lk := &fakeLink{tr: tr, online: tc.online, watermark: 41, err: tc.lookupErr, d: d}
			g := &fakeGate{tr: tr}
			st := station.New(station.Config{ID: "gate-3", Role: "gate", Classifier: classifier(t), Gate: g, LookupTimeout: tc.lookup},
				d, j, lk, stoppedClock{t0}, nil, slog.New(slog.DiscardHandler))
			read := tc.read
			read.At = t0.Add(-time.Second)
			out := st.Handle(context.Background(), read)

			if out.Pass != tc.pass || out.Reason != tc.reason || out.Gate != tc.gate {
				t.Errorf("outcome pass %v reason %q gate %q; want pass %v reason %q gate %q (problem %q)",
					out.Pass, out.Reason, out.Gate, tc.pass, tc.reason, tc.gate, out.Problem)
			}
			if tc.problem != "" && !strings.Contains(out.Problem, tc.problem) {
				t.Errorf("problem %q, want it to contain %q", out.Problem, tc.problem)
			}
			if got := tr.list(); !slices.Equal(got, tc.trail) {
				t.Errorf("calls\n got %q\nwant %q", got, tc.trail)
			}
			for _, at := range d.at {
				if !at.Equal(t0) {
					t.Errorf("decided at %v, not at the clock's %v", at, t0)
				}
			}
			if out.Offline == tc.online {
				t.Errorf("outcome offline %v with the link online %v", out.Offline, tc.online)
			}
			if tc.journalErr != nil {
				return
			}
			evs := j.list()
			if len(evs) != 1 {
				t.Fatalf("%d events journalled, want 1", len(evs))
			}
			ev := evs[0]
			wantVerdict := map[bool]string{true: customs.Pass, false: customs.Stop}[tc.pass]
			if ev.Kind != customs.EventScan || ev.ID != out.EventID || ev.Station != "gate-3" || ev.Role != "gate" ||
				ev.Decision != wantVerdict || ev.Reason != tc.reason || !ev.At.Equal(read.At) {
				t.Errorf("event %+v; outcome %+v", ev, out)
			}
			if ev.AppliedSeq == nil || *ev.AppliedSeq != 41 || ev.Offline == nil || *ev.Offline == tc.online {
				t.Errorf("event applied_seq %v offline %v; want 41 and %v", ev.AppliedSeq, ev.Offline, !tc.online)
			}
			if (ev.Subject != nil) != (tc.reason != customs.ReasonInvalidCode) {
				t.Errorf("event subject %v for reason %s", ev.Subject, tc.reason)
			}
		})
	}
}

// A gate the station could not tell is a device fault, journalled as a
// device event after the scan's; a gate answering again is up.
func TestHandleGateFault(t *testing.T) {
	tr := &trail{}
	d := &fakeDecider{tr: tr, by: map[string]rules.Decision{"LP00000000000001": released}}
	j := &fakeJournal{tr: tr}
	g := &fakeGate{tr: tr, err: errors.New("no ack")}
	st := station.New(station.Config{ID: "gate-3", Role: "gate", Classifier: classifier(t), Gate: g},
		d, j, nil, stoppedClock{t0}, nil, slog.New(slog.DiscardHandler))
	if out := st.Handle(context.Background(), device.Read{Line: []byte("LP00000000000001")}); out.Gate != "fault" {
		t.Errorf("gate %q, want fault", out.Gate)
	}
	g.err = nil
	if out := st.Handle(context.Background(), device.Read{Line: []byte("LP00000000000001")}); out.Gate != "opened" {
		t.Errorf("gate %q, want opened", out.Gate)
	}
	want := []string{"decide LP00000000000001", "journal scan PASS", "gate PASS", "journal device gate fault",
		"decide LP00000000000001", "journal scan PASS", "gate PASS", "journal device gate up"}
	if got := tr.list(); !slices.Equal(got, want) {
		t.Errorf("calls\n got %q\nwant %q", got, want)
	}
}

// scriptScanner reports the states of states in turn, then one read, then
// waits for the end.
type scriptScanner struct {
	states []device.State
	read   device.Read
}

func (s scriptScanner) Run(ctx context.Context, emit func(device.Read), state device.StateFunc) error {
	for _, st := range s.states {
		state(st, "now "+string(st))
	}
	emit(s.read)
	<-ctx.Done()
	return nil
}

// devObserver records the device changes and outcomes it hears of.
type devObserver struct{ tr *trail }

func (o devObserver) Decided(out station.Outcome) { o.tr.add("observer %s %s", out.Kind, out.Reason) }
func (o devObserver) Device(st, dev string, s device.State, detail string) {
	o.tr.add("observer device %s %s %s (%s)", st, dev, s, detail)
}

// A device's state changes are journalled as device events, once per
// change (a repeated state is not), before the observer hears of them, and
// in the order the driver reported them, in a testing/synctest bubble: the
// station's goroutines are done with the script when all are blocked.
func TestDeviceEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &trail{}
		d := &fakeDecider{tr: tr, by: map[string]rules.Decision{}}
		j := &fakeJournal{tr: tr}
		sc := scriptScanner{states: []device.State{device.Down, device.Up, device.Up, device.Fault},
			read: device.Read{Line: []byte("LP00000000000001"), At: t0}}
		st := station.New(station.Config{ID: "sort-1", Role: "sort", Classifier: classifier(t), Scanner: sc},
			d, j, nil, stoppedClock{t0}, devObserver{tr}, slog.New(slog.DiscardHandler))
		run(t, st)
		want := []string{
			"journal device scanner down", "observer device sort-1 scanner down (now down)",
			"journal device scanner up", "observer device sort-1 scanner up (now up)",
			"journal device scanner fault", "observer device sort-1 scanner fault (now fault)",
		}
		synctest.Wait() // the station's loop has handled all the script
		var devs []string
		for _, s := range tr.list() {
			if strings.Contains(s, "device") {
				devs = append(devs, s)
			}
		}
		if !slices.Equal(devs, want) {
			t.Errorf("device calls\n got %q\nwant %q", devs, want)
		}
		if !slices.Contains(tr.list(), "observer scan unknown") {
			t.Errorf("the read was not decided: %q", tr.list())
		}
		for _, ev := range j.list() {
			if ev.Kind == customs.EventDevice && (ev.Station != "sort-1" || ev.ID == "" || ev.Detail == "") {
				t.Errorf("device event %+v", ev)
			}
		}
		if got := st.Devices(); got["scanner"] != device.Fault {
			t.Errorf("devices %v", got)
		}
	})
}
