package store

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

// TestDecideScenarios: store.Decide over orders applied in batches decides
// as PROTOCOL §4 (with the governing-release rule) says.
func TestDecideScenarios(t *testing.T) {
	p1, p2, p3 := P("RR000000001CN"), P("RR000000002CN"), P("RR000000003CN")
	b1, b2, u1, a1 := B("BAG1"), B("BAG2"), U("AKE12345MU"), A("78412345675")
	tests := []struct {
		name    string
		batches [][]customs.Order
		subj    customs.Subject
		pass    bool
		reason  string
	}{
		{"released", [][]customs.Order{{rel(1, p1)}}, p1, true, "released"},
		{"unknown", nil, p1, false, "unknown"},
		{"held", [][]customs.Order{{rel(1, p1)}, {hold(2, p1, "H1", "do_not_load")}}, p1, false, "held:do_not_load"},
		{"held, lower-seq unhold later", [][]customs.Order{{rel(1, p1), hold(3, p1, "H1", "inspection")}, {unhold(2, p1, "H1")}}, p1, false, "held:inspection"},
		{"unheld", [][]customs.Order{{rel(1, p1), hold(2, p1, "H1", "inspection")}, {unhold(3, p1, "H1")}}, p1, true, "released"},
		{"cancel sticky", [][]customs.Order{{rel(5, p1)}, {cancel(2, p1)}, {rel(6, p1)}}, p1, false, "cancelled"},
		{"revoked", [][]customs.Order{{rel(1, p1)}, {revoke(2, p1)}}, p1, false, "revoked"},
		{"revoke arrives first", [][]customs.Order{{revoke(2, p1)}, {rel(1, p1)}}, p1, false, "revoked"},
		{"re-released", [][]customs.Order{{rel(1, p1), revoke(2, p1)}, {rel(3, p1)}}, p1, true, "released"},
		{"expired", [][]customs.Order{{relExp(1, p1, now)}}, p1, false, "expired"},
		{"not yet expired", [][]customs.Order{{relExp(1, p1, now.Add(time.Millisecond))}}, p1, true, "released"},
		{"bag of released parcels", [][]customs.Order{{rel(1, p1), rel(2, p2)}, {link(3, b1, p1, p2)}}, b1, true, "released"},
		{"bag with a held parcel", [][]customs.Order{{rel(1, p1), rel(2, p2), link(3, b1, p1, p2)}, {hold(4, p2, "H", "inspection")}}, b1, false, "contents"},
		{"released AWB passes its parcel", [][]customs.Order{{link(2, a1, p1)}, {rel(1, a1)}}, p1, true, "released"},
		{"held parcel stops the AWB", [][]customs.Order{{link(2, a1, p1, p2), rel(1, a1), hold(3, p2, "H", "detention")}}, a1, false, "contents"},
		{"held parcel stops the ULD", [][]customs.Order{{rel(1, u1), link(2, u1, b1, b2), link(3, b1, p1), link(4, b2, p2, p3), hold(5, p3, "H", "other")}}, u1, false, "contents"},
		{"ancestor hold", [][]customs.Order{{rel(1, p1), link(2, b1, p1), link(3, u1, b1)}, {hold(4, u1, "H", "inspection")}}, p1, false, "held:inspection"},
		{"unlink removes it", [][]customs.Order{{rel(1, p1), link(2, b1, p1), link(3, u1, b1)}, {hold(4, u1, "H", "inspection")}, {unlink(5, u1, b1)}}, p1, true, "released"},
		{"own revoke beats the bag's release", [][]customs.Order{{rel(1, p1), revoke(2, p1), rel(3, b1), link(4, b1, p1)}}, p1, false, "revoked"},
		{"same depth revoke wins", [][]customs.Order{{rel(1, b1), revoke(2, a1), link(3, b1, p1), link(4, a1, p1)}}, p1, false, "revoked"},
		{"loop", [][]customs.Order{{rel(1, b1), link(2, b1, b2), link(3, b2, b1)}}, b1, false, "error"},
		{"depth 5", [][]customs.Order{{rel(1, B("C5")), link(2, B("C1"), p1), link(3, B("C2"), B("C1")), link(4, B("C3"), B("C2")), link(5, B("C4"), B("C3")), link(6, B("C5"), B("C4"))}}, p1, false, "error"},

		// The codec must keep the instant of an expiry, whatever it is.
		{"expired at the Unix epoch", [][]customs.Order{{relExp(1, p1, time.Unix(0, 0).UTC())}}, p1, false, "expired"},
		{"expires far in the future", [][]customs.Order{{relExp(1, p1, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC))}}, p1, true, "released"},
		{"expired long ago", [][]customs.Order{{relExp(1, p1, time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC))}}, p1, false, "expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTemp(t)
			for _, b := range tc.batches {
				mustApply(t, s, orders(b...))
			}
			wantDecision(t, s, tc.subj, tc.pass, tc.reason)
		})
	}
}

func TestDecideULD5000(t *testing.T) {
	s, _ := openTemp(t)
	uld, bags, parcels := fillULD(t, s, 1)
	d := s.Decide(uld, now)
	if !d.Pass || d.Items != 5050 {
		t.Fatalf("ULD: %s %q items %d", d.Verdict(), d.Reason, d.Items)
	}
	mustApply(t, s, orders(hold(100000, parcels[4999], "H1", "inspection")))
	d = s.Decide(uld, now)
	if d.Pass || d.Reason != "contents" || len(d.Blocking) != 1 || d.Blocking[0].Subject != parcels[4999] {
		t.Fatalf("ULD with one held: %s %q %+v", d.Verdict(), d.Reason, d.Blocking)
	}
	wantDecision(t, s, bags[49], false, "contents")
	wantDecision(t, s, bags[48], true, "released")
	wantDecision(t, s, parcels[4999], false, "held:inspection")
	wantDecision(t, s, parcels[0], true, "released")
}

// fillULD applies a ULD of 5,000 released parcels in 50 bags, seqs from
// firstSeq, and returns it.
func fillULD(t testing.TB, s *Store, firstSeq uint64) (customs.Subject, []customs.Subject, []customs.Subject) {
	seq := firstSeq
	uld := U("AKE00001MU")
	bags := make([]customs.Subject, 50)
	var parcels []customs.Subject
	var b Batch
	for i := range bags {
		bags[i] = B(fmt.Sprintf("ULDBAG%03d", i))
		var kids []customs.Subject
		for j := 0; j < 100; j++ {
			p := P(fmt.Sprintf("ULDP%02d%03d", i, j))
			kids = append(kids, p)
			parcels = append(parcels, p)
			b.Orders = append(b.Orders, rel(seq, p))
			seq++
		}
		b.Orders = append(b.Orders, link(seq, bags[i], kids...))
		seq++
	}
	b.Orders = append(b.Orders, link(seq, uld, bags...))
	mustApply(t, s, b)
	return uld, bags, parcels
}

// TestDecideMatchesRules applies random orders to the store in random
// batches, out of order and with duplicates, and checks that store.Decide
// equals rules.Decide over the same orders combined in memory.
func TestDecideMatchesRules(t *testing.T) {
	universe := []customs.Subject{P("P1"), P("P2"), P("P3"), P("P4"), B("B1"), B("B2"), U("U1"), A("A1")}
	containers := universe[4:]
	for c := 0; c < 60; c++ {
		seed := int64(4242 + c)
		r := rand.New(rand.NewSource(seed))
		n := r.Intn(40) + 1
		var os []customs.Order
		for seq := uint64(1); seq <= uint64(n); seq++ {
			s := universe[r.Intn(len(universe))]
			var o customs.Order
			switch r.Intn(8) {
			case 0, 1:
				o = rel(seq, s)
				if r.Intn(2) == 0 {
					o.ExpiresAt = now.Add(time.Duration(r.Intn(7200)-3600) * time.Second)
				}
			case 2:
				o = revoke(seq, s)
			case 3:
				o = hold(seq, s, fmt.Sprintf("H%d", r.Intn(2)), customs.HoldReasons[r.Intn(5)])
			case 4:
				o = unhold(seq, s, fmt.Sprintf("H%d", r.Intn(2)))
			case 5:
				if r.Intn(3) == 0 {
					o = cancel(seq, s)
				} else {
					o = unlink(seq, containers[r.Intn(len(containers))], universe[r.Intn(4)])
				}
			default:
				p := containers[r.Intn(len(containers))]
				k := universe[r.Intn(len(universe))]
				if k == p {
					k = universe[r.Intn(4)]
				}
				o = link(seq, p, k)
			}
			os = append(os, o)
		}
		want := rules.NewMemView(os...)
		s, _ := openTemp(t)
		shuffled := append([]customs.Order(nil), os...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		shuffled = append(shuffled, os[:r.Intn(len(os))]...)
		for len(shuffled) > 0 {
			k := min(len(shuffled), r.Intn(8)+1)
			mustApply(t, s, orders(shuffled[:k]...))
			shuffled = shuffled[k:]
		}
		if p, _ := s.Progress(); p.Watermark != uint64(n) {
			t.Fatalf("seed %d: watermark %d, want %d", seed, p.Watermark, n)
		}
		for _, x := range universe {
			got, exp := s.Decide(x, now), rules.Decide(want, x, now)
			if !reflect.DeepEqual(got, exp) {
				t.Fatalf("seed %d: %v: store %+v, rules %+v\norders %+v", seed, x, got, exp, os)
			}
		}
		s.Close()
	}
}
