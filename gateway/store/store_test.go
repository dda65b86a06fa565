package store

import (
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

var now = time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)

func P(id string) customs.Subject { return customs.Subject{Kind: customs.Parcel, ID: id} }
func B(id string) customs.Subject { return customs.Subject{Kind: customs.Bag, ID: id} }
func U(id string) customs.Subject { return customs.Subject{Kind: customs.ULD, ID: id} }
func A(id string) customs.Subject { return customs.Subject{Kind: customs.AWB, ID: id} }

func rel(seq uint64, s customs.Subject) customs.Order {
	return customs.Order{Seq: seq, Action: customs.Release, Subject: s, Office: "2244", Ref: "22442026E000123456"}
}

func relExp(seq uint64, s customs.Subject, exp time.Time) customs.Order {
	o := rel(seq, s)
	o.ExpiresAt = exp
	return o
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

func seal(seq uint64, s customs.Subject, seals ...string) customs.Order {
	return customs.Order{Seq: seq, Action: customs.Seal, Subject: s, Seals: seals}
}

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "orders.db")
	s, err := Open(path, Options{LockTimeout: 200 * time.Millisecond, InitialMmapSize: 1 << 24})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func mustApply(t testing.TB, s *Store, b Batch) Result {
	t.Helper()
	res, err := s.Apply(b)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func orders(os ...customs.Order) Batch { return Batch{Orders: os} }

func wantDecision(t *testing.T, s *Store, subj customs.Subject, pass bool, reason string) rules.Decision {
	t.Helper()
	d := s.Decide(subj, now)
	if d.Pass != pass || d.Reason != reason {
		t.Fatalf("Decide(%v) = %s %q, want pass=%v %q\nchain: %+v", subj, d.Verdict(), d.Reason, pass, reason, d.Chain)
	}
	return d
}

func TestApplyBatch(t *testing.T) {
	s, _ := openTemp(t)
	p1, p2, b1 := P("RR000000001CN"), P("RR000000002CN"), B("BAG1")
	res := mustApply(t, s, orders(rel(1, p1), rel(2, p2), link(3, b1, p1, p2)))
	if res.Applied != 3 || res.Duplicates != 0 || len(res.Conflicts) != 0 || res.Watermark != 3 || res.MaxSeq != 3 {
		t.Fatalf("result %+v", res)
	}
	wantDecision(t, s, p1, true, "released")
	wantDecision(t, s, b1, true, "released")
	wantDecision(t, s, P("RR000000003CN"), false, "unknown")

	res = mustApply(t, s, orders(hold(4, p2, "H1", "inspection")))
	if res.Applied != 1 || res.Watermark != 4 {
		t.Fatalf("result %+v", res)
	}
	d := wantDecision(t, s, b1, false, "contents")
	if want := []rules.Blocked{{Subject: p2, Reason: "held:inspection"}}; !slices.Equal(d.Blocking, want) {
		t.Fatalf("blocking %+v, want %+v", d.Blocking, want)
	}
	mustApply(t, s, orders(unhold(5, p2, "H1")))
	wantDecision(t, s, b1, true, "released")

	o, found, err := s.Order(3)
	if err != nil || !found || o.Action != customs.Link || len(o.Children) != 2 {
		t.Fatalf("Order(3) = %+v, %v, %v", o, found, err)
	}
	if _, found, _ := s.Order(99); found {
		t.Fatalf("Order(99) found")
	}
	st, err := s.Stats()
	if err != nil || st.Orders != 5 || st.Subjects != 3 || st.Links != 2 {
		t.Fatalf("stats %+v, %v", st, err)
	}
}

func TestApplyEmptyBatch(t *testing.T) {
	s, _ := openTemp(t)
	res := mustApply(t, s, Batch{})
	if res.Applied != 0 || res.Watermark != 0 || res.MaxSeq != 0 {
		t.Fatalf("result %+v", res)
	}
}

func TestWatermarkAndMissing(t *testing.T) {
	s, _ := openTemp(t)
	res := mustApply(t, s, orders(rel(1, P("A1")), rel(2, P("A2")), rel(4, P("A4"))))
	if res.Watermark != 2 || res.MaxSeq != 4 {
		t.Fatalf("after 1,2,4: %+v", res)
	}
	miss, err := s.Missing(res.Watermark, 4, 100)
	if err != nil || !reflect.DeepEqual(miss, [][2]uint64{{3, 3}}) {
		t.Fatalf("Missing(2,4) = %v, %v", miss, err)
	}
	res = mustApply(t, s, orders(rel(3, P("A3"))))
	if res.Watermark != 4 {
		t.Fatalf("after 3: %+v", res)
	}
	// A gap left open, then seqs beyond it.
	mustApply(t, s, orders(rel(7, P("A7")), rel(8, P("A8")), rel(12, P("A12"))))
	p, err := s.Progress()
	if err != nil || p.Watermark != 4 || p.MaxSeq != 12 {
		t.Fatalf("progress %+v, %v", p, err)
	}
	tests := []struct {
		from, to uint64
		limit    int
		want     [][2]uint64
	}{
		{4, 12, 100, [][2]uint64{{5, 6}, {9, 11}}},
		{4, 20, 100, [][2]uint64{{5, 6}, {9, 11}, {13, 20}}},
		{4, 20, 2, [][2]uint64{{5, 6}, {9, 11}}},
		{4, 20, 1, [][2]uint64{{5, 6}}},
		{0, 12, 100, [][2]uint64{{5, 6}, {9, 11}}},
		{4, 5, 100, [][2]uint64{{5, 5}}},
		{4, 4, 100, nil},
		{8, 8, 100, nil},
		{8, 10, 100, [][2]uint64{{9, 10}}},
		{12, 15, 100, [][2]uint64{{13, 15}}},
		{0, 3, 100, nil},
	}
	for _, tc := range tests {
		got, err := s.Missing(tc.from, tc.to, tc.limit)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Missing(%d, %d, %d) = %v, %v; want %v", tc.from, tc.to, tc.limit, got, err, tc.want)
		}
	}
	mustApply(t, s, orders(rel(5, P("A5")), rel(6, P("A6"))))
	if p, _ := s.Progress(); p.Watermark != 8 {
		t.Fatalf("after 5,6: watermark %d, want 8", p.Watermark)
	}
}

func TestDuplicatesAndConflicts(t *testing.T) {
	s, _ := openTemp(t)
	p1, p2 := P("RR000000001CN"), P("RR000000002CN")
	mustApply(t, s, orders(rel(1, p1), hold(2, p2, "H1", "inspection")))

	// The same orders again, office/ref/note/reason aside, are duplicates.
	again := rel(1, p1)
	again.Note, again.Ref = "resent", ""
	res := mustApply(t, s, orders(again, hold(2, p2, "H1", "inspection"), rel(3, p2)))
	if res.Applied != 1 || res.Duplicates != 2 || len(res.Conflicts) != 0 {
		t.Fatalf("duplicates: %+v", res)
	}

	// Same seq, other content: a conflict, the first kept.
	before := s.Decide(p1, now)
	for _, o := range []customs.Order{
		revoke(1, p1),                     // other action
		rel(1, p2),                        // other subject
		relExp(1, p1, now.Add(time.Hour)), // other expires_at
		hold(2, p2, "H2", "inspection"),   // other hold_id
		link(1, B("BAG1"), p1),            // other action and children
		cancel(2, p2),                     // other action
	} {
		res := mustApply(t, s, orders(o))
		if res.Applied != 0 || res.Duplicates != 0 || len(res.Conflicts) != 1 || res.Conflicts[0].Seq != o.Seq {
			t.Fatalf("conflict %+v: %+v", o, res)
		}
		if len(res.Conflicts[0].Kept) == 0 || len(res.Conflicts[0].Ignored) == 0 {
			t.Fatalf("conflict without both orders: %+v", res.Conflicts[0])
		}
	}
	if after := s.Decide(p1, now); !reflect.DeepEqual(after, before) {
		t.Fatalf("decision changed by conflicts: %+v, was %+v", after, before)
	}
	kept, _, _ := s.Order(1)
	if kept.Action != customs.Release || kept.Subject != p1 {
		t.Fatalf("order 1 is now %+v", kept)
	}
	wantDecision(t, s, p2, false, "held:inspection")
}

// TestConflictInOneBatch: two orders under one seq in the same batch, the
// first kept; the conflict must carry the kept order for the audit (§3).
func TestConflictInOneBatch(t *testing.T) {
	s, _ := openTemp(t)
	p1 := P("RR000000001CN")
	res := mustApply(t, s, orders(rel(1, p1), cancel(1, p1), rel(1, p1)))
	if res.Applied != 1 || res.Duplicates != 1 || len(res.Conflicts) != 1 {
		t.Fatalf("result %+v", res)
	}
	wantDecision(t, s, p1, true, "released")
	c := res.Conflicts[0]
	if len(c.Ignored) == 0 {
		t.Fatalf("conflict without the ignored order: %+v", c)
	}
	if len(c.Kept) == 0 {
		t.Errorf("in-batch conflict seq %d: Kept is empty, the audit cannot show the order kept (ignored: %s)", c.Seq, c.Ignored)
	}
}

func TestReopen(t *testing.T) {
	s, path := openTemp(t)
	p1, p2, b1, tr := P("RR000000001CN"), P("RR000000002CN"), B("BAG1"), customs.Subject{Kind: customs.Transit, ID: "T1"}
	mustApply(t, s, Batch{Orders: []customs.Order{rel(1, p1), link(2, b1, p1, p2), hold(3, p2, "H1", "detention"),
		relExp(4, p2, now.Add(time.Hour)), seal(6, tr, "SH-1", "SH-2")}, Head: 10, Floor: now})
	before := map[customs.Subject]rules.Decision{}
	for _, x := range []customs.Subject{p1, p2, b1, tr} {
		before[x] = s.Decide(x, now)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for x, d := range before {
		if got := s2.Decide(x, now); !reflect.DeepEqual(got, d) {
			t.Errorf("%v after reopen: %+v, was %+v", x, got, d)
		}
	}
	p, err := s2.Progress()
	if err != nil || p.Watermark != 4 || p.MaxSeq != 6 || p.Head != 10 || !p.Floor.Equal(now) {
		t.Fatalf("progress after reopen %+v, %v", p, err)
	}
	err = s2.View(func(v rules.View) error {
		st, err := v.State(tr)
		if err != nil {
			return err
		}
		if st == nil || st.SealSeq != 6 || !slices.Equal(st.Seals, []string{"SH-1", "SH-2"}) {
			return fmt.Errorf("transit state %+v", st)
		}
		kids, err := v.Children(b1)
		if err != nil {
			return err
		}
		if !slices.Equal(kids, []customs.Subject{p1, p2}) {
			return fmt.Errorf("children of %v: %v", b1, kids)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Applying to the reopened store continues from the watermark.
	res := mustApply(t, s2, orders(rel(5, P("X5"))))
	if res.Watermark != 6 {
		t.Fatalf("watermark after 5: %d, want 6", res.Watermark)
	}
}

func TestOpenLocked(t *testing.T) {
	s, path := openTemp(t)
	_ = s
	s2, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a store in use succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestHeadAndFloorOnlyUpward(t *testing.T) {
	s, _ := openTemp(t)
	steps := []struct {
		b         Batch
		head      uint64
		floor     time.Time
		resHeadIs uint64
	}{
		{Batch{Head: 10, Floor: now}, 10, now, 10},
		{Batch{Head: 5, Floor: now.Add(-time.Hour)}, 10, now, 10},
		{Batch{Orders: []customs.Order{rel(1, P("A1"))}}, 10, now, 10},
		{Batch{Head: 12, Floor: now.Add(time.Second)}, 12, now.Add(time.Second), 12},
		{Batch{Head: 0}, 12, now.Add(time.Second), 12},
	}
	for i, st := range steps {
		res := mustApply(t, s, st.b)
		if res.Head != st.resHeadIs {
			t.Errorf("step %d: result head %d, want %d", i, res.Head, st.resHeadIs)
		}
		p, err := s.Progress()
		if err != nil || p.Head != st.head || !p.Floor.Equal(st.floor) {
			t.Errorf("step %d: progress %+v, %v; want head %d floor %v", i, p, err, st.head, st.floor)
		}
	}
}

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

func TestCodecRoundTrip(t *testing.T) {
	states := []*rules.State{
		{},
		{RelSeq: 1, RelFlag: rules.RelRelease, LastSeq: 1},
		{RelSeq: 1 << 40, RelFlag: rules.RelRelease, ExpiresAt: now.Add(123456789 * time.Nanosecond), LastSeq: 1<<40 + 7},
		{RelSeq: 3, RelFlag: rules.RelRevoke, CancelSeq: 2, LastSeq: 9, Children: 10000},
		{RelSeq: 4, RelFlag: rules.RelRelease, ExpiresAt: time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC), LastSeq: 4},
		{LastSeq: 30, Holds: []rules.HoldSlot{
			{ID: "H1", Seq: 5, Active: true, Reason: "inspection"},
			{ID: "H2", Seq: 6, Active: false, Reason: "do_not_load"},
			{ID: "H3", Seq: 7, Active: true, Reason: "detention"},
			{ID: "H4", Seq: 8, Active: true, Reason: "information"},
			{ID: "HOLD-5-LONG-ID-0123456789", Seq: 9, Active: true, Reason: "other"},
			{ID: "H6", Seq: 10, Active: false, Reason: ""},
		}},
		{LastSeq: 31, Holds: []rules.HoldSlot{
			{ID: "H1", Seq: 5, Active: true, Reason: "inspection"},
			{ID: "H2", Seq: 31, Active: true, Reason: "other", Text: "x-ray 查验"},
		}},
		{SealSeq: 12, Seals: []string{"SH-000123", "SH-000124"}, LastSeq: 12, Children: 120},
		{SealSeq: 1, Seals: make([]string, customs.MaxSeals), LastSeq: 1},
	}
	for i, st := range states {
		b := encodeState(st)
		got, err := decodeState(b)
		if err != nil {
			t.Fatalf("state %d: decode: %v", i, err)
		}
		if !statesEqual(got, st) {
			t.Fatalf("state %d: round trip\n got %+v\nwant %+v", i, got, st)
		}
		for n := 0; n < len(b); n++ {
			if got, err := decodeState(b[:n]); err == nil {
				t.Fatalf("state %d: decode of %d of %d bytes: no error, %+v", i, n, len(b), got)
			}
		}
	}
	for _, l := range []rules.LinkState{{}, {Seq: 1, Linked: true}, {Seq: 1 << 50}} {
		b := encodeLink(l)
		got, err := decodeLink(b)
		if err != nil || got != l {
			t.Fatalf("link %+v: %+v, %v", l, got, err)
		}
		for n := 0; n < len(b); n++ {
			if _, err := decodeLink(b[:n]); err == nil {
				t.Fatalf("link %+v: decode of %d bytes: no error", l, n)
			}
		}
	}
	for _, bad := range [][]byte{nil, {0}, {2}, {stateVersion, 0, 0xff}} {
		if _, err := decodeState(bad); err == nil {
			t.Errorf("decodeState(%x): no error", bad)
		}
	}
}

// TestCodecExpiryInstant: every expiry instant survives the codec, the Unix
// epoch and dates outside int64 nanoseconds (before 1678, after 2262)
// included; a release whose expires_at is set must never come back as one
// without expiry.
func TestCodecExpiryInstant(t *testing.T) {
	for _, exp := range []time.Time{
		time.Unix(0, 0).UTC(),
		time.Unix(0, 1).UTC(),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		st := &rules.State{RelSeq: 1, RelFlag: rules.RelRelease, ExpiresAt: exp, LastSeq: 1}
		got, err := decodeState(encodeState(st))
		if err != nil {
			t.Fatalf("%v: %v", exp, err)
		}
		if !got.ExpiresAt.Equal(exp) {
			t.Errorf("expires_at %v came back as %v (zero: %v)", exp, got.ExpiresAt, got.ExpiresAt.IsZero())
		}
	}
}

func statesEqual(a, b *rules.State) bool {
	if !a.ExpiresAt.Equal(b.ExpiresAt) {
		return false
	}
	x, y := *a, *b
	x.ExpiresAt, y.ExpiresAt = time.Time{}, time.Time{}
	if len(x.Holds) == 0 && len(y.Holds) == 0 {
		x.Holds, y.Holds = nil, nil
	}
	if len(x.Seals) == 0 && len(y.Seals) == 0 {
		x.Seals, y.Seals = nil, nil
	}
	return reflect.DeepEqual(x, y)
}

// FuzzDecodeState: decodeState never panics on any bytes, and what it
// accepts encodes and decodes again to the same state.
func FuzzDecodeState(f *testing.F) {
	f.Add(encodeState(&rules.State{RelSeq: 7, RelFlag: rules.RelRelease, ExpiresAt: now, LastSeq: 9,
		Holds: []rules.HoldSlot{{ID: "H1", Seq: 8, Active: true, Reason: "inspection"}}}))
	f.Add(encodeState(&rules.State{SealSeq: 3, Seals: []string{"SH-1"}, Children: 2, CancelSeq: 1}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			if st != nil {
				t.Fatalf("error %v with a state %+v", err, st)
			}
			return
		}
		again, err := decodeState(encodeState(st))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !statesEqual(again, st) {
			t.Fatalf("re-encode changed the state:\n%+v\n%+v", again, st)
		}
	})
}
