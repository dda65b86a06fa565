package central

import (
	"context"
	"encoding/json"
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
	if err := h.c.recordEvents("g07", customs.Events{Type: customs.TypeEvents, Site: site, Gateway: "g07", Events: evs}); err != nil {
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
