package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// TestArrival checks transits in at an arrival station end to end (§9):
// a complete arrival, a missing bag, an extra bag, a foreign seal, and one
// interrupted by kill -9 and resumed. The arrival events central receives
// must match each case exactly.
func TestArrival(t *testing.T) {
	s := newSiteRole(t, "arrival", `  transit_patterns: ['^TR\d{10}$']
  seal_patterns: ['^SH-\d{6}$']`)
	tr := func(n int) customs.Subject { return sub(customs.Transit, fmt.Sprintf("TR%010d", n)) }
	bag := func(n int) customs.Subject { return sub(customs.Bag, sscc(500+n)) }
	seal := func(n int) string { return fmt.Sprintf("SH-%06d", n) }
	exp := time.Now().Add(24 * time.Hour).UTC()

	type transit struct {
		seals []int
		bags  []int
	}
	transits := map[int]transit{
		1: {seals: []int{1, 2}, bags: []int{1, 2, 3}}, // complete
		2: {seals: []int{3}, bags: []int{4, 5}},       // a missing bag
		3: {seals: []int{4}, bags: []int{6}},          // an extra bag
		4: {seals: []int{5, 6}, bags: []int{7}},       // a foreign seal
		5: {seals: []int{7}, bags: []int{8, 9}},       // kill -9 in the middle
	}
	var orders []customs.Order
	for n := 1; n <= len(transits); n++ {
		x := transits[n]
		var seals []string
		for _, sl := range x.seals {
			seals = append(seals, seal(sl))
		}
		var kids []customs.Subject
		for _, b := range x.bags {
			kids = append(kids, bag(b))
		}
		orders = append(orders,
			customs.Order{Action: customs.Seal, Subject: tr(n), Seals: seals},
			customs.Order{Action: customs.Link, Subject: tr(n), Children: kids},
			customs.Order{Action: customs.Release, Subject: tr(n), ExpiresAt: exp})
	}
	orders = append(orders, customs.Order{Action: customs.Release, Subject: bag(99), ExpiresAt: exp})
	s.waitApplied(s.issue(orders...), 30*time.Second)

	// A seal is never decided: it makes no gate frame. The next scan's frame
	// shows the station handled it.
	sealScan := func(n int) { s.scanner.Write(t, seal(n)+"\r\n") }

	// 1: complete.
	s.scan(tr(1).ID)
	sealScan(1)
	sealScan(2)
	for _, b := range []int{1, 2, 3} {
		if f := s.scan(bag(b).ID); f != "PASS" {
			t.Fatalf("bag %d of a released transit: %s", b, f)
		}
	}
	// Scanning transit 1 again closes it. 2: a missing bag.
	s.scan(tr(1).ID)
	s.scan(tr(2).ID)
	sealScan(3)
	s.scan(bag(4).ID)
	// 3: scanning another transit closes transit 2.
	s.scan(tr(3).ID)
	sealScan(4)
	s.scan(bag(6).ID)
	s.scan(bag(99).ID) // extra: not in transit 3
	s.scan(tr(3).ID)
	// 4: a foreign seal.
	s.scan(tr(4).ID)
	sealScan(5)
	sealScan(6)
	sealScan(777777)
	s.scan(bag(7).ID)
	s.scan(tr(4).ID)
	// 5: kill -9 in the middle, then resume.
	s.scan(tr(5).ID)
	sealScan(7)
	s.scan(bag(8).ID)
	s.gw.Kill()
	s.startGateway()
	s.scan(bag(9).ID)
	s.scan(tr(5).ID)

	type want struct {
		sealsSeen []string
		sealsOK   bool
		expected  int
		counted   int
		missing   []customs.Subject
		extra     []customs.Subject
	}
	wants := map[string]want{
		tr(1).ID: {[]string{seal(1), seal(2)}, true, 3, 3, nil, nil},
		tr(2).ID: {[]string{seal(3)}, true, 2, 1, []customs.Subject{bag(5)}, nil},
		tr(3).ID: {[]string{seal(4)}, true, 1, 1, nil, []customs.Subject{bag(99)}},
		tr(4).ID: {[]string{seal(5), seal(6), "SH-777777"}, false, 1, 1, nil, nil},
		tr(5).ID: {[]string{seal(7)}, true, 2, 2, nil, nil},
	}
	var arrivals []customs.Event
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		arrivals = arrivals[:0]
		for _, e := range s.events() {
			if e.Kind == customs.EventArrival {
				arrivals = append(arrivals, e)
			}
		}
		if len(arrivals) >= len(wants) {
			break
		}
	}
	if len(arrivals) != len(wants) {
		t.Fatalf("central has %d arrival events, want %d: %+v", len(arrivals), len(wants), arrivals)
	}
	for _, e := range arrivals {
		w, ok := wants[e.Transit.ID]
		if !ok {
			t.Errorf("arrival of unexpected transit %v", e.Transit)
			continue
		}
		delete(wants, e.Transit.ID)
		got := want{e.SealsSeen, *e.SealsOK, *e.Expected, *e.Counted, e.Missing, e.Extra}
		if !slices.Equal(got.sealsSeen, w.sealsSeen) || got.sealsOK != w.sealsOK || got.expected != w.expected ||
			got.counted != w.counted || !slices.Equal(got.missing, w.missing) || !slices.Equal(got.extra, w.extra) {
			t.Errorf("arrival of %s: got %+v, want %+v", e.Transit.ID, got, w)
		}
		if e.Station != "gate-3" || e.Role != "arrival" || e.ID == "" || e.Offline == nil {
			t.Errorf("arrival of %s: station %q role %q id %q offline %v", e.Transit.ID, e.Station, e.Role, e.ID, e.Offline)
		}
	}
}
