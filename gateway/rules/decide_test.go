package rules

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// Subjects and orders, tersely.

func P(id string) customs.Subject { return customs.Subject{Kind: customs.Parcel, ID: id} }
func B(id string) customs.Subject { return customs.Subject{Kind: customs.Bag, ID: id} }
func U(id string) customs.Subject { return customs.Subject{Kind: customs.ULD, ID: id} }
func A(id string) customs.Subject { return customs.Subject{Kind: customs.AWB, ID: id} }

var now = time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)

func rel(seq uint64, s customs.Subject) customs.Order {
	return customs.Order{Seq: seq, Action: customs.Release, Subject: s}
}

func relExp(seq uint64, s customs.Subject, exp time.Time) customs.Order {
	return customs.Order{Seq: seq, Action: customs.Release, Subject: s, ExpiresAt: exp}
}

func revoke(seq uint64, s customs.Subject) customs.Order {
	return customs.Order{Seq: seq, Action: customs.Revoke, Subject: s}
}

func hold(seq uint64, s customs.Subject, id, reason string) customs.Order {
	return customs.Order{Seq: seq, Action: customs.Hold, Subject: s, HoldID: id, Reason: reason}
}

func unhold(seq uint64, s customs.Subject, id string) customs.Order {
	return customs.Order{Seq: seq, Action: customs.Unhold, Subject: s, HoldID: id}
}

func cancel(seq uint64, s customs.Subject) customs.Order {
	return customs.Order{Seq: seq, Action: customs.Cancel, Subject: s}
}

func link(seq uint64, parent customs.Subject, kids ...customs.Subject) customs.Order {
	return customs.Order{Seq: seq, Action: customs.Link, Subject: parent, Children: kids}
}

func unlink(seq uint64, parent customs.Subject, kids ...customs.Subject) customs.Order {
	return customs.Order{Seq: seq, Action: customs.Unlink, Subject: parent, Children: kids}
}

func TestDecide(t *testing.T) {
	p1, p2, p3 := P("RR000000001CN"), P("RR000000002CN"), P("RR000000003CN")
	b1, b2 := B("BAG1"), B("BAG2")
	u1 := U("AKE12345MU")
	a1 := A("78412345675")
	chain := []customs.Subject{B("C1"), B("C2"), B("C3"), B("C4"), B("C5")}

	tests := []struct {
		name     string
		orders   []customs.Order
		subj     customs.Subject
		pass     bool
		reason   string
		basis    uint64 // checked when non-zero
		blocking []Blocked
		items    int // checked when non-zero
	}{
		{name: "released parcel", orders: []customs.Order{rel(1, p1)}, subj: p1, pass: true, reason: "released", basis: 1},
		{name: "unknown parcel", subj: p1, reason: "unknown"},
		{name: "unknown parcel next to a released one", orders: []customs.Order{rel(1, p2)}, subj: p1, reason: "unknown"},
		{name: "held", orders: []customs.Order{rel(1, p1), hold(2, p1, "H1", "inspection")}, subj: p1, reason: "held:inspection", basis: 2},
		{name: "held before released", orders: []customs.Order{hold(1, p1, "H1", "inspection"), rel(2, p1)}, subj: p1, reason: "held:inspection"},
		{name: "lowest-seq active hold names the reason", orders: []customs.Order{
			rel(1, p1), hold(5, p1, "H2", "do_not_load"), hold(3, p1, "H1", "detention")}, subj: p1, reason: "held:detention", basis: 3},
		{name: "lowest-seq active hold, the older one removed", orders: []customs.Order{
			rel(1, p1), hold(3, p1, "H1", "detention"), hold(5, p1, "H2", "do_not_load"), unhold(6, p1, "H1")}, subj: p1, reason: "held:do_not_load", basis: 5},
		{name: "hold then unhold", orders: []customs.Order{rel(1, p1), hold(2, p1, "H1", "inspection"), unhold(3, p1, "H1")}, subj: p1, pass: true, reason: "released"},
		{name: "unhold before hold in arrival, higher seq", orders: []customs.Order{rel(1, p1), unhold(3, p1, "H1"), hold(2, p1, "H1", "inspection")}, subj: p1, pass: true, reason: "released"},
		{name: "unhold with lower seq than hold", orders: []customs.Order{rel(1, p1), hold(5, p1, "H1", "inspection"), unhold(4, p1, "H1")}, subj: p1, reason: "held:inspection"},
		{name: "unhold with lower seq than hold, arriving first", orders: []customs.Order{rel(1, p1), unhold(4, p1, "H1"), hold(5, p1, "H1", "inspection")}, subj: p1, reason: "held:inspection"},
		{name: "unhold of another hold id", orders: []customs.Order{rel(1, p1), hold(2, p1, "H1", "inspection"), unhold(3, p1, "H2")}, subj: p1, reason: "held:inspection"},
		{name: "cancel beats release", orders: []customs.Order{cancel(1, p1), rel(2, p1)}, subj: p1, reason: "cancelled", basis: 1},
		{name: "cancel beats hold", orders: []customs.Order{rel(1, p1), hold(2, p1, "H1", "inspection"), cancel(3, p1)}, subj: p1, reason: "cancelled"},
		{name: "cancel is sticky whatever seq", orders: []customs.Order{rel(10, p1), cancel(3, p1), rel(11, p1), revoke(12, p1), rel(13, p1)}, subj: p1, reason: "cancelled", basis: 3},
		{name: "cancel on an ancestor", orders: []customs.Order{rel(1, p1), link(2, b1, p1), cancel(3, b1)}, subj: p1, reason: "cancelled"},
		{name: "revoke after release", orders: []customs.Order{rel(1, p1), revoke(2, p1)}, subj: p1, reason: "revoked", basis: 2},
		{name: "older release after revoke", orders: []customs.Order{revoke(2, p1), rel(1, p1)}, subj: p1, reason: "revoked", basis: 2},
		{name: "release after revoke", orders: []customs.Order{rel(1, p1), revoke(2, p1), rel(3, p1)}, subj: p1, pass: true, reason: "released", basis: 3},
		{name: "revoke only", orders: []customs.Order{revoke(1, p1)}, subj: p1, reason: "revoked"},
		{name: "expired at expires_at", orders: []customs.Order{relExp(1, p1, now)}, subj: p1, reason: "expired"},
		{name: "expired after expires_at", orders: []customs.Order{relExp(1, p1, now.Add(-time.Hour))}, subj: p1, reason: "expired"},
		{name: "expired at the Unix epoch", orders: []customs.Order{relExp(1, p1, time.Unix(0, 0).UTC())}, subj: p1, reason: "expired"},
		{name: "not yet expired", orders: []customs.Order{relExp(1, p1, now.Add(time.Nanosecond))}, subj: p1, pass: true, reason: "released"},
		{name: "release without expiry after expired one", orders: []customs.Order{relExp(1, p1, now.Add(-time.Hour)), rel(2, p1)}, subj: p1, pass: true, reason: "released"},
		{name: "revoke clears the expiry of an older release", orders: []customs.Order{relExp(1, p1, now.Add(time.Hour)), revoke(2, p1)}, subj: p1, reason: "revoked"},

		// Containers on their contents (rule 2).
		{name: "bag of released parcels", orders: []customs.Order{rel(1, p1), rel(2, p2), link(3, b1, p1, p2)}, subj: b1, pass: true, reason: "released", items: 2},
		{name: "bag of released parcels, unreleased bag released by nothing", orders: []customs.Order{link(1, b1, p1, p2), rel(2, p1), rel(3, p2)}, subj: b1, pass: true, reason: "released", basis: 3},
		{name: "bag with one held parcel", orders: []customs.Order{rel(1, p1), rel(2, p2), hold(3, p2, "H1", "inspection"), link(4, b1, p1, p2)},
			subj: b1, reason: "contents", blocking: []Blocked{{Subject: p2, Reason: "held:inspection"}}, items: 2},
		{name: "bag with one unknown parcel", orders: []customs.Order{rel(1, p1), link(2, b1, p1, p2)},
			subj: b1, reason: "contents", blocking: []Blocked{{Subject: p2, Reason: "unknown"}}},
		{name: "released bag passes its unreleased parcels", orders: []customs.Order{rel(1, b1), link(2, b1, p1, p2)}, subj: b1, pass: true, reason: "released"},
		{name: "released bag, a parcel's own release revoked", orders: []customs.Order{rel(1, b1), rel(2, p2), revoke(3, p2), link(4, b1, p1, p2)},
			subj: b1, reason: "contents", blocking: []Blocked{{Subject: p2, Reason: "revoked"}}},
		{name: "revoked bag with released parcels passes on its contents", orders: []customs.Order{revoke(1, b1), rel(2, p1), rel(3, p2), link(4, b1, p1, p2)}, subj: b1, pass: true, reason: "released"},
		{name: "a hold on another container of a parcel stops the bag", orders: []customs.Order{
			rel(1, b1), link(2, b1, p1, p2), link(3, a1, p1), hold(4, a1, "H1", "inspection")}, subj: b1, reason: "contents",
			blocking: []Blocked{{Subject: p1, Reason: "held:inspection"}}},
		{name: "a revoke on another container of a parcel stops the bag", orders: []customs.Order{
			rel(1, b1), link(2, b1, p1), link(3, a1, p1), revoke(4, a1)}, subj: b1, reason: "contents",
			blocking: []Blocked{{Subject: p1, Reason: "revoked"}}},
		{name: "a released second container does not stop the bag", orders: []customs.Order{
			rel(1, b1), link(2, b1, p1), link(3, a1, p1), rel(4, a1)}, subj: b1, pass: true, reason: "released"},
		{name: "a parcel taken out of the held waybill no longer stops the bag", orders: []customs.Order{
			rel(1, b1), link(2, b1, p1), link(3, a1, p1), hold(4, a1, "H1", "inspection"), unlink(5, a1, p1)}, subj: b1, pass: true, reason: "released"},
		{name: "released AWB passes its parcel", orders: []customs.Order{rel(1, a1), link(2, a1, p1, p2)}, subj: p1, pass: true, reason: "released", basis: 1},
		{name: "released AWB passes itself", orders: []customs.Order{rel(1, a1), link(2, a1, p1, p2)}, subj: a1, pass: true, reason: "released"},
		{name: "released ULD passes a parcel two levels down", orders: []customs.Order{rel(1, u1), link(2, u1, b1), link(3, b1, p1)}, subj: p1, pass: true, reason: "released"},
		{name: "held parcel stops its bag", orders: []customs.Order{rel(1, a1), rel(6, u1), link(2, a1, p1, p2), link(3, b1, p1, p2), link(4, u1, b1), hold(5, p1, "H1", "do_not_load")},
			subj: b1, reason: "contents", blocking: []Blocked{{Subject: p1, Reason: "held:do_not_load"}}},
		{name: "held parcel stops its ULD", orders: []customs.Order{rel(1, a1), rel(6, u1), link(2, a1, p1, p2), link(3, b1, p1, p2), link(4, u1, b1), hold(5, p1, "H1", "do_not_load")},
			subj: u1, reason: "contents", blocking: []Blocked{{Subject: p1, Reason: "held:do_not_load"}}, items: 3},
		{name: "held parcel stops its AWB", orders: []customs.Order{rel(1, a1), link(2, a1, p1, p2), link(3, b1, p1, p2), link(4, u1, b1), hold(5, p1, "H1", "do_not_load")},
			subj: a1, reason: "contents", blocking: []Blocked{{Subject: p1, Reason: "held:do_not_load"}}},
		{name: "held parcel does not stop its sibling", orders: []customs.Order{rel(1, a1), link(2, a1, p1, p2), hold(5, p1, "H1", "do_not_load")}, subj: p2, pass: true, reason: "released"},
		{name: "cancelled parcel stops its bag", orders: []customs.Order{rel(1, b1), link(2, b1, p1, p2), cancel(3, p2)},
			subj: b1, reason: "contents", blocking: []Blocked{{Subject: p2, Reason: "cancelled"}}},
		{name: "held bag stops its ULD", orders: []customs.Order{rel(1, u1), link(2, u1, b1, b2), link(3, b1, p1), link(4, b2, p2), hold(5, b2, "H1", "inspection")},
			subj: u1, reason: "contents", blocking: []Blocked{{Subject: b2, Reason: "held:inspection"}}},
		{name: "ancestor hold stops child", orders: []customs.Order{rel(1, p1), link(2, b1, p1), hold(3, b1, "H1", "inspection")}, subj: p1, reason: "held:inspection", basis: 3},
		{name: "grand-ancestor hold stops child", orders: []customs.Order{rel(1, p1), link(2, b1, p1), link(3, u1, b1), hold(4, u1, "H1", "detention")}, subj: p1, reason: "held:detention"},
		{name: "ancestor hold stops a container", orders: []customs.Order{rel(1, p1), link(2, b1, p1), link(3, u1, b1), hold(4, u1, "H1", "detention")}, subj: b1, reason: "held:detention"},
		{name: "cancel names the reason before a lower-seq hold", orders: []customs.Order{rel(1, p1), hold(2, p1, "H1", "inspection"), link(3, b1, p1), cancel(4, b1)}, subj: p1, reason: "cancelled"},
		{name: "lowest-seq hold across ancestors", orders: []customs.Order{rel(1, p1), link(2, b1, p1), hold(3, b1, "H1", "detention"), hold(4, p1, "H1", "inspection")}, subj: p1, reason: "held:detention"},
		{name: "unlink removes the hold of the container", orders: []customs.Order{rel(1, p1), link(2, b1, p1), hold(3, b1, "H1", "inspection"), unlink(4, b1, p1)}, subj: p1, pass: true, reason: "released"},
		{name: "unlink removes the release of the container", orders: []customs.Order{rel(1, b1), link(2, b1, p1), unlink(3, b1, p1)}, subj: p1, reason: "unknown"},
		{name: "unlink removes the held parcel from the bag", orders: []customs.Order{rel(1, b1), link(2, b1, p1, p2), hold(3, p2, "H1", "inspection"), unlink(4, b1, p2)}, subj: b1, pass: true, reason: "released", items: 1},
		{name: "older link after unlink stays unlinked", orders: []customs.Order{rel(1, b1), unlink(3, b1, p1), link(2, b1, p1)}, subj: p1, reason: "unknown"},
		{name: "relink after unlink", orders: []customs.Order{rel(1, b1), link(2, b1, p1), unlink(3, b1, p1), link(4, b1, p1)}, subj: p1, pass: true, reason: "released"},
		{name: "emptied bag falls back on its own release", orders: []customs.Order{revoke(1, b1), rel(2, p1), link(3, b1, p1), unlink(4, b1, p1)}, subj: b1, reason: "revoked"},

		// The governing release: own, else the nearest ancestor's (fail closed).
		{name: "own release revoked, bag released", orders: []customs.Order{rel(1, p1), revoke(2, p1), rel(3, b1), link(4, b1, p1)}, subj: p1, reason: "revoked", basis: 2},
		{name: "own release expired, bag released", orders: []customs.Order{relExp(1, p1, now.Add(-time.Minute)), rel(3, b1), link(4, b1, p1)}, subj: p1, reason: "expired"},
		{name: "own release live, bag revoked", orders: []customs.Order{rel(1, p1), revoke(3, b1), link(4, b1, p1)}, subj: p1, pass: true, reason: "released", basis: 1},
		{name: "nearest ancestor with one decides: bag revoked, ULD released", orders: []customs.Order{revoke(1, b1), rel(2, u1), link(3, b1, p1), link(4, u1, b1)}, subj: p1, reason: "revoked"},
		{name: "nearest ancestor with one decides: bag none, ULD released", orders: []customs.Order{rel(2, u1), link(3, b1, p1), link(4, u1, b1)}, subj: p1, pass: true, reason: "released"},
		{name: "nearest ancestor with one decides: bag released, ULD revoked", orders: []customs.Order{rel(1, b1), revoke(2, u1), link(3, b1, p1), link(4, u1, b1)}, subj: p1, pass: true, reason: "released"},
		{name: "same depth: revoke beats release", orders: []customs.Order{rel(1, b1), revoke(2, a1), link(3, b1, p1), link(4, a1, p1)}, subj: p1, reason: "revoked"},
		{name: "same depth: revoke beats release, other order", orders: []customs.Order{revoke(1, b1), rel(2, a1), link(3, b1, p1), link(4, a1, p1)}, subj: p1, reason: "revoked"},
		{name: "same depth: expired beats release", orders: []customs.Order{rel(1, b1), relExp(2, a1, now.Add(-time.Second)), link(3, b1, p1), link(4, a1, p1)}, subj: p1, reason: "expired"},
		{name: "same depth: two releases", orders: []customs.Order{rel(1, b1), rel(2, a1), link(3, b1, p1), link(4, a1, p1)}, subj: p1, pass: true, reason: "released"},
		{name: "same depth: none and release", orders: []customs.Order{rel(2, a1), link(3, b1, p1), link(4, a1, p1)}, subj: p1, pass: true, reason: "released"},
		{name: "ULD: bag revoked stops its unreleased parcels", orders: []customs.Order{rel(1, u1), revoke(2, b1), link(3, u1, b1), link(4, b1, p1)},
			subj: u1, reason: "contents", blocking: []Blocked{{Subject: p1, Reason: "revoked"}}},
		{name: "ULD: bag with no release inherits the ULD's", orders: []customs.Order{rel(1, u1), link(3, u1, b1), link(4, b1, p1, p2)}, subj: u1, pass: true, reason: "released", items: 3},
		{name: "ULD: parcel's own revoke stops it", orders: []customs.Order{rel(1, u1), link(3, u1, b1), link(4, b1, p1, p2), rel(5, p2), revoke(6, p2)},
			subj: u1, reason: "contents", blocking: []Blocked{{Subject: p2, Reason: "revoked"}}},
		{name: "revoked bag inside a released ULD, scanned itself", orders: []customs.Order{rel(1, u1), revoke(2, b1), link(3, u1, b1), link(4, b1, p1)},
			subj: b1, reason: "contents", blocking: []Blocked{{Subject: p1, Reason: "revoked"}}},
		{name: "bag with no release inside a released ULD, scanned itself", orders: []customs.Order{rel(1, u1), link(3, u1, b1), link(4, b1, p1)}, subj: b1, pass: true, reason: "released"},

		// Depth and loops.
		{name: "depth 4 chain passes", orders: []customs.Order{rel(1, chain[3]), link(2, chain[0], p3), link(3, chain[1], chain[0]), link(4, chain[2], chain[1]), link(5, chain[3], chain[2])},
			subj: p3, pass: true, reason: "released"},
		{name: "depth 4 chain passes from the top", orders: []customs.Order{rel(1, chain[3]), link(2, chain[0], p3), link(3, chain[1], chain[0]), link(4, chain[2], chain[1]), link(5, chain[3], chain[2])},
			subj: chain[3], pass: true, reason: "released", items: 4},
		{name: "depth 5 chain up", orders: []customs.Order{rel(1, chain[4]), link(2, chain[0], p3), link(3, chain[1], chain[0]), link(4, chain[2], chain[1]), link(5, chain[3], chain[2]), link(6, chain[4], chain[3])},
			subj: p3, reason: "error"},
		{name: "depth 5 chain down", orders: []customs.Order{rel(1, chain[4]), link(2, chain[0], p3), link(3, chain[1], chain[0]), link(4, chain[2], chain[1]), link(5, chain[3], chain[2]), link(6, chain[4], chain[3])},
			subj: chain[4], reason: "error"},
		{name: "depth 5 chain, middle", orders: []customs.Order{rel(1, chain[4]), rel(7, p3), link(2, chain[0], p3), link(3, chain[1], chain[0]), link(4, chain[2], chain[1]), link(5, chain[3], chain[2]), link(6, chain[4], chain[3])},
			// p3's ancestry is 5 deep: scanned alone it stops (error), so
			// the bag holding it must not pass on it either.
			subj: chain[2], reason: "error"},
		{name: "loop of two, scanned", orders: []customs.Order{rel(1, b1), rel(2, b2), rel(3, p1), link(4, b1, b2, p1), link(5, b2, b1)}, subj: b1, reason: "error"},
		{name: "loop of two, the other one", orders: []customs.Order{rel(1, b1), rel(2, b2), rel(3, p1), link(4, b1, b2, p1), link(5, b2, b1)}, subj: b2, reason: "error"},
		{name: "loop of two, a parcel inside", orders: []customs.Order{rel(1, b1), rel(2, b2), rel(3, p1), link(4, b1, b2, p1), link(5, b2, b1)}, subj: p1, reason: "error"},
		{name: "loop of three above", orders: []customs.Order{rel(1, b1), rel(3, p1), link(4, b1, p1), link(5, b2, b1), link(6, u1, b2), link(7, b1, u1)}, subj: p1, reason: "error"},
		{name: "loop below a container", orders: []customs.Order{rel(1, a1), link(2, a1, b1), link(3, b1, b2), link(4, b2, b1)}, subj: a1, reason: "error"},
		{name: "loop broken by unlink", orders: []customs.Order{rel(1, b1), rel(3, p1), link(4, b1, b2, p1), link(5, b2, b1), unlink(6, b2, b1)}, subj: p1, pass: true, reason: "released"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := NewMemView(tc.orders...)
			d := Decide(v, tc.subj, now)
			if d.Pass != tc.pass || d.Reason != tc.reason {
				t.Fatalf("Decide(%v) = %s %q, want %v %q\nchain: %+v\nblocking: %+v", tc.subj, d.Verdict(), d.Reason, tc.pass, tc.reason, d.Chain, d.Blocking)
			}
			if d.Pass && d.Reason != customs.ReasonReleased {
				t.Fatalf("a pass with reason %q", d.Reason)
			}
			if tc.basis != 0 && d.BasisSeq != tc.basis {
				t.Errorf("basis seq %d, want %d", d.BasisSeq, tc.basis)
			}
			if tc.blocking != nil && !slices.Equal(d.Blocking, tc.blocking) {
				t.Errorf("blocking %+v, want %+v", d.Blocking, tc.blocking)
			}
			if tc.items != 0 && d.Items != tc.items {
				t.Errorf("items %d, want %d", d.Items, tc.items)
			}
			if len(d.Chain) == 0 {
				t.Errorf("decision without a chain")
			}
			// Applying every order again, newest first, changes nothing.
			for i := len(tc.orders) - 1; i >= 0; i-- {
				v.Apply(&tc.orders[i])
			}
			if again := Decide(v, tc.subj, now); fmt.Sprint(again) != fmt.Sprint(d) {
				t.Errorf("after replaying the orders: %+v, was %+v", again, d)
			}
		})
	}
}

// TestDecideULD5000 decides a ULD of 5,000 parcels in 50 bags.
func TestDecideULD5000(t *testing.T) {
	uld := U("AKE00001MU")
	var orders []customs.Order
	seq := uint64(0)
	next := func() uint64 { seq++; return seq }
	var parcels []customs.Subject
	bags := make([]customs.Subject, 50)
	for b := range bags {
		bags[b] = B(fmt.Sprintf("BAG%03d", b))
		var kids []customs.Subject
		for i := 0; i < 100; i++ {
			p := P(fmt.Sprintf("P%02d%03d", b, i))
			kids = append(kids, p)
			parcels = append(parcels, p)
			orders = append(orders, rel(next(), p))
		}
		orders = append(orders, link(next(), bags[b], kids...))
	}
	orders = append(orders, link(next(), uld, bags...))
	v := NewMemView(orders...)

	d := Decide(v, uld, now)
	if !d.Pass || d.Reason != "released" || d.Items != 5050 {
		t.Fatalf("all released: %s %q items %d", d.Verdict(), d.Reason, d.Items)
	}
	if d.BasisSeq == 0 {
		t.Errorf("basis seq 0 for a pass on 5,000 releases")
	}

	// One held parcel deep inside stops the ULD and names it.
	bad := parcels[4321]
	o := hold(next(), bad, "H1", "inspection")
	v.Apply(&o)
	d = Decide(v, uld, now)
	if d.Pass || d.Reason != "contents" || d.Items != 5050 {
		t.Fatalf("one held: %s %q items %d", d.Verdict(), d.Reason, d.Items)
	}
	if want := []Blocked{{Subject: bad, Reason: "held:inspection"}}; !slices.Equal(d.Blocking, want) {
		t.Fatalf("blocking %+v, want %+v", d.Blocking, want)
	}
	if d := Decide(v, parcels[4320], now); !d.Pass {
		t.Fatalf("sibling of the held parcel: %s %q", d.Verdict(), d.Reason)
	}

	// Many blocking items: the list is bounded, the verdict is not.
	for i := 0; i < 300; i++ {
		o := revoke(next(), parcels[i*7])
		v.Apply(&o)
	}
	d = Decide(v, uld, now)
	if d.Pass || d.Reason != "contents" || len(d.Blocking) != MaxBlocking {
		t.Fatalf("many blocked: %s %q blocking %d", d.Verdict(), d.Reason, len(d.Blocking))
	}

	// Release the ULD and pull every parcel's own release and hold: the
	// ULD's release governs them all.
	v = NewMemView(orders...)
	for _, p := range parcels {
		o := revoke(next(), p)
		v.Apply(&o)
	}
	if d := Decide(v, uld, now); d.Pass {
		t.Fatalf("every parcel revoked: %s %q", d.Verdict(), d.Reason)
	}
	v2 := NewMemView()
	for _, o := range orders {
		if o.Action == customs.Link {
			v2.Apply(&o)
		}
	}
	o = rel(next(), uld)
	v2.Apply(&o)
	if d := Decide(v2, uld, now); !d.Pass || d.Items != 5050 {
		t.Fatalf("released ULD of unreleased parcels: %s %q items %d", d.Verdict(), d.Reason, d.Items)
	}
	if d := Decide(v2, parcels[17], now); !d.Pass {
		t.Fatalf("parcel of a released ULD: %s %q", d.Verdict(), d.Reason)
	}
}

// errView fails every read: the decision must be STOP error, never a pass.
type errView struct{ failOn string }

func (e errView) State(s customs.Subject) (*State, error) {
	if e.failOn == "state" {
		return nil, fmt.Errorf("disk on fire")
	}
	return &State{RelSeq: 1, RelFlag: RelRelease, Children: 1}, nil
}

func (e errView) Parents(s customs.Subject) ([]customs.Subject, error) {
	if e.failOn == "parents" {
		return nil, fmt.Errorf("disk on fire")
	}
	return nil, nil
}

func (e errView) Children(s customs.Subject) ([]customs.Subject, error) {
	if e.failOn == "children" {
		return nil, fmt.Errorf("disk on fire")
	}
	if e.failOn == "panic" {
		panic("boom")
	}
	return nil, nil
}

func TestDecideErrorsStop(t *testing.T) {
	for _, on := range []string{"state", "parents", "children", "panic"} {
		t.Run(on, func(t *testing.T) {
			d := Decide(errView{failOn: on}, B("BAG1"), now)
			if d.Pass || d.Reason != customs.ReasonError {
				t.Fatalf("%s %q, want stop error", d.Verdict(), d.Reason)
			}
		})
	}
}

func TestStateApplyIdempotent(t *testing.T) {
	orders := []customs.Order{
		rel(1, P("X1")), hold(2, P("X1"), "H1", "inspection"), unhold(3, P("X1"), "H1"),
		revoke(4, P("X1")), relExp(5, P("X1"), now), cancel(7, P("X1")), cancel(6, P("X1")),
	}
	var want State
	for i := range orders {
		want.Apply(&orders[i])
	}
	if want.RelSeq != 5 || want.RelFlag != RelRelease || !want.ExpiresAt.Equal(now) || want.CancelSeq != 6 || want.LastSeq != 7 {
		t.Fatalf("state %+v", want)
	}
	if _, ok := want.ActiveHold(); ok {
		t.Fatalf("hold still active: %+v", want.Holds)
	}
	var got State
	for i := len(orders) - 1; i >= 0; i-- {
		got.Apply(&orders[i])
		got.Apply(&orders[i])
	}
	if got.RelSeq != want.RelSeq || got.RelFlag != want.RelFlag || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		got.CancelSeq != want.CancelSeq || got.LastSeq != want.LastSeq || len(got.Holds) != 1 || got.Holds[0].Active {
		t.Fatalf("reversed and doubled: %+v, want %+v", got, want)
	}
}
