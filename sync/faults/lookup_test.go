package faults

import (
	"context"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// TestLookup: a subject the gateway has never heard of is looked up while
// the link is up (§4): central's answer is applied and decides the scan.
// With central silent the lookup ends at lookup_timeout and the scan is
// STOP; offline there is no lookup and the scan is STOP.
func TestLookup(t *testing.T) {
	// Long gap_grace and head interval: only the lookup can bring the
	// recorded orders in during the test.
	s := newSite(t, siteOpts{proxy: true, gapGrace: "10m", headInterval: time.Hour, lookupTimeout: "1s"})
	// Online, and the resync of the connection answered: what is recorded
	// from now on only a lookup brings.
	s.waitFor("online, resynced", func(st gwStatus) bool { return st.Link.Online && st.Link.Resyncs >= 1 && !st.Link.Resyncing })
	record := func(orders ...customs.Order) {
		if _, _, err := s.c().Record(context.Background(), orders); err != nil {
			t.Fatal(err)
		}
	}
	released, held := parcel(810001), parcel(810002)
	record(release(released), release(held), customs.Order{Action: customs.Hold, Subject: held, HoldID: "h", Reason: "inspection"})
	if got := s.scan(released.ID); got != "PASS" {
		t.Errorf("looked-up released parcel: %s, want PASS", got)
	}
	if got := s.scan(held.ID); got != "STOP" {
		t.Errorf("looked-up held parcel: %s, want STOP", got)
	}
	// Central counts an answer once the broker took it, which may be after
	// the gateway used it.
	for deadline := time.Now().Add(10 * time.Second); s.c().Stats().LookupsAnswered < 2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.c().Stats().LookupsAnswered; n < 2 {
		t.Errorf("central answered %d lookups, want 2", n)
	}

	// Central silent (disconnected from the broker), link up: the lookup
	// goes out, nothing answers, the scan is STOP after lookup_timeout.
	s.stopCentral()
	silent := parcel(810003)
	record(release(silent))
	if got := s.scan(silent.ID); got != "STOP" {
		t.Errorf("lookup unanswered: %s, want STOP", got)
	}
	s.restartCentral()

	// Offline: no lookup at all, STOP.
	s.proxy.Cut()
	s.waitFor("offline", func(st gwStatus) bool { return !st.Link.Online })
	offline := parcel(810004)
	record(release(offline))
	if got := s.scan(offline.ID); got != "STOP" {
		t.Errorf("offline unknown parcel: %s, want STOP", got)
	}
	s.proxy.Restore()

	// Reconnected, the gateway resyncs everything; the same codes now pass
	// from the store.
	s.converge()
	for _, sj := range []customs.Subject{silent, offline} {
		if got := s.scan(sj.ID); got != "PASS" {
			t.Errorf("%s after resync: %s, want PASS", sj, got)
		}
	}
	r := s.finalCheck()
	for _, tc := range []struct {
		sj     customs.Subject
		reason string
	}{{released, "released"}, {held, "held:inspection"}, {silent, "unknown"}, {offline, "unknown"}} {
		e := s.c().Events(gwName)
		var first *customs.Event
		for i := range e {
			if e[i].Code == tc.sj.ID {
				first = &e[i]
				break
			}
		}
		if first == nil || first.Reason != tc.reason {
			t.Errorf("%s: first event %+v, want reason %s", tc.sj, first, tc.reason)
		}
	}
	t.Logf("lookup: %s", r)
}
