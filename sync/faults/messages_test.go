package faults

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/central"
)

// TestDuplicatedReorderedReplayed publishes central's orders as messages
// duplicated, in shuffled order and replayed after newer ones, plus a
// conflicting order under a used seq: the gateway combines by seq, never by
// arrival, keeps the first of a conflict, and ends with central's state.
func TestDuplicatedReorderedReplayed(t *testing.T) {
	s := newSite(t, siteOpts{gapGrace: "3s", headInterval: time.Hour})
	s.waitFor("online", func(st gwStatus) bool { return st.Link.Online })
	rng := rand.New(rand.NewPCG(s.seed, 3))
	P := func(n int) customs.Subject { return parcel(700000 + n) }
	bag := customs.Subject{Kind: customs.Bag, ID: central.SSCC(7001)}
	orders := []customs.Order{
		release(P(1)), {Action: customs.Revoke, Subject: P(1)}, // P1 revoked
		release(P(2)), {Action: customs.Hold, Subject: P(2), HoldID: "h", Reason: "inspection"},
		{Action: customs.Unhold, Subject: P(2), HoldID: "h"}, // P2 released again
		release(P(3)), {Action: customs.Hold, Subject: P(3), HoldID: "h", Reason: "detention"}, // P3 held
		release(P(4)), {Action: customs.Cancel, Subject: P(4)}, release(P(4)), // P4 cancelled for good
		release(P(5)), release(P(6)), {Action: customs.Link, Subject: bag, Children: []customs.Subject{P(5), P(6)}},
		{Action: customs.Hold, Subject: P(6), HoldID: "x", Reason: "do_not_load"}, // bag stopped by P6
	}
	rounds := size(3, 20)
	for round := 0; round < rounds; round++ {
		// Fill the ledger without publishing, then publish the orders
		// ourselves, signed by central, one or two a message.
		first, last, err := s.c().Record(context.Background(), append([]customs.Order(nil), orders...))
		if err != nil {
			t.Fatal(err)
		}
		ledger, err := s.c().Orders(first, last)
		if err != nil {
			t.Fatal(err)
		}
		var msgs [][]byte
		for i := 0; i < len(ledger); {
			n := 1 + rng.IntN(2)
			msgs = append(msgs, s.seal(ledger[i:min(i+n, len(ledger))]...))
			i += n
		}
		// Every message twice, all shuffled; then the oldest replayed last.
		sent := append(append([][]byte(nil), msgs...), msgs...)
		rng.Shuffle(len(sent), func(i, j int) { sent[i], sent[j] = sent[j], sent[i] })
		sent = append(sent, msgs[0], msgs[1])
		for _, m := range sent {
			if err := s.c().PublishRaw(customs.OrdersTopic(siteName), m); err != nil {
				t.Fatal(err)
			}
		}
		st := s.waitFor("all published orders applied", func(st gwStatus) bool { return st.Link.Applied >= last })
		if st.Link.Duplicates == 0 {
			t.Errorf("round %d: no duplicates counted after sending every message twice", round)
		}
		// A conflict: P1's revoke seq again, as a release. The first one
		// applied (the revoke) stays.
		bad := ledger[1]
		bad.Action, bad.ExpiresAt = customs.Release, time.Now().Add(time.Hour)
		if err := s.c().PublishRaw(customs.OrdersTopic(siteName), s.seal(bad)); err != nil {
			t.Fatal(err)
		}
		s.waitFor("conflict counted", func(st gwStatus) bool { return st.Link.Conflicts >= uint64(round+1) })
		want := map[customs.Subject]string{P(1): "STOP", P(2): "PASS", P(3): "STOP", P(4): "STOP", P(5): "PASS", P(6): "STOP", bag: "STOP"}
		for sj, frame := range want {
			if got := s.scan(sj.ID); got != frame {
				t.Errorf("round %d: scan %s: %s, want %s", round, sj, got, frame)
			}
		}
		// The next round reuses the subjects under higher seqs: the same
		// outcome, whatever the arrival order.
	}
	// The conflicts were forged on purpose; the final check wants none.
	r := s.finalCheckAllowConflicts()
	t.Logf("%d rounds: %s", rounds, r)
}

// seal signs orders as central does.
func (s *site) seal(orders ...customs.Order) []byte {
	s.t.Helper()
	b, err := s.signer.Seal(customs.Orders{Type: customs.TypeOrders, Site: siteName, Orders: orders})
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}
