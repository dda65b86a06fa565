package screens

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/rules"
	"github.com/cargogate/cargogate/gateway/scan"
)

func TestCountsOverTheLastHour(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	var w window
	w.add(now.Add(-90*time.Minute), "a", true, "released") // too old
	w.add(now.Add(-59*time.Minute), "a", false, "unknown")
	w.add(now.Add(-time.Minute), "a", true, "released")
	w.add(now, "b", false, "held:inspection")
	w.add(now, "b", false, "held:inspection")
	c, per := w.sum(now)
	if c.Pass != 1 || c.Stop != 3 || c.ByReason["held:inspection"] != 2 || c.ByReason["unknown"] != 1 || c.ByReason["released"] != 1 {
		t.Errorf("counts %+v", c)
	}
	if per["a"] != [2]int{1, 1} || per["b"] != [2]int{0, 2} {
		t.Errorf("per station %v", per)
	}
	c, _ = w.sum(now.Add(61 * time.Minute))
	if c.Pass+c.Stop != 0 {
		t.Errorf("an hour later: %+v", c)
	}
}

func TestOverviewAlarms(t *testing.T) {
	status := map[string]any{
		"clock_behind_s": 42.0,
		"audit":          map[string]any{"records": 100, "lost": 3},
		"link": map[string]any{"online": false, "since": "2026-11-27T07:00:00Z", "outbox": 5000,
			"store_writable": false, "store_error": "disk full", "outbox_writable": true},
	}
	h := New(Options{Status: func() any { return status }, Stations: []StationInfo{{ID: "gate-3", Gate: true}}})
	h.apply(item{device: &deviceChange{"gate-3", "scanner", device.Down, "no such device"}})
	ov := h.Overview()
	var kinds []string
	for _, a := range ov.Alarms {
		kinds = append(kinds, a.Kind)
	}
	slices.Sort(kinds)
	want := []string{AlarmAuditLost, AlarmClockTrouble, AlarmDeviceDown, AlarmLinkOffline, AlarmOutboxFilling, AlarmStoreNotWritable}
	if !slices.Equal(kinds, want) {
		t.Fatalf("alarms %v, want %v", kinds, want)
	}

	// A scan the journal refused raises store_not_writable from the
	// outcomes alone, and the next recorded scan clears it.
	h = New(Options{})
	h.apply(item{outcome: &scan.Outcome{Station: "s", Reason: "error", Problem: "cannot record the decision: disk full"}})
	if a := h.Overview().Alarms; len(a) != 1 || a[0].Kind != AlarmStoreNotWritable {
		t.Fatalf("alarms %+v", a)
	}
	h.apply(item{outcome: &scan.Outcome{Station: "s", Pass: true, Reason: "released"}})
	if a := h.Overview().Alarms; len(a) != 0 {
		t.Fatalf("alarms after a recorded scan %+v", a)
	}
}

// TestOverviewOrderGapAlarm: a seq held open by an order that cannot be
// applied (amendment 2) raises order_gap on the supervisor's overview,
// naming the seq, why, and the watermark below it.
func TestOverviewOrderGapAlarm(t *testing.T) {
	status := map[string]any{"link": map[string]any{"online": true, "applied_seq": 41, "unappliable_open": 2,
		"unappliable_seqs": []map[string]any{{"seq": 42, "since": "2026-12-01T08:00:00Z", "error": `order seq 42: action "frobnicate": unknown`}}}}
	h := New(Options{Status: func() any { return status }})
	a := h.Overview().Alarms
	if len(a) != 1 || a[0].Kind != AlarmOrderGap || !strings.Contains(a[0].Detail, "seq 42 cannot be applied") ||
		!strings.Contains(a[0].Detail, "applied up to 41") || !strings.Contains(a[0].Detail, "2 such seqs") || a[0].Since.IsZero() {
		t.Fatalf("alarms %+v", a)
	}
	status["link"] = map[string]any{"online": true, "applied_seq": 42, "unappliable_open": 0}
	if a := h.Overview().Alarms; len(a) != 0 {
		t.Fatalf("alarms once the gap is filled: %+v", a)
	}
}

type fakeInspector struct {
	mu   sync.Mutex
	code string
}

func (f *fakeInspector) Inspect(code string) (Inspection, error) {
	f.mu.Lock()
	f.code = code
	f.mu.Unlock()
	s := customs.Subject{Kind: customs.Parcel, ID: code}
	o := customs.Order{Seq: 7, Action: customs.Hold, Subject: s, HoldID: "h1", Reason: "inspection"}
	return Inspection{Code: code, Subject: &s, Reason: "held:inspection", BasisSeq: 7,
		Chain: []Step{{Step: rules.Step{Subject: s, Seq: 7, What: "hold h1 (inspection)"}, Order: &o}}}, nil
}

func TestInspect(t *testing.T) {
	f := &fakeInspector{}
	_, srv := startHub(t, Options{Inspector: f})
	r, err := http.Get(srv.URL + "/api/inspect?code=" + url.QueryEscape("]C0RR000000001CN"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var ins Inspection
	if err := json.NewDecoder(r.Body).Decode(&ins); err != nil || r.StatusCode != 200 {
		t.Fatalf("HTTP %d %v", r.StatusCode, err)
	}
	if f.code != "]C0RR000000001CN" || len(ins.Chain) != 1 || ins.Chain[0].Seq != 7 || ins.Chain[0].Order.HoldID != "h1" {
		t.Fatalf("inspection %+v", ins)
	}
	for _, q := range []string{"", "?code=", "?code=" + strings.Repeat("9", 700)} {
		r, err := http.Get(srv.URL + "/api/inspect" + q)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 400 {
			t.Errorf("%q: HTTP %d, want 400", q, r.StatusCode)
		}
	}
}

// A signal that may have reached the gate (its driver cannot tell) shows the
// gate's state as unknown, never as a fault (which says it stayed closed),
// even while the driver reports the device at fault; once the device is up
// again (its outputs switched off first) the gate is closed.
func TestGateStateUnknown(t *testing.T) {
	h, _ := startHub(t, Options{})
	gateState := func() string {
		for _, s := range h.Overview().Stations {
			if s.ID == "gate-3" {
				return s.Gate.State
			}
		}
		return ""
	}
	o := outcome("gate-3", "RR000000001CN", true, "released")
	o.Gate = "unknown"
	h.Decided(o)
	waitFor(t, func() bool { return gateState() == "unknown" })
	h.Device("gate-3", "gate", device.Fault, "coil 16 state unknown")
	h.Device("gate-3", "scanner", device.Up, "opened") // a later event, to know the fault was applied
	waitFor(t, func() bool {
		for _, s := range h.Overview().Stations {
			if d, ok := s.Devices["scanner"]; ok && d.State == device.Up {
				return true
			}
		}
		return false
	})
	if st := gateState(); st != "unknown" {
		t.Fatalf("gate state %q after the device fault, want unknown", st)
	}
	h.Device("gate-3", "gate", device.Up, "connected")
	waitFor(t, func() bool { return gateState() == "closed" })
}

func TestOverviewUndeliveredGapAlarm(t *testing.T) {
	status := map[string]any{"link": map[string]any{"online": true, "applied_seq": 10, "unappliable_open": 0, "undelivered_open": 5,
		"undelivered_seqs": []map[string]any{{"from": 11, "to": 15, "since": "2026-12-01T08:00:00Z"}}}}
	h := New(Options{Status: func() any { return status }})
	a := h.Overview().Alarms
	if len(a) != 1 || a[0].Kind != AlarmOrderGap || !strings.Contains(a[0].Detail, "seqs 11–15 not delivered") ||
		!strings.Contains(a[0].Detail, "applied up to 10") || a[0].Since.IsZero() {
		t.Fatalf("alarms %+v", a)
	}
	status["link"] = map[string]any{"online": true, "applied_seq": 15, "unappliable_open": 0, "undelivered_open": 0}
	if a := h.Overview().Alarms; len(a) != 0 {
		t.Fatalf("alarms once the seqs are filled: %+v", a)
	}
}
