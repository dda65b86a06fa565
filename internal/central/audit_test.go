package central

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

func TestCheckPass(t *testing.T) {
	h := start(t, "", nil)
	now := time.Now().UTC()
	P := func(id string) customs.Subject { return customs.Subject{Kind: customs.Parcel, ID: id} }
	B := func(id string) customs.Subject { return customs.Subject{Kind: customs.Bag, ID: id} }
	// Record: the ledger only, no broker needed.
	_, _, err := h.c.Record(context.Background(), []customs.Order{
		{Action: customs.Release, Subject: P("P1")},                                             // 1
		{Action: customs.Hold, Subject: P("P1"), HoldID: "h", Reason: "inspection"},             // 2
		{Action: customs.Unhold, Subject: P("P1"), HoldID: "h"},                                 // 3
		{Action: customs.Release, Subject: P("P2"), ExpiresAt: now.Add(time.Hour)},              // 4
		{Action: customs.Revoke, Subject: P("P2")},                                              // 5
		{Action: customs.Release, Subject: B("B1")},                                             // 6
		{Action: customs.Link, Subject: B("B1"), Children: []customs.Subject{P("P3"), P("P4")}}, // 7
		{Action: customs.Hold, Subject: B("B1"), HoldID: "x", Reason: "do_not_load"},            // 8
		{Action: customs.Cancel, Subject: P("P5")},                                              // 9
		{Action: customs.Release, Subject: P("P5")},                                             // 10
		{Action: customs.Release, Subject: P("P6"), ExpiresAt: now.Add(-time.Minute)},           // 11
		{Action: customs.Release, Subject: P("P7")},                                             // 12
		{Action: customs.Link, Subject: B("B2"), Children: []customs.Subject{P("P7"), P("P8")}}, // 13
		{Action: customs.Release, Subject: P("P8")},                                             // 14
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s           customs.Subject
		basis, appl uint64
		ok          bool
		want        string
	}{
		{P("P1"), 1, 1, true, ""},
		{P("P1"), 1, 2, true, ""},         // it had the hold; the unhold at 3 may have come early
		{P("P2"), 4, 4, true, ""},         // before the revoke
		{P("P2"), 4, 5, false, "revoked"}, // it had the revoke
		{P("P3"), 6, 6, true, ""},         // the link at 7 gives it the bag's release
		{P("P3"), 7, 8, false, "hold"},    // the bag's hold, never lifted
		{B("B1"), 6, 7, true, ""},
		{P("P5"), 10, 10, false, "cancelled"},
		{P("P6"), 11, 11, false, "expired"},
		{B("B2"), 12, 12, true, ""}, // on contents: P8 released at 14, linked at 13
		{P("P1"), 99, 99, false, "not a seq"},
		{P("P9"), 14, 14, false, "no release"},
	} {
		err := h.c.CheckPass(tc.s, tc.basis, tc.appl, now)
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckPass(%s, basis %d, applied %d) = %v; want ok %v (%q)", tc.s, tc.basis, tc.appl, err, tc.ok, tc.want)
		}
	}

	// The same over HTTP, and the audit of recorded events.
	srv := httptest.NewServer(h.c.Handler())
	defer srv.Close()
	var res struct {
		OK  bool   `json:"ok"`
		Why string `json:"why"`
	}
	getJSONT(t, srv.URL+"/check?kind=parcel&id=P2&seq=4&applied=5", &res)
	if res.OK || !strings.Contains(res.Why, "revoked") {
		t.Errorf("/check: %+v", res)
	}
	seq := func(n uint64) *uint64 { return &n }
	f := false
	evs := []customs.Event{
		{ID: "E1", Kind: customs.EventScan, Station: "g", At: now, Subject: &customs.Subject{Kind: customs.Parcel, ID: "P1"}, Decision: "pass", Reason: "released", BasisSeq: 1, AppliedSeq: seq(1), Offline: &f},
		{ID: "E2", Kind: customs.EventScan, Station: "g", At: now, Subject: &customs.Subject{Kind: customs.Parcel, ID: "P2"}, Decision: "pass", Reason: "released", BasisSeq: 4, AppliedSeq: seq(5), Offline: &f},
		{ID: "E3", Kind: customs.EventScan, Station: "g", At: now, Subject: &customs.Subject{Kind: customs.Parcel, ID: "P5"}, Decision: "stop", Reason: "cancelled", BasisSeq: 9, AppliedSeq: seq(10), Offline: &f},
	}
	if err := h.c.recordEvents(context.Background(), "g07", customs.Events{Type: customs.TypeEvents, Site: site, Gateway: "g07", Events: evs}); err != nil {
		t.Fatal(err)
	}
	var a Audit
	getJSONT(t, srv.URL+"/audit?gateway=g07", &a)
	if a.Events != 3 || a.Scans != 3 || a.Passes != 2 || len(a.Violations) != 1 || !strings.Contains(a.Violations[0], "E2") {
		t.Errorf("audit %+v", a)
	}
	// Record published nothing and kept the seqs contiguous with Issue.
	if h.c.Head() != 14 {
		t.Errorf("head %d", h.c.Head())
	}
	os, err := h.c.Orders(13, 99)
	if err != nil || len(os) != 2 || os[0].Seq != 13 || os[1].Seq != 14 {
		t.Errorf("Orders(13, 99) = %+v, %v", os, err)
	}
}

func getJSONT(t *testing.T, url string, v any) {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestAuditWindow: the checks bound "later" by what central had committed
// when the gateway decided, and judge STOPs too.
func TestAuditWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	clock := t0
	h := start(t, "", func(o *Options) { o.Now = func() time.Time { return clock } })
	P := func(id string) customs.Subject { return customs.Subject{Kind: customs.Parcel, ID: id} }
	B := func(id string) customs.Subject { return customs.Subject{Kind: customs.Bag, ID: id} }
	record := func(at time.Time, orders ...customs.Order) {
		t.Helper()
		clock = at
		if _, _, err := h.c.Record(context.Background(), orders); err != nil {
			t.Fatal(err)
		}
	}
	hold := func(s customs.Subject, id string) customs.Order {
		return customs.Order{Action: customs.Hold, Subject: s, HoldID: id, Reason: "inspection"}
	}
	unhold := func(s customs.Subject, id string) customs.Order {
		return customs.Order{Action: customs.Unhold, Subject: s, HoldID: id}
	}
	rel := func(s customs.Subject) customs.Order { return customs.Order{Action: customs.Release, Subject: s} }
	record(t0,
		rel(P("A")), hold(P("A"), "h"), // 1, 2: A held
		rel(P("C")),                     // 3: C released
		rel(P("D")), hold(P("D"), "h1"), // 4, 5: D held by h1
		rel(P("E")), // 6
	)
	later := t0.Add(time.Hour)
	record(later,
		unhold(P("A"), "h"),  // 7: A released an hour later
		hold(P("D"), "h2"),   // 8: D held by h2 …
		unhold(P("D"), "h1"), // 9: … and h1 lifted
		hold(P("E"), "x"),    // 10: E held
		rel(P("F")),          // 11: F released
		rel(B("G")),          // 12
	)
	at := t0.Add(time.Minute) // decided between the two commits
	for _, tc := range []struct {
		name        string
		stop        bool
		s           customs.Subject
		basis, appl uint64
		at          time.Time
		want        string // "" when the decision is justified
	}{
		// A PASS that only the unhold committed an hour later justifies:
		// no gateway could have had it (the check without a bound took it).
		{"pass on an order not yet issued", false, P("A"), 1, 6, at, "hold"},
		{"pass once it was issued", false, P("A"), 1, 6, later.Add(time.Second), ""},
		{"pass within the slack", false, P("A"), 1, 6, later.Add(-5 * time.Second), ""},
		// Any subset, not only a prefix: holding 9 (unhold h1) without 8
		// (hold h2) releases D; no ledger prefix does.
		{"pass on a subset above the watermark", false, P("D"), 4, 6, later, ""},
		{"pass with nothing above the watermark", false, P("D"), 4, 12, later, "hold"},
		// STOPs.
		{"stop on a release held all along", true, P("C"), 3, 6, at, "releases parcel:C"},
		{"stop with a hold in the window", true, P("E"), 6, 6, later, ""},
		{"stop after the hold was applied", true, P("E"), 10, 12, later, ""},
		{"stop on a release not yet applied", true, P("F"), 0, 6, later, ""},
		{"stop on a release applied", true, P("F"), 11, 11, later, "releases parcel:F"},
		{"stop on a release applied, at of before", true, P("F"), 0, 11, at, "releases parcel:F"},
		{"stop unknown, never released", true, P("Z"), 0, 12, later, ""},
	} {
		var err error
		if tc.stop {
			err = h.c.CheckStop(tc.s, tc.basis, tc.appl, tc.at)
		} else {
			err = h.c.CheckPass(tc.s, tc.basis, tc.appl, tc.at)
		}
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %s basis %d applied %d: %v; want %q", tc.name, tc.s, tc.basis, tc.appl, err, tc.want)
		}
	}

	// STOPs the gateway's stricter reading makes (docs/protocol.md): two
	// containers at equal distance, one revoked; a bag whose parcel is
	// also in a held waybill. Neither is a defect.
	W := customs.Subject{Kind: customs.AWB, ID: "W1"}
	record(later.Add(time.Hour),
		rel(B("B1")), rel(B("B2")), customs.Order{Action: customs.Revoke, Subject: B("B2")}, // 13–15
		customs.Order{Action: customs.Link, Subject: B("B1"), Children: []customs.Subject{P("X")}}, // 16
		customs.Order{Action: customs.Link, Subject: B("B2"), Children: []customs.Subject{P("X")}}, // 17
		rel(P("Y")), customs.Order{Action: customs.Link, Subject: B("B3"), Children: []customs.Subject{P("Y")}}, // 18, 19
		customs.Order{Action: customs.Link, Subject: W, Children: []customs.Subject{P("Y")}}, hold(W, "w"), // 20, 21
	)
	for _, s := range []customs.Subject{P("X"), B("B3")} {
		if err := h.c.CheckStop(s, 21, 21, later.Add(2*time.Hour)); err != nil {
			t.Errorf("STOP of %s, stopped by the gateway's reading: %v", s, err)
		}
	}
	if err := h.c.CheckStop(P("Y"), 21, 21, later.Add(2*time.Hour)); err != nil {
		t.Errorf("STOP of Y, held through W: %v", err)
	}

	// Audit counts STOP defects apart, and leaves out STOPs for causes
	// outside the ledger.
	seq := func(n uint64) *uint64 { return &n }
	f := false
	scan := func(id string, s customs.Subject, decision, reason string, basis, applied uint64) customs.Event {
		return customs.Event{ID: id, Kind: customs.EventScan, Station: "g", At: at, Code: s.ID, Subject: &s,
			Decision: decision, Reason: reason, BasisSeq: basis, AppliedSeq: seq(applied), Offline: &f}
	}
	evs := []customs.Event{
		scan("E1", P("A"), "pass", "released", 1, 6),        // violation
		scan("E2", P("C"), "pass", "released", 3, 6),        // fine
		scan("E3", P("C"), "stop", "unknown", 0, 6),         // defect
		scan("E4", P("C"), "stop", "error", 3, 6),           // not judged
		scan("E5", P("A"), "stop", "held:inspection", 2, 6), // fine
	}
	if err := h.c.recordEvents(context.Background(), "g07", customs.Events{Type: customs.TypeEvents, Site: site, Gateway: "g07", Events: evs}); err != nil {
		t.Fatal(err)
	}
	a, err := h.c.Audit("g07")
	if err != nil {
		t.Fatal(err)
	}
	if a.Passes != 2 || a.Stops != 3 || len(a.Violations) != 1 || !strings.Contains(a.Violations[0], "E1") ||
		len(a.StopDefects) != 1 || !strings.Contains(a.StopDefects[0], "E3") || a.Unchecked != 0 {
		t.Errorf("audit %+v", a)
	}
}

// TestAuditWindowUnchecked: a window too large to search is reported as
// such, neither confirmed nor refuted.
func TestAuditWindowUnchecked(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	clock := t0
	h := start(t, "", func(o *Options) { o.Now = func() time.Time { return clock } })
	P := func(id string) customs.Subject { return customs.Subject{Kind: customs.Parcel, ID: id} }
	B := customs.Subject{Kind: customs.Bag, ID: "BIG"}
	var orders []customs.Order
	for i := range 20 { // 20 parcels linked and held in the window: 2^20+ combinations
		p := P(fmt.Sprintf("P%d", i))
		orders = append(orders, customs.Order{Action: customs.Link, Subject: B, Children: []customs.Subject{p}},
			customs.Order{Action: customs.Hold, Subject: p, HoldID: "h", Reason: "other"})
	}
	if _, _, err := h.c.Record(context.Background(), orders); err != nil {
		t.Fatal(err)
	}
	if err := h.c.CheckPass(B, 1, 0, t0); !errors.Is(err, ErrUnchecked) {
		t.Errorf("CheckPass over 2^40 combinations: %v, want ErrUnchecked", err)
	}
}
