package store

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

// TestReview_StoreAndRetentionAgainstModel: random histories delivered to
// a real store in random messages (out of order, duplicated, with forged
// conflicts under seqs already applied, some orders without issued_at),
// with aggressive retention (keep 0 to 2 days, the wall clock far ahead)
// between the steps. After every step every subject is decided from the
// store and from rules.MemView over the orders the store acknowledged
// (first content per seq). Retention must change no decision: a PASS
// the model does not give fails, and so does a STOP where it passes.
func TestReview_StoreAndRetentionAgainstModel(t *testing.T) {
	seed := int64(20261206)
	if s := os.Getenv("REVIEW_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	histories := 40
	if testing.Short() {
		histories = 8
	}
	t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	for h := 0; h < histories; h++ {
		r := rand.New(rand.NewSource(seed + int64(h)))
		s, err := Open(filepath.Join(t.TempDir(), fmt.Sprintf("h%d.db", h)), Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		kinds := []func(string) customs.Subject{B, U, A, func(id string) customs.Subject { return customs.Subject{Kind: customs.Transit, ID: id} }}
		var conts, all []customs.Subject
		for i := 0; i < 3+r.Intn(6); i++ {
			conts = append(conts, kinds[r.Intn(len(kinds))](fmt.Sprintf("C%d", i)))
		}
		all = append(all, conts...)
		for i := 0; i < 2+r.Intn(6); i++ {
			all = append(all, P(fmt.Sprintf("RR%09dCN", i)))
		}
		n := 20 + r.Intn(60)
		orders := make([]customs.Order, 0, n)
		for seq := uint64(1); len(orders) < n; seq++ {
			var o customs.Order
			sub := all[r.Intn(len(all))]
			switch k := r.Intn(10); {
			case k < 3:
				c, kid := conts[r.Intn(len(conts))], all[r.Intn(len(all))]
				if c == kid {
					seq--
					continue
				}
				o = link(seq, c, kid)
				if r.Intn(4) == 0 {
					o.Action = customs.Unlink
				}
			case k < 5:
				o = rel(seq, sub)
				if r.Intn(3) == 0 {
					o.ExpiresAt = t0.Add(time.Duration(r.Intn(200*24)) * time.Hour)
				}
			case k < 6:
				o = revoke(seq, sub)
			case k < 8:
				o = hold(seq, sub, fmt.Sprint("H", r.Intn(2)), "detention")
			case k < 9:
				o = unhold(seq, sub, fmt.Sprint("H", r.Intn(2)))
			default:
				if r.Intn(3) != 0 {
					seq--
					continue
				}
				o = cancel(seq, sub)
			}
			if r.Intn(8) != 0 { // some orders without issued_at
				o.IssuedAt = t0.Add(time.Duration(seq) * 24 * time.Hour)
			}
			orders = append(orders, o)
		}
		// Messages of 1 to 4 orders, delivered in a random order, some
		// twice; forged conflicts under a seq delivered before.
		var msgs [][]customs.Order
		for i := 0; i < len(orders); {
			k := min(len(orders)-i, 1+r.Intn(4))
			msgs = append(msgs, orders[i:i+k])
			i += k
		}
		r.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
		applied := map[uint64]customs.Order{}
		var floor time.Time
		now := t0.Add(time.Duration(r.Intn(120)) * 24 * time.Hour)
		check := func(step string) {
			var acked []customs.Order
			for _, o := range applied {
				acked = append(acked, o)
			}
			v := rules.NewMemView(acked...)
			for _, sub := range all {
				want := rules.Decide(v, sub, now)
				got := s.Decide(sub, now)
				if got.Pass != want.Pass {
					t.Errorf("seed %d: after %s: %v: store %s %q, model %s %q", seed+int64(h), step, sub, got.Verdict(), got.Reason, want.Verdict(), want.Reason)
				}
			}
		}
		for step := 0; step < len(msgs)*2; step++ {
			var m []customs.Order
			switch {
			case step < len(msgs):
				m = msgs[step]
			case len(applied) > 0 && r.Intn(3) == 0:
				// A forged conflict: another action under a seq applied.
				var seqs []uint64
				for q := range applied {
					seqs = append(seqs, q)
				}
				q := seqs[r.Intn(len(seqs))]
				f := applied[q]
				f.Action, f.Children, f.HoldID = customs.Release, nil, ""
				if applied[q].Action == customs.Release {
					f = hold(q, f.Subject, "HX", "inspection")
				}
				m = []customs.Order{f}
			default:
				m = msgs[r.Intn(len(msgs))] // a duplicate
			}
			b := Batch{Orders: append([]customs.Order(nil), m...)}
			for _, o := range m {
				if o.IssuedAt.After(floor) {
					floor = o.IssuedAt
				}
			}
			b.Floor = floor
			if _, err := s.Apply(b); err != nil {
				t.Fatal(err)
			}
			for _, o := range m {
				if _, ok := applied[o.Seq]; !ok {
					applied[o.Seq] = o
				}
			}
			check(fmt.Sprintf("step %d", step))
			if r.Intn(3) == 0 {
				keep := time.Duration(r.Intn(3)) * 24 * time.Hour
				for i := 0; ; i++ {
					res, err := s.Prune(floor.Add(365*24*time.Hour), keep, 1+r.Intn(6))
					if err != nil {
						t.Fatal(err)
					}
					if res.Done || i > 10000 {
						break
					}
				}
				check(fmt.Sprintf("retention after step %d", step))
			}
		}
		s.Close()
		if t.Failed() {
			return
		}
	}
}

// TestReview_ManyHoldSlotsDoNotStallIngest: a subject keeps one hold slot
// per hold_id it ever had (a ULD in service for years, held and released
// flight after flight, keeps its own release and so is never pruned), and
// every slot is encoded. A state the store wrote must be one it reads
// back: refused, every batch touching the subject fails, the link
// acknowledges nothing and stops applying orders for every subject
// (holds included) for good.
func TestReview_ManyHoldSlotsDoNotStallIngest(t *testing.T) {
	s := openPrune(t)
	uld, p := U("AKE12345MU"), P("RR000000001CN")
	st := &rules.State{LastSeq: 1}
	for i := 0; i <= 1<<16; i++ {
		// What State.Apply makes of 65,537 hold/unhold pairs, each hold
		// under a hold_id of its own (built directly: applying them is
		// quadratic).
		st.Holds = append(st.Holds, rules.HoldSlot{ID: fmt.Sprintf("H%d", i), Seq: uint64(2 + i), Reason: "inspection"})
	}
	st.RelFlag, st.RelSeq = rules.RelRelease, 1
	enc := encodeState(st)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bSubj).Put(subjectKey(uld), enc) }); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeState(enc); err != nil {
		t.Errorf("the store cannot read back a state it wrote: %v", err)
	}
	// The next batch: a new hold on the ULD and a hold on a parcel.
	if _, err := s.Apply(Batch{Orders: []customs.Order{rel(1000000, p), hold(1000001, uld, "HNEW", "detention"), hold(1000002, p, "H1", "detention")}}); err != nil {
		t.Fatalf("ingest stalls: %v", err)
	}
	if d := s.Decide(p, pNow); d.Pass {
		t.Errorf("held parcel passes")
	}
}

// TestReview_MissingUpToTheLastSeq: Missing lists the seqs not applied up
// to to, whatever to is. The link's settle asks it up to the highest seq
// seen (a head, or an order that cannot be applied, under any seq ≥ 1 of
// §3, 2^64−1 included); an empty answer there means "nothing missing",
// and the link would then stop filling the real gaps below it every
// gap_grace.
func TestReview_MissingUpToTheLastSeq(t *testing.T) {
	s := openPrune(t)
	applyAt(t, s, rel(1, P("RR000000001CN")), rel(3, P("RR000000003CN")))
	const top = ^uint64(0)
	got, err := s.Missing(0, top, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]uint64{{2, 2}, {4, top}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Missing(0, 2^64-1) = %v, want %v", got, want)
	}
	if got, _ := s.Missing(3, top, 10); fmt.Sprint(got) != fmt.Sprint([][2]uint64{{4, top}}) {
		t.Errorf("Missing(3, 2^64-1) = %v", got)
	}
	if got, _ := s.Missing(top, top, 10); len(got) != 0 {
		t.Errorf("Missing(2^64-1, 2^64-1) = %v, want none", got)
	}
}

// TestReview_FloorBeforeNanosecondRange: a central timestamp before 1678
// (an issued_at of 1500, signed but absurd) is no time to store as
// nanoseconds: stored anyway it wraps, and the floor read back after a
// restart lies decades ahead, expiring every release with an expiry for
// good. It must be ignored, as a wall reading before 1970 is.
func TestReview_FloorBeforeNanosecondRange(t *testing.T) {
	s := openPrune(t)
	old := time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.Apply(Batch{Orders: []customs.Order{rel(1, P("RR000000001CN"))}, Floor: old}); err != nil {
		t.Fatal(err)
	}
	p, err := s.Progress()
	if err != nil {
		t.Fatal(err)
	}
	if p.Floor.After(pNow) {
		t.Errorf("floor stored for %v reads back as %v", old, p.Floor)
	}
}
