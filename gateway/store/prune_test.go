package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

// Retention must never remove what can change a decision. Each test below
// builds a store, prunes it with 30 days' retention and decides with
// rules.Decide over the store.

var (
	pNow  = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) // central's time and the wall clock
	pOld  = pNow.Add(-40 * 24 * time.Hour)                // before the retention cutoff
	pKeep = 30 * 24 * time.Hour
	pBag  = customs.Subject{Kind: customs.Bag, ID: "106141411234567897"}
)

func parcel(id string) customs.Subject { return customs.Subject{Kind: customs.Parcel, ID: id} }

func openPrune(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "orders.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// applyAt applies orders with central's time floor at pNow.
func applyAt(t *testing.T, s *Store, orders ...customs.Order) Result {
	t.Helper()
	res, err := s.Apply(Batch{Orders: orders, Floor: pNow})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// pruneAll runs Prune in tiny transactions until it is done, as the
// retention loop does, with the wall clock at wall.
func pruneAll(t *testing.T, s *Store, wall time.Time) PruneResult {
	t.Helper()
	var total PruneResult
	for i := 0; ; i++ {
		r, err := s.Prune(wall, pKeep, 4)
		if err != nil {
			t.Fatal(err)
		}
		total.Orders += r.Orders
		total.Subjects += r.Subjects
		if r.Done {
			return total
		}
		if i > 1000 {
			t.Fatal("prune never done")
		}
	}
}

func decide(t *testing.T, s *Store, sub customs.Subject) rules.Decision {
	t.Helper()
	var d rules.Decision
	if err := s.View(func(v rules.View) error { d = rules.Decide(v, sub, pNow); return nil }); err != nil {
		t.Fatal(err)
	}
	return d
}

func wantStop(t *testing.T, s *Store, sub customs.Subject, reason string) {
	t.Helper()
	if d := decide(t, s, sub); d.Pass || d.Reason != reason {
		t.Errorf("%s: %s %s, want stop %s (%+v)", sub, d.Verdict(), d.Reason, reason, d.Chain)
	}
}

func wantPass(t *testing.T, s *Store, sub customs.Subject) {
	t.Helper()
	if d := decide(t, s, sub); !d.Pass {
		t.Errorf("%s: stop %s, want pass (%+v)", sub, d.Reason, d.Chain)
	}
}

// A bag held 40 days ago with a parcel linked then: the parcel released
// today still stops on the bag's hold after retention.
func TestPruneKeepsHeldContainer(t *testing.T) {
	s := openPrune(t)
	p := parcel("RR000000001CN")
	applyAt(t, s,
		customs.Order{Seq: 1, Action: customs.Hold, Subject: pBag, HoldID: "H1", Reason: "detention", IssuedAt: pOld},
		customs.Order{Seq: 2, Action: customs.Link, Subject: pBag, Children: []customs.Subject{p}, IssuedAt: pOld},
		customs.Order{Seq: 3, Action: customs.Release, Subject: p, IssuedAt: pNow},
	)
	wantStop(t, s, p, "held:detention")
	r := pruneAll(t, s, pNow)
	t.Logf("pruned %+v", r)
	wantStop(t, s, p, "held:detention")
	wantStop(t, s, pBag, "held:detention")
}

// A bag released today whose parcel was held 40 days ago still stops on
// its contents after retention.
func TestPruneKeepsHeldContent(t *testing.T) {
	s := openPrune(t)
	p := parcel("RR000000001CN")
	applyAt(t, s,
		customs.Order{Seq: 1, Action: customs.Hold, Subject: p, HoldID: "H1", Reason: "inspection", IssuedAt: pOld},
		customs.Order{Seq: 2, Action: customs.Link, Subject: pBag, Children: []customs.Subject{p}, IssuedAt: pOld},
		customs.Order{Seq: 3, Action: customs.Release, Subject: pBag, IssuedAt: pNow},
	)
	wantStop(t, s, pBag, customs.ReasonContents)
	pruneAll(t, s, pNow)
	wantStop(t, s, pBag, customs.ReasonContents)
	wantStop(t, s, p, "held:inspection")
}

// A cancel is terminal: a parcel cancelled 40 days ago does not pass on a
// new release after retention, nor after a replay of its old orders.
func TestPruneKeepsCancel(t *testing.T) {
	s := openPrune(t)
	p := parcel("RR000000001CN")
	old := []customs.Order{
		{Seq: 1, Action: customs.Release, Subject: p, IssuedAt: pOld},
		{Seq: 2, Action: customs.Cancel, Subject: p, IssuedAt: pOld},
	}
	applyAt(t, s, old...)
	pruneAll(t, s, pNow)
	applyAt(t, s, old...) // a lookup replays them
	applyAt(t, s, customs.Order{Seq: 3, Action: customs.Release, Subject: p, IssuedAt: pNow})
	wantStop(t, s, p, customs.ReasonCancelled)
}

// One retention run with the wall clock a year ahead prunes nothing that
// central's time does not allow: an hour-old do_not_load hold on a bag
// stays (a replay and a new release of its parcel do not pass it), and a
// release that expires next week is still live.
func TestPruneWallClockAhead(t *testing.T) {
	s := openPrune(t)
	p, q := parcel("RR000000001CN"), parcel("RR000000002CN")
	hourAgo := pNow.Add(-time.Hour)
	orders := []customs.Order{
		{Seq: 1, Action: customs.Release, Subject: p, IssuedAt: hourAgo},
		{Seq: 2, Action: customs.Link, Subject: pBag, Children: []customs.Subject{p}, IssuedAt: hourAgo},
		{Seq: 3, Action: customs.Hold, Subject: pBag, HoldID: "H1", Reason: "do_not_load", IssuedAt: hourAgo},
		{Seq: 4, Action: customs.Release, Subject: q, IssuedAt: hourAgo, ExpiresAt: pNow.Add(7 * 24 * time.Hour)},
	}
	applyAt(t, s, orders...)
	r := pruneAll(t, s, pNow.AddDate(1, 0, 0))
	if r.Orders != 0 || r.Subjects != 0 {
		t.Errorf("a wall clock a year ahead pruned %+v", r)
	}
	applyAt(t, s, orders...) // a lookup
	applyAt(t, s, customs.Order{Seq: 5, Action: customs.Release, Subject: p, IssuedAt: pNow})
	wantStop(t, s, pBag, "held:do_not_load")
	wantStop(t, s, p, "held:do_not_load")
	wantPass(t, s, q)
}

// An order without issued_at does not stop the sweep: it goes with the
// next order that has one (central numbers orders as it issues them).
func TestPruneOrderWithoutIssueTime(t *testing.T) {
	s := openPrune(t)
	p1, p2, p3, p4 := parcel("RR000000001CN"), parcel("RR000000002CN"), parcel("RR000000003CN"), parcel("RR000000004CN")
	applyAt(t, s,
		customs.Order{Seq: 1, Action: customs.Release, Subject: p1, IssuedAt: pOld},
		customs.Order{Seq: 2, Action: customs.Revoke, Subject: p1}, // no issued_at
		customs.Order{Seq: 3, Action: customs.Release, Subject: p2, IssuedAt: pOld},
		customs.Order{Seq: 4, Action: customs.Revoke, Subject: p2, IssuedAt: pOld},
		customs.Order{Seq: 5, Action: customs.Release, Subject: p3, IssuedAt: pNow},
		customs.Order{Seq: 6, Action: customs.Release, Subject: p4}, // no issued_at, nothing after it
	)
	r := pruneAll(t, s, pNow)
	if r.Orders != 4 || r.Subjects != 0 {
		t.Errorf("pruned %+v, want 4 orders and no subject (both keep their own revoke)", r)
	}
	for _, seq := range []uint64{5, 6} {
		if _, ok, _ := s.Order(seq); !ok {
			t.Errorf("seq %d pruned", seq)
		}
	}
	wantStop(t, s, p1, customs.ReasonRevoked)
	wantStop(t, s, p2, customs.ReasonRevoked)
	wantPass(t, s, p3)
	wantPass(t, s, p4)
}

// A run of orders without issued_at longer than one transaction's budget
// goes too, a budget at a time.
func TestPruneManyWithoutIssueTime(t *testing.T) {
	s := openPrune(t)
	var orders []customs.Order
	for i := 1; i <= 20; i++ {
		orders = append(orders, customs.Order{Seq: uint64(i), Action: customs.Hold, Subject: parcel("RR000000001CN"), HoldID: fmt.Sprint("H", i), Reason: "inspection"})
	}
	orders = append(orders,
		customs.Order{Seq: 21, Action: customs.Release, Subject: parcel("RR000000002CN"), IssuedAt: pOld},
		customs.Order{Seq: 22, Action: customs.Release, Subject: parcel("RR000000003CN"), IssuedAt: pNow})
	applyAt(t, s, orders...)
	if r := pruneAll(t, s, pNow); r.Orders != 21 || r.Subjects != 0 {
		t.Errorf("pruned %+v, want 21 orders and no subject", r)
	}
	wantStop(t, s, parcel("RR000000001CN"), "held:inspection")
}

// Retention still does its job: subjects whose state decides nothing
// (holds all lifted, links all undone, no release or revoke of their own)
// go, with their seq log and inactive links; a subject with a release or
// revoke of its own stays, expired or revoked, because that record governs
// it if central later links it into a released container. With no central
// time yet, nothing is pruned.
func TestPruneRemovesWhatDecidesNothing(t *testing.T) {
	s := openPrune(t)
	rev, exp, unheld, kid := parcel("RR000000001CN"), parcel("RR000000002CN"), parcel("RR000000003CN"), parcel("RR000000004CN")
	live, later := parcel("RR000000005CN"), parcel("RR000000006CN")
	day := pOld.Add(24 * time.Hour)
	old := []customs.Order{
		{Seq: 1, Action: customs.Release, Subject: rev, IssuedAt: pOld},
		{Seq: 2, Action: customs.Revoke, Subject: rev, IssuedAt: pOld},
		{Seq: 3, Action: customs.Release, Subject: exp, IssuedAt: pOld, ExpiresAt: day},
		{Seq: 4, Action: customs.Hold, Subject: unheld, HoldID: "H1", Reason: "inspection", IssuedAt: pOld},
		{Seq: 5, Action: customs.Unhold, Subject: unheld, HoldID: "H1", IssuedAt: pOld},
		{Seq: 6, Action: customs.Link, Subject: pBag, Children: []customs.Subject{kid}, IssuedAt: pOld},
		{Seq: 7, Action: customs.Release, Subject: kid, IssuedAt: pOld, ExpiresAt: day},
		{Seq: 8, Action: customs.Unlink, Subject: pBag, Children: []customs.Subject{kid}, IssuedAt: pOld},
		{Seq: 9, Action: customs.Release, Subject: live, IssuedAt: pOld},
		{Seq: 10, Action: customs.Release, Subject: later, IssuedAt: pOld, ExpiresAt: pNow.Add(time.Hour)},
	}
	if _, err := s.Apply(Batch{Orders: old}); err != nil { // no central time
		t.Fatal(err)
	}
	if r := pruneAll(t, s, pNow); r.Orders != 0 || r.Subjects != 0 {
		t.Errorf("pruned %+v with no time floor", r)
	}
	applyAt(t, s) // central's time arrives
	r := pruneAll(t, s, pNow)
	if r.Orders != len(old) || r.Subjects != 2 {
		t.Errorf("pruned %+v, want %d orders and 2 subjects (the unheld parcel and the emptied bag)", r, len(old))
	}
	st, err := s.Stats()
	if err != nil || st.Subjects != 5 || st.Orders != 0 || st.Links != 0 {
		t.Errorf("left %+v %v, want the 5 subjects with a release or revoke of their own and nothing else", st, err)
	}
	if res := applyAt(t, s, old...); res.Applied != 0 || res.Duplicates != len(old) {
		t.Errorf("replay of pruned orders: %+v", res)
	}
	wantStop(t, s, rev, customs.ReasonRevoked)
	wantStop(t, s, exp, customs.ReasonExpired)
	wantStop(t, s, kid, customs.ReasonExpired)
	wantStop(t, s, unheld, customs.ReasonUnknown)
	wantStop(t, s, pBag, customs.ReasonUnknown)
	wantPass(t, s, live)
	wantPass(t, s, later)
	// Central links the expired and the revoked parcel into a bag it
	// releases: their own records still govern them, so the bag stops on
	// its contents. Had retention removed them, both would inherit the
	// bag's release and pass.
	applyAt(t, s, customs.Order{Seq: 11, Action: customs.Link, Subject: pBag, Children: []customs.Subject{kid, rev}, IssuedAt: pNow},
		customs.Order{Seq: 12, Action: customs.Release, Subject: pBag, IssuedAt: pNow})
	wantStop(t, s, kid, customs.ReasonExpired)
	wantStop(t, s, rev, customs.ReasonRevoked)
	wantStop(t, s, pBag, customs.ReasonContents)
	// A removed subject linked later inherits as one never seen.
	applyAt(t, s, customs.Order{Seq: 13, Action: customs.Link, Subject: pBag, Children: []customs.Subject{unheld}, IssuedAt: pNow},
		customs.Order{Seq: 14, Action: customs.Unlink, Subject: pBag, Children: []customs.Subject{kid, rev}, IssuedAt: pNow})
	wantPass(t, s, unheld)
	wantPass(t, s, pBag)
}
