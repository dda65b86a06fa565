package store

import (
	"errors"
	"fmt"
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
