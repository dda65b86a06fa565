package link_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/central"
	"github.com/cargogate/cargogate/sync/link"
)

// TestOneBadOrderKeepsItsNeighbours checks amendment 2 over a real broker:
// a hold sent in one message beside an order out of form (a 5-digit
// office, a 300-character note, an 80-character ref), a hold whose reason
// is not in the list, and a hold beside orders that cannot be applied at
// all are each applied: the parcel STOPs. The fields out of form are
// dropped and audited, the unlisted reason is held as "other" with its
// text in the explanation, and each unappliable seq stays a gap: the
// watermark stops below it, orders above it are applied, an alarm is
// raised, and the resync that asks for it again goes out at most once per
// resync_timeout, not every gap_grace.
func TestOneBadOrderKeepsItsNeighbours(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.until("connected, first resync answered", func(s link.Snapshot) bool { return s.Online && s.Resyncs >= 1 && !s.Resyncing })

	// Central releases P1..P5 and Q1..Q3 (seqs 1..8); each P is to be held.
	_, last, err := r.central.Issue(ctx, parcels(8, 1))
	if err != nil {
		t.Fatal(err)
	}
	r.until("releases applied", func(s link.Snapshot) bool { return s.Watermark == last })
	P := func(i int) customs.Subject { return customs.Subject{Kind: customs.Parcel, ID: central.ParcelID(i)} }
	Q := func(i int) customs.Subject { return P(5 + i) }
	for i := 1; i <= 5; i++ {
		if d := r.st.Decide(P(i), time.Now()); !d.Pass {
			t.Fatalf("P%d before the holds: %s %s", i, d.Verdict(), d.Reason)
		}
	}

	// Messages central's key signed by hand, seqs above its ledger (central
	// itself refuses to issue orders out of form).
	forger := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(r.broker).SetClientID("amend2"))
	if tk := forger.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	defer forger.Disconnect(100)
	send := func(orders ...string) {
		t.Helper()
		payload := `{"type":"orders","site":"PVG-W","orders":[` + strings.Join(orders, ",") + `]}`
		msg, err := centralKey.SealBytes([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		if tk := forger.Publish(customs.OrdersTopic("PVG-W"), 1, false, msg); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
			t.Fatal(tk.Error())
		}
	}
	subj := func(s customs.Subject) string { return fmt.Sprintf(`{"kind":%q,"id":%q}`, s.Kind, s.ID) }
	hold := func(seq uint64, s customs.Subject, reason string) string {
		return fmt.Sprintf(`{"seq":%d,"action":"hold","subject":%s,"hold_id":"H1","reason":%q,"issued_at":"2026-12-01T08:00:00Z"}`, seq, subj(s), reason)
	}
	release := func(seq uint64, s customs.Subject, extra string) string {
		return fmt.Sprintf(`{"seq":%d,"action":"release","subject":%s%s}`, seq, subj(s), extra)
	}
	n := last
	seq := func() uint64 { n++; return n }
	s1, s2, s3, s4 := seq(), seq(), seq(), seq()
	send(hold(s1, P(1), "inspection"), release(s2, Q(1), `,"office":"22445"`))
	send(release(s3, Q(2), `,"note":"`+strings.Repeat("n", 300)+`"`), hold(s4, P(2), "detention"))
	s5, s6 := seq(), seq()
	send(hold(s5, P(3), "do_not_load"), release(s6, Q(3), `,"ref":"`+strings.Repeat("R", 80)+`"`))
	s7 := seq()
	send(hold(s7, P(4), "x-ray scan"))
	// An unknown action (read typed) and an expires_at that does not parse
	// (read leniently), around a hold, and one more order above them.
	bad1, s8, bad2, s9 := seq(), seq(), seq(), seq()
	send(fmt.Sprintf(`{"seq":%d,"action":"frobnicate","subject":%s}`, bad1, subj(Q(1))),
		hold(s8, P(5), "inspection"),
		fmt.Sprintf(`{"seq":%d,"action":"release","subject":%s,"expires_at":"next week"}`, bad2, subj(P(1))))
	send(release(s9, Q(4), ""))

	s := r.until("every good order applied", func(s link.Snapshot) bool { return s.MaxSeq == s9 && s.Applied >= uint64(last)+9 })
	for i := 1; i <= 5; i++ {
		d := r.st.Decide(P(i), time.Now())
		if d.Pass || !strings.HasPrefix(d.Reason, customs.ReasonHeldPrefix) {
			t.Errorf("P%d: %s %s, want STOP held: its hold was lost", i, d.Verdict(), d.Reason)
		}
	}
	if d := r.st.Decide(P(4), time.Now()); d.Reason != "held:other" || len(d.Chain) == 0 || !strings.Contains(d.Chain[0].What, `"x-ray scan"`) {
		t.Errorf("P4: %s, chain %+v; want held:other explained with the reason as given", d.Reason, d.Chain)
	}
	for i, q := range []uint64{s2, s3, s6} {
		if d := r.st.Decide(Q(i+1), time.Now()); !d.Pass {
			t.Errorf("Q%d: %s %s, want PASS (its release applied without the field out of form)", i+1, d.Verdict(), d.Reason)
		}
		o, ok, err := r.st.Order(q)
		if err != nil || !ok || o.Office != "" || o.Note != "" || o.Ref != "" {
			t.Errorf("seq %d stored as %+v (%v, %v): the field out of form kept", q, o, ok, err)
		}
	}
	if s.Rejected != 0 {
		t.Errorf("%d messages rejected (%v): each order stands on its own", s.Rejected, s.RejectedBy)
	}
	if s.FieldsDropped != 4 || len(r.audited("order_fields_dropped")) != 4 {
		t.Errorf("fields dropped %d, audited %d; want 4 (office, note, ref, reason)", s.FieldsDropped, len(r.audited("order_fields_dropped")))
	}

	// The unappliable seqs: gaps, alarmed, the watermark below the lowest.
	if s.Watermark != bad1-1 || s.Unappliable != 2 || s.GapCount != 2 || len(s.Gaps) != 2 ||
		s.Gaps[0].Seq != bad1 || s.Gaps[1].Seq != bad2 || s.Lag == 0 {
		t.Fatalf("watermark %d (want %d), unappliable %d, gaps %d %+v, lag %d", s.Watermark, bad1-1, s.Unappliable, s.GapCount, s.Gaps, s.Lag)
	}
	if len(s.Alarms) == 0 || !strings.Contains(strings.Join(s.Alarms, "\n"), fmt.Sprintf("seq %d cannot be applied", bad1)) {
		t.Errorf("alarms %q: none for seq %d", s.Alarms, bad1)
	}
	if n := len(r.audited("order_unappliable")); n != 2 {
		t.Errorf("%d unappliable orders audited, want 2", n)
	}

	// The conflict rule holds for normalized orders: the same seq with a
	// field out of form dropped is a duplicate; with another action, a
	// conflict, and the first order still decides.
	d0, c0 := s.Duplicates, s.Conflicts
	send(release(s2, Q(1), `,"office":"1","note":"`+strings.Repeat("m", 400)+`"`),
		fmt.Sprintf(`{"seq":%d,"action":"unhold","subject":%s,"hold_id":"H1","office":"99999"}`, s1, subj(P(1))))
	s = r.until("duplicate and conflict counted", func(s link.Snapshot) bool { return s.Duplicates > d0 && s.Conflicts > c0 })
	if s.Duplicates != d0+1 || s.Conflicts != c0+1 || s.Rejected != 0 {
		t.Errorf("duplicates %d→%d, conflicts %d→%d, rejected %d; want one each, none rejected", d0, s.Duplicates, c0, s.Conflicts, s.Rejected)
	}
	if d := r.st.Decide(P(1), time.Now()); d.Pass {
		t.Errorf("P1 passes after a conflicting unhold under the hold's seq")
	}

	// Resync for the gap: repeated (central answers at once, with nothing
	// for that seq), but at most once per resync_timeout (1 s), not once
	// per gap_grace (300 ms).
	r0 := s.Resyncs
	r.until("the gap asked for again", func(s link.Snapshot) bool { return s.Resyncs > r0 })
	r1 := r.link.Snapshot().Resyncs
	time.Sleep(3 * time.Second)
	s = r.link.Snapshot()
	if got := s.Resyncs - r1; got > 4 {
		t.Errorf("%d resyncs in 3 s with resync_timeout 1 s: a resync storm for an unappliable seq", got)
	}
	t.Logf("resyncs in 3 s for a permanent gap: %d (resync_timeout 1 s, gap_grace 300 ms)", s.Resyncs-r1)
	if s.Watermark != bad1-1 || s.GapCount != 2 || s.MaxSeq != s9 {
		t.Errorf("after the resyncs: watermark %d, gaps %d, max %d", s.Watermark, s.GapCount, s.MaxSeq)
	}
}
