package screens

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cargogate/cargogate/gateway/arrival"
	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/ident"
	"github.com/cargogate/cargogate/gateway/rules"
	"github.com/cargogate/cargogate/gateway/station"
)

// Fakes at the arrival tracker's and the station's narrow interfaces.

type memState struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memState) GetState(name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[name], nil
}

func (s *memState) PutState(name string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[name] = v
	return nil
}

type oneTransit struct {
	seals []string
	kids  []customs.Subject
}

func (c oneTransit) Transit(customs.Subject) ([]string, bool, []customs.Subject, error) {
	return c.seals, true, c.kids, nil
}

// holdSome passes everything but the subjects it holds.
type holdSome map[customs.Subject]string

func (d holdSome) Decide(s customs.Subject, now time.Time) rules.Decision {
	if r, ok := d[s]; ok {
		return rules.Decision{Reason: r, BasisSeq: 2}
	}
	return rules.Decision{Pass: true, Reason: customs.ReasonReleased, BasisSeq: 1}
}

var (
	_ arrival.Persister = (*memState)(nil)
	_ arrival.Contents  = oneTransit{}
	_ station.Decider   = holdSome{}
)

// transitMsg is a "transit" message, or the arrival state of a hello.
type transitMsg struct {
	Type    string          `json:"type"`
	Station json.RawMessage `json:"station"` // an id, or in a hello the station
	TransitState
	Arrival json.RawMessage `json:"arrival"`
}

func (m transitMsg) state(t testing.TB) TransitState {
	t.Helper()
	st := m.TransitState
	if m.Type == "hello" {
		if err := json.Unmarshal(m.Arrival, &st); err != nil {
			t.Fatalf("hello arrival %s: %v", m.Arrival, err)
		}
		return st
	}
	st.Arrival = nil
	if len(m.Arrival) > 0 && string(m.Arrival) != "null" {
		st.Arrival = &ArrivalResult{}
		if err := json.Unmarshal(m.Arrival, st.Arrival); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// readRaw reads messages until one of type typ and returns it undecoded.
func readRaw(t testing.TB, c *websocket.Conn, typ string) []byte {
	t.Helper()
	for {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var m struct{ Type string }
		json.Unmarshal(b, &m)
		if m.Type == typ {
			return b
		}
	}
}

func readTransit(t testing.TB, c *websocket.Conn) TransitState {
	t.Helper()
	var m transitMsg
	if err := json.Unmarshal(readRaw(t, c, "transit"), &m); err != nil {
		t.Fatal(err)
	}
	if string(m.Station) != `"arr-1"` {
		t.Fatalf("transit message of station %q", m.Station)
	}
	return m.state(t)
}

// TestArrivalStation runs a real arrival station (real classifier, tracker
// and station loop, fakes at the store and journal) into the hub: the
// screens of the station get the open transit, the seals seen and foreign,
// the counted contents and the stopped items, before each scan's row; a
// screen that connects late gets all of it in its hello; seal scans and
// the closing are listed but never counted as STOP; and closing the
// transit leaves its result.
func TestArrivalStation(t *testing.T) {
	h, srv := startHub(t, Options{Stations: []StationInfo{{ID: "arr-1", Role: "arrival", Gate: true}, {ID: "gate-3", Role: "gate"}}})
	cls, err := ident.New([]string{`^LP\d{14}$`}, []string{`^TR\d{10}$`}, []string{`^SH-\d{6}$`})
	if err != nil {
		t.Fatal(err)
	}
	tr := customs.Subject{Kind: customs.Transit, ID: "TR0000000001"}
	bag := func(n int) customs.Subject {
		return customs.Subject{Kind: customs.Parcel, ID: "LP0000000000000" + string(rune('0'+n))}
	}
	tracker, err := arrival.New("arr-1", 0, &memState{}, oneTransit{seals: []string{"SH-000001", "SH-000002"}, kids: []customs.Subject{bag(1), bag(2), bag(3)}})
	if err != nil {
		t.Fatal(err)
	}
	st := station.New(station.Config{ID: "arr-1", Role: "arrival", Classifier: cls, Arrival: tracker},
		holdSome{bag(2): "held:inspection"}, memJournal{}, nil, wallClock{}, h, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	scan := func(code string) station.Outcome {
		return st.Handle(ctx, device.Read{Line: []byte(code), At: time.Now()})
	}

	screen := dial(t, srv, "?station=arr-1", nil)
	other := dial(t, srv, "?station=gate-3", nil)
	all := dial(t, srv, "", nil)

	// Each scan: the arrival state, then the scan's row.
	step := func(code string) TransitState {
		t.Helper()
		scan(code)
		s := readTransit(t, screen)
		if m := next(t, screen, "decision"); m.Outcome.Code != code {
			t.Fatalf("decision for %q after the transit message of %q", m.Outcome.Code, code)
		}
		return s
	}
	s := step(tr.ID)
	if s.Transit == nil || s.Transit.Transit != tr || s.Transit.Expected != 3 || len(s.Stopped) != 0 || s.Arrival != nil {
		t.Fatalf("after opening: %+v", s)
	}
	step("SH-000001")
	s = step("SH-777777")
	if !slices.Equal(s.Transit.Seals, []string{"SH-000001", "SH-777777"}) || !slices.Equal(s.Transit.Foreign, []string{"SH-777777"}) {
		t.Errorf("seals seen %v, foreign %v", s.Transit.Seals, s.Transit.Foreign)
	}
	step(bag(1).ID)
	s = step(bag(2).ID)
	if s.Transit.CountedOK != 2 || !slices.Equal(s.Transit.Missing, []customs.Subject{bag(3)}) {
		t.Errorf("counted %d, missing %v", s.Transit.CountedOK, s.Transit.Missing)
	}
	if len(s.Stopped) != 1 || s.Stopped[0].Subject != bag(2) || s.Stopped[0].Reason != "held:inspection" {
		t.Errorf("stopped %+v", s.Stopped)
	}
	// An invalid code carries no transit view: the open transit stays.
	scan("not a code")
	if m := next(t, screen, "decision"); m.Outcome.Reason != customs.ReasonInvalidCode {
		t.Fatalf("decision %+v", m.Outcome)
	}

	// A screen that (re)connects gets the state in its hello.
	c, _, err := websocket.DefaultDialer.Dial(wsURL(srv, "?station=arr-1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var hm transitMsg
	if err := json.Unmarshal(readRaw(t, c, "hello"), &hm); err != nil {
		t.Fatal(err)
	}
	if s := hm.state(t); s.Transit == nil || s.Transit.CountedOK != 2 || len(s.Transit.Foreign) != 1 || len(s.Stopped) != 1 {
		t.Fatalf("hello after reconnecting: %+v", s)
	}

	// Seals and the closing are no decisions: the overview counts the
	// transit, bag 1 and the invalid code... and bag 2 as STOP, never a seal.
	ov := h.Overview()
	if ov.Counts.Pass != 2 || ov.Counts.Stop != 2 || ov.Counts.ByReason["seal"] != 0 {
		t.Errorf("counts %+v, want 2 PASS (transit, bag 1), 2 STOP (bag 2, invalid code)", ov.Counts)
	}
	v := ov.Stations[0]
	if v.Last == nil || v.Last.Kind != "scan" || v.Last.Reason != customs.ReasonInvalidCode {
		t.Errorf("last of the station %+v, want the invalid code", v.Last)
	}
	want := TransitBrief{Transit: tr, Expected: 3, Counted: 2, Missing: 1, SealsExpected: 2, SealsSeen: 1, Foreign: 1, Stopped: 1}
	if b := v.Transit; b == nil || b.OpenedAt.IsZero() {
		t.Fatalf("overview transit %+v", b)
	} else if want.OpenedAt, want.LastLine = b.OpenedAt, b.LastLine; *b != want {
		t.Errorf("overview transit %+v, want %+v", *b, want)
	}
	for _, r := range ov.Recent {
		if r.Transit != nil {
			t.Errorf("the overview's recent scans carry the transit view")
		}
	}

	// Scanning the transit again closes it.
	scan(tr.ID)
	s = readTransit(t, screen)
	if s.Transit != nil || s.Arrival == nil {
		t.Fatalf("after closing: %+v", s)
	}
	ev := s.Arrival.Event
	if ev.Transit == nil || *ev.Transit != tr || *ev.Expected != 3 || *ev.Counted != 2 || *ev.SealsOK ||
		!slices.Equal(ev.Missing, []customs.Subject{bag(3)}) || len(s.Arrival.Stopped) != 1 || s.Arrival.Stopped[0].Subject != bag(2) {
		t.Errorf("arrival result %+v, event %+v", s.Arrival, ev)
	}
	if m := next(t, screen, "decision"); m.Outcome.Kind != "arrival" {
		t.Fatalf("first row after closing: %+v, want the arrival", m.Outcome)
	}
	if m := next(t, screen, "decision"); m.Outcome.Kind != "scan" || m.Outcome.Code != tr.ID {
		t.Fatalf("row %+v, want the transit's scan", m.Outcome)
	}
	ov = h.Overview()
	if ov.Stations[0].Transit != nil || ov.Counts.Pass != 3 || ov.Counts.Stop != 2 {
		t.Errorf("after closing: transit %+v, counts %+v", ov.Stations[0].Transit, ov.Counts)
	}

	// The other station's screen heard nothing of it; the all-stations
	// screen got the rows but not the transit messages.
	other.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	for {
		_, b, err := other.ReadMessage()
		if err != nil {
			break
		}
		var m msg
		json.Unmarshal(b, &m)
		if m.Type == "decision" || m.Type == "transit" {
			t.Fatalf("gate-3's screen got %s", b)
		}
	}
	all.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	rows := 0
	for {
		_, b, err := all.ReadMessage()
		if err != nil {
			break
		}
		var m msg
		json.Unmarshal(b, &m)
		if m.Type == "transit" {
			t.Fatalf("the all-stations screen got a transit message")
		}
		if m.Type == "decision" {
			rows++
		}
	}
	if rows != 8 { // transit, 2 seals, 2 bags, invalid, arrival, transit
		t.Errorf("the all-stations screen got %d rows, want 8", rows)
	}
}

// Outcomes that are no decisions change no count, no gate and no alarm,
// and are never a station's last decision; a kind the screens do not list
// (the open transit reported on its own) only updates the arrival state.
func TestSealAndArrivalAreNotDecisions(t *testing.T) {
	h := New(Options{Stations: []StationInfo{{ID: "arr-1", Role: "arrival", Gate: true}}})
	c := &client{station: "arr-1", send: make(chan []byte, 100)}
	h.clients[c] = struct{}{}
	tr := customs.Subject{Kind: customs.Transit, ID: "TR0000000009"}
	view := &arrival.View{Open: arrival.Open{Transit: tr, OpenedAt: time.Now().UTC()}, Expected: 4}
	n, ok := 4, false
	ev := &customs.Event{Kind: customs.EventArrival, Transit: &tr, Expected: &n, Counted: &n, SealsOK: &ok,
		Missing: []customs.Subject{{Kind: customs.Bag, ID: "x"}}}
	for _, o := range []station.Outcome{
		{Kind: "transit", Station: "arr-1", Transit: view}, // resumed after a restart
		{Kind: "seal", Station: "arr-1", Code: "SH-000001", Seal: "SH-000001", Reason: "seal", Gate: "none", Transit: view},
		// A seal with no transit open: no view.
		{Kind: "seal", Station: "arr-1", Code: "SH-000002", Seal: "SH-000002", Reason: "seal", Gate: "none",
			Problem: "cannot record the decision: not one"},
		{Kind: "arrival", Station: "arr-1", Reason: "arrival", Subject: &tr, Arrival: ev, Gate: "none"},
	} {
		h.apply(item{outcome: &o})
	}
	ov := h.Overview()
	if ov.Counts.Pass+ov.Counts.Stop != 0 || len(ov.Counts.ByReason) != 0 {
		t.Errorf("counts %+v", ov.Counts)
	}
	if len(ov.Alarms) != 0 {
		t.Errorf("alarms %+v", ov.Alarms)
	}
	s := ov.Stations[0]
	if s.Last != nil || s.Pass+s.Stop != 0 || s.Gate.State != "closed" || s.Transit != nil {
		t.Errorf("station %+v", s)
	}
	var kinds []string
	for _, r := range ov.Recent {
		kinds = append(kinds, r.Kind)
		if r.Arrival != nil && r.Arrival.Missing != nil {
			t.Errorf("a listed arrival keeps its missing list")
		}
	}
	if !slices.Equal(kinds, []string{"seal", "seal", "arrival"}) {
		t.Errorf("listed %v", kinds)
	}
	var types []string
	for len(c.send) > 0 {
		var m struct{ Type string }
		json.Unmarshal(<-c.send, &m)
		types = append(types, m.Type)
	}
	// transit (resumed); transit + decision (seal); decision (seal, no
	// change); transit + decision (closed).
	want := []string{"transit", "transit", "decision", "decision", "transit", "decision"}
	if !slices.Equal(types, want) {
		t.Errorf("messages %v, want %v", types, want)
	}
	h.mu.Lock()
	st := h.stations["arr-1"].transitStateLocked()
	h.mu.Unlock()
	if st.Transit != nil || st.Arrival == nil || len(st.Arrival.Event.Missing) != 1 {
		t.Errorf("state %+v", st)
	}
}

// Items stopped while a transit is open belong to it: they are kept while
// it is open, updated when scanned again, dropped when another opens.
func TestStoppedItems(t *testing.T) {
	var s stationState
	tr := func(id string) *arrival.View {
		return &arrival.View{Open: arrival.Open{Transit: customs.Subject{Kind: customs.Transit, ID: id}, OpenedAt: time.Unix(1, 0)}}
	}
	b := func(id string) *customs.Subject { return &customs.Subject{Kind: customs.Bag, ID: id} }
	scan := func(sub *customs.Subject, pass bool, reason string, v *arrival.View) {
		s.applyTransit(station.Outcome{Kind: "scan", Subject: sub, Code: sub.ID, Pass: pass, Reason: reason, Transit: v})
	}
	ids := func() (out []string) {
		for _, x := range s.stopped {
			out = append(out, x.Subject.ID+"="+x.Reason)
		}
		return out
	}
	scan(b("A"), false, "held:inspection", nil) // no transit open: not kept
	scan(&customs.Subject{Kind: customs.Transit, ID: "T1"}, true, "released", tr("T1"))
	scan(b("A"), false, "held:inspection", tr("T1"))
	scan(b("B"), false, "cancelled", tr("T1"))
	scan(b("A"), false, "held:do_not_load", tr("T1"))
	scan(b("C"), true, "released", nil) // no view (say, the view failed): the transit stays
	if got := ids(); !slices.Equal(got, []string{"A=held:do_not_load", "B=cancelled"}) {
		t.Fatalf("stopped %v", got)
	}
	scan(b("B"), true, "released", tr("T1")) // its hold lifted meanwhile
	if got := ids(); !slices.Equal(got, []string{"A=held:do_not_load"}) {
		t.Fatalf("stopped %v", got)
	}
	scan(&customs.Subject{Kind: customs.Transit, ID: "T2"}, true, "released", tr("T2"))
	if len(s.stopped) != 0 {
		t.Fatalf("another transit keeps %v", ids())
	}
}
