package station_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/arrival"
	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/ident"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/rules"
	"github.com/cargogate/cargogate/gateway/station"
)

// wait bounds every wait for an event; never a measurement.
const wait = 5 * time.Second

const tr1, tr2, bag1 = "TR0000000001", "TR0000000002", "LP00000000000001"

func classifier(t *testing.T) *ident.Classifier {
	t.Helper()
	c, err := ident.New([]string{`^LP\d{14}$`}, []string{`^TR\d{10}$`}, []string{`^SH-\d{6}$`})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type passAll struct{}

func (passAll) Decide(customs.Subject, time.Time) rules.Decision {
	return rules.Decision{Pass: true, Reason: customs.ReasonReleased, BasisSeq: 1}
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// contents: every transit holds bag1.
type contents struct{}

func (contents) Transit(customs.Subject) ([]string, bool, []customs.Subject, error) {
	return nil, false, []customs.Subject{{Kind: customs.Parcel, ID: bag1}}, nil
}

// idleScanner reads nothing: the station's loop runs on its ticks alone.
type idleScanner struct{}

func (idleScanner) Run(ctx context.Context, _ func(device.Read), _ device.StateFunc) error {
	<-ctx.Done()
	return nil
}

// ops is the order in which the station wrote to the state record and the
// journal, recorded at the tracker's Persister and the station's Journal
// interfaces, in front of a real journal.
type ops struct {
	mu  sync.Mutex
	log []string
}

func (o *ops) add(s string) {
	o.mu.Lock()
	o.log = append(o.log, s)
	o.mu.Unlock()
}

func (o *ops) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.log)
}

// recJournal passes to a real journal, recording each write; refuse, when
// set, refuses arrival events with its error (a disk error at the Journal
// interface); before/after run around each arrival append.
type recJournal struct {
	j      *journal.Journal
	ops    *ops
	mu     sync.Mutex
	refuse error
	before func()
	after  func()
}

func (r *recJournal) Append(ctx context.Context, data []byte) (uint64, error) {
	var ev customs.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return 0, err
	}
	what := "append " + ev.Kind
	if ev.Transit != nil {
		what += " " + ev.Transit.ID
	}
	r.mu.Lock()
	refuse, before, after := r.refuse, r.before, r.after
	r.mu.Unlock()
	if ev.Kind == customs.EventArrival {
		if refuse != nil {
			r.ops.add(what + " refused")
			return 0, refuse
		}
		if before != nil {
			before()
		}
	}
	seq, err := r.j.Append(ctx, data)
	if err != nil {
		r.ops.add(what + " failed: " + err.Error())
		return seq, err
	}
	r.ops.add(what)
	if ev.Kind == customs.EventArrival && after != nil {
		after()
	}
	return seq, nil
}

func (r *recJournal) GetState(name string) ([]byte, error) { return r.j.GetState(name) }

func (r *recJournal) PutState(name string, v []byte) error {
	err := r.j.PutState(name, v)
	if err == nil {
		r.ops.add("state " + string(v))
	}
	return err
}

func openJournal(t *testing.T, path string, opts journal.Options) *journal.Journal {
	t.Helper()
	opts.Log = slog.New(slog.DiscardHandler)
	j, err := journal.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	go j.Run(t.Context())
	return j
}

// newArrivalStation wires an arrival station (close_after closeAfter) over
// rj.
func newArrivalStation(t *testing.T, rj *recJournal, closeAfter time.Duration) *station.Station {
	t.Helper()
	tracker, err := arrival.New("arr-1", closeAfter, rj, contents{})
	if err != nil {
		t.Fatal(err)
	}
	return station.New(station.Config{ID: "arr-1", Role: "arrival", Classifier: classifier(t), Scanner: idleScanner{},
		Arrival: tracker}, passAll{}, rj, nil, wallClock{}, nil, slog.New(slog.DiscardHandler))
}

func scan(st *station.Station, code string) station.Outcome {
	return st.Handle(context.Background(), device.Read{Line: []byte(code), At: time.Now()})
}

// run runs st's loop; the returned stop ends it and waits for it.
func run(t *testing.T, st *station.Station) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(wait):
				t.Error("station did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// arrivals returns the arrival events in j, in journal order.
func arrivals(t *testing.T, j *journal.Journal) []customs.Event {
	t.Helper()
	var out []customs.Event
	err := j.ForEach(func(e journal.Entry, _ bool) error {
		var ev customs.Event
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			return err
		}
		if ev.Kind == customs.EventArrival {
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitArrivals waits until j holds n arrival events.
func waitArrivals(t *testing.T, j *journal.Journal, n int) []customs.Event {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		evs := arrivals(t, j)
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d arrival event(s) journalled within %v, want %d", len(evs), wait, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStateGone waits until the station's state record is gone: no open
// transit, no arrival event pending.
func waitStateGone(t *testing.T, j *journal.Journal) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		raw, err := j.GetState("arrival/arr-1")
		if err != nil {
			t.Fatal(err)
		}
		if raw == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state record still %s after %v", raw, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkArrival(t *testing.T, ev customs.Event, transit string) {
	t.Helper()
	if ev.Transit == nil || ev.Transit.ID != transit || ev.Expected == nil || *ev.Expected != 1 || ev.Counted == nil || *ev.Counted != 1 {
		t.Fatalf("arrival event %+v, want transit %s with 1 of 1 counted", ev, transit)
	}
}

// The outbox is full when a transit closes: the journal refuses its arrival
// event. The transit is not lost: the running station journals the event as
// soon as the outbox has room, and a gateway restarted before that journals
// it at start.
func TestArrivalAppendRefusedNotLost(t *testing.T) {
	for _, tc := range []struct {
		name      string
		diskError bool // else the outbox is full
		restart   bool
	}{
		{"outbox full, retried", false, false},
		{"outbox full, restarted", false, true},
		{"disk error, retried", true, false},
		{"disk error, restarted", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal.db")
			// Room for the three scan events only: the arrival event is refused.
			j := openJournal(t, path, journal.Options{MaxEvents: 3})
			rj := &recJournal{j: j, ops: &ops{}}
			if tc.diskError {
				rj.refuse = errors.New("write journal.db: input/output error")
			}
			st := newArrivalStation(t, rj, 0)
			for _, code := range []string{tr1, bag1, tr1} {
				if out := scan(st, code); !out.Pass {
					t.Fatalf("scan %s: %+v", code, out)
				}
			}
			if evs := arrivals(t, j); len(evs) != 0 {
				t.Fatalf("arrival journalled into a full outbox: %+v", evs)
			}
			if !slices.ContainsFunc(rj.ops.list(), func(s string) bool {
				return strings.HasPrefix(s, "append arrival "+tr1+" failed") || s == "append arrival "+tr1+" refused"
			}) {
				t.Fatalf("the arrival event was not refused: %q", rj.ops.list())
			}

			// Central takes the scan events: the outbox has room again.
			pend, err := j.Pending(100, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Delivered(pend); err != nil {
				t.Fatal(err)
			}
			rj.mu.Lock()
			rj.refuse = nil // the disk is back
			rj.mu.Unlock()
			if tc.restart {
				j.Close()
				j = openJournal(t, path, journal.Options{MaxEvents: 3})
				rj = &recJournal{j: j, ops: &ops{}}
				st = newArrivalStation(t, rj, 0)
			}
			stop := run(t, st)
			evs := waitArrivals(t, j, 1)
			stop()
			checkArrival(t, evs[0], tr1)
			if raw, err := j.GetState("arrival/arr-1"); err != nil || raw != nil {
				t.Fatalf("state left after the event was journalled: %q, %v", raw, err)
			}
		})
	}
}

// The open transit's record is never removed before its arrival event is
// durable, on any of the three ways a transit closes (scanned again,
// another transit scanned, close_after).
func TestArrivalRemovedOnlyAfterEvent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j := openJournal(t, path, journal.Options{})
	o := &ops{}
	rj := &recJournal{j: j, ops: o}
	st := newArrivalStation(t, rj, time.Millisecond)
	scan(st, tr1)
	scan(st, bag1)
	scan(st, tr1) // scanned again: closed
	scan(st, tr2)
	scan(st, bag1)
	scan(st, tr1) // another transit: tr2 closed, tr1 open
	scan(st, bag1)
	stop := run(t, st) // close_after: tr1 closed
	waitArrivals(t, j, 3)
	// The record is removed just after the third event is journalled: wait
	// for that, and for the station to stop, before reading the log.
	waitStateGone(t, j)
	stop()

	// A transit that leaves the state record (its open transit, or its
	// pending arrival event) must have had its arrival event journalled
	// first, as many times as it left.
	log := o.list()
	prev := ""
	appended, left := map[string]int{}, map[string]int{}
	for _, s := range log {
		if tr, ok := strings.CutPrefix(s, "append arrival "); ok && !strings.Contains(tr, " ") {
			appended[tr]++
			continue
		}
		cur, ok := strings.CutPrefix(s, "state ")
		if !ok {
			continue
		}
		for _, tr := range []string{tr1, tr2} {
			if strings.Contains(prev, tr) && !strings.Contains(cur, tr) {
				if left[tr]++; appended[tr] < left[tr] {
					t.Fatalf("%s left the state record (%q) before its arrival event was journalled:\n%s",
						tr, cur, strings.Join(log, "\n"))
				}
			}
		}
		prev = cur
	}
	if left[tr1] != 2 || left[tr2] != 1 {
		t.Fatalf("transits closed: %v, want %s twice and %s once:\n%s", left, tr1, tr2, strings.Join(log, "\n"))
	}
}

// The gateway is killed (kill -9) between closing a transit and journalling
// its arrival event, or right after journalling it: the disk as it is then
// is copied, and a gateway restarted on that copy. The arrival is journalled
// in both cases, and never under two ids: an event journalled again after a
// restart (the "after" copy still holds it pending) carries the same id,
// which central drops as a duplicate.
func TestArrivalKillAroundAppend(t *testing.T) {
	dir := t.TempDir()
	snap := func(j *journal.Journal, name string) func() {
		return func() {
			var b bytes.Buffer
			if _, err := j.Backup(&b); err != nil {
				t.Error(err)
				return
			}
			if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o600); err != nil {
				t.Error(err)
			}
		}
	}
	j := openJournal(t, filepath.Join(dir, "journal.db"), journal.Options{})
	rj := &recJournal{j: j, ops: &ops{}, before: snap(j, "before.db")}
	rj.after = snap(j, "after.db")
	st := newArrivalStation(t, rj, 0)
	scan(st, tr1)
	scan(st, bag1)
	scan(st, tr1)
	first := waitArrivals(t, j, 1)[0]
	checkArrival(t, first, tr1)

	for _, name := range []string{"before.db", "after.db"} {
		t.Run(strings.TrimSuffix(name, ".db"), func(t *testing.T) {
			j := openJournal(t, filepath.Join(dir, name), journal.Options{})
			st := newArrivalStation(t, &recJournal{j: j, ops: &ops{}}, 0)
			stop := run(t, st)
			waitArrivals(t, j, 1)
			waitStateGone(t, j)
			stop()
			evs := arrivals(t, j)
			t.Logf("%d arrival event(s) journalled, all under id %s", len(evs), first.ID)
			for _, ev := range evs {
				checkArrival(t, ev, tr1)
				if ev.ID != first.ID {
					t.Fatalf("arrival journalled under id %s after the restart, %s before: central would count it twice", ev.ID, first.ID)
				}
			}
			if raw, err := j.GetState("arrival/arr-1"); err != nil || raw != nil {
				t.Fatalf("state left after the restart: %q, %v", raw, err)
			}
		})
	}
}

// TestSealWithoutTransitNotRecorded: a seal scanned before any transit is
// open is not recorded, and the outcome says so (the screens tell staff to
// scan the transit first); once a transit is open the seal is recorded.
func TestSealWithoutTransitNotRecorded(t *testing.T) {
	j := openJournal(t, filepath.Join(t.TempDir(), "journal.db"), journal.Options{})
	st := newArrivalStation(t, &recJournal{j: j, ops: &ops{}}, time.Hour)
	if out := scan(st, "SH-000001"); out.Kind != "seal" || out.Reason != station.ReasonSealIgnored {
		t.Fatalf("seal with no transit open: kind %q reason %q, want seal %q", out.Kind, out.Reason, station.ReasonSealIgnored)
	}
	scan(st, "TR0000000001")
	out := scan(st, "SH-000001")
	if out.Kind != "seal" || out.Reason != "seal" || out.Transit == nil || !slices.Contains(out.Transit.Open.Seals, "SH-000001") {
		t.Fatalf("seal with a transit open: %+v", out)
	}
}
