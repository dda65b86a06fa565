package robustness

import (
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// The oracle's own cases: §4 read by hand, so that the oracle is checked
// against the text and not only against the gateway.

func TestOracleCases(t *testing.T) {
	p := func(id string) customs.Subject { return customs.Subject{Kind: customs.Parcel, ID: id} }
	b := func(id string) customs.Subject { return customs.Subject{Kind: customs.Bag, ID: id} }
	u := func(id string) customs.Subject { return customs.Subject{Kind: customs.ULD, ID: id} }
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rel := func(seq uint64, s customs.Subject) mOrder { return mOrder{Seq: seq, Action: "release", Subject: s} }
	relUntil := func(seq uint64, s customs.Subject, d time.Duration) mOrder {
		return mOrder{Seq: seq, Action: "release", Subject: s, Expires: t0.Add(d)}
	}
	act := func(seq uint64, a string, s customs.Subject) mOrder { return mOrder{Seq: seq, Action: a, Subject: s} }
	hold := func(seq uint64, s customs.Subject, id, reason string) mOrder {
		return mOrder{Seq: seq, Action: "hold", Subject: s, HoldID: id, Reason: reason}
	}
	unhold := func(seq uint64, s customs.Subject, id string) mOrder {
		return mOrder{Seq: seq, Action: "unhold", Subject: s, HoldID: id}
	}
	link := func(seq uint64, c customs.Subject, kids ...customs.Subject) mOrder {
		return mOrder{Seq: seq, Action: "link", Subject: c, Children: kids}
	}
	unlink := func(seq uint64, c customs.Subject, kids ...customs.Subject) mOrder {
		return mOrder{Seq: seq, Action: "unlink", Subject: c, Children: kids}
	}
	cases := []struct {
		name   string
		orders []mOrder
		subj   customs.Subject
		pass   bool
		reason string
	}{
		{"nothing known", nil, p("P1"), false, "unknown"},
		{"own release", []mOrder{rel(1, p("P1"))}, p("P1"), true, "released"},
		{"revoke after release", []mOrder{rel(1, p("P1")), act(2, "revoke", p("P1"))}, p("P1"), false, "revoked"},
		{"release after revoke, by seq not arrival", []mOrder{rel(3, p("P1")), act(2, "revoke", p("P1"))}, p("P1"), true, "released"},
		{"expired", []mOrder{relUntil(1, p("P1"), -time.Second)}, p("P1"), false, "expired"},
		{"expires exactly now", []mOrder{relUntil(1, p("P1"), 0)}, p("P1"), false, "expired"},
		{"bag release passes its parcel", []mOrder{link(1, b("B1"), p("P1")), rel(2, b("B1"))}, p("P1"), true, "released"},
		{"ancestor revoke governs (mutant 1)", []mOrder{link(1, b("B1"), p("P1")), act(2, "revoke", b("B1"))}, p("P1"), false, "revoked"},
		{"ancestor expiry governs (mutant 1)", []mOrder{link(1, b("B1"), p("P1")), relUntil(2, b("B1"), -time.Hour)}, p("P1"), false, "expired"},
		{"own revoke beats bag release", []mOrder{link(1, b("B1"), p("P1")), rel(2, b("B1")), act(3, "revoke", p("P1"))}, p("P1"), false, "revoked"},
		{"own release beats bag revoke", []mOrder{link(1, b("B1"), p("P1")), act(2, "revoke", b("B1")), rel(3, p("P1"))}, p("P1"), true, "released"},
		{"nearest governs", []mOrder{link(1, b("B1"), p("P1")), link(2, u("U1"), b("B1")), act(3, "revoke", u("U1")), rel(4, b("B1"))}, p("P1"), true, "released"},
		{"equal distance: release and revoke (mutant 2)", []mOrder{link(1, b("B1"), p("P1")), link(2, b("B2"), p("P1")), rel(3, b("B1")), act(4, "revoke", b("B2"))}, p("P1"), false, "revoked"},
		{"equal distance: revoke listed first", []mOrder{link(1, b("B1"), p("P1")), link(2, b("B2"), p("P1")), act(3, "revoke", b("B1")), rel(4, b("B2"))}, p("P1"), false, "revoked"},
		{"equal distance: two releases", []mOrder{link(1, b("B1"), p("P1")), link(2, b("B2"), p("P1")), rel(3, b("B1")), rel(4, b("B2"))}, p("P1"), true, "released"},
		{"hold on an ancestor", []mOrder{link(1, u("U1"), b("B1")), link(2, b("B1"), p("P1")), rel(3, p("P1")), hold(4, u("U1"), "H1", "inspection")}, p("P1"), false, "held:inspection"},
		{"unhold by seq", []mOrder{rel(1, p("P1")), hold(2, p("P1"), "H1", "inspection"), unhold(3, p("P1"), "H1")}, p("P1"), true, "released"},
		{"older unhold does nothing", []mOrder{rel(1, p("P1")), hold(3, p("P1"), "H1", "inspection"), unhold(2, p("P1"), "H1")}, p("P1"), false, "held:inspection"},
		{"lowest seq hold names the reason", []mOrder{rel(1, p("P1")), hold(5, p("P1"), "H2", "detention"), hold(4, p("P1"), "H1", "do_not_load")}, p("P1"), false, "held:do_not_load"},
		{"cancel before any hold", []mOrder{rel(1, p("P1")), hold(2, p("P1"), "H1", "inspection"), act(3, "cancel", p("P1"))}, p("P1"), false, "cancelled"},
		{"cancel whatever its seq", []mOrder{act(1, "cancel", p("P1")), rel(2, p("P1"))}, p("P1"), false, "cancelled"},
		{"bag of released parcels", []mOrder{link(1, b("B1"), p("P1"), p("P2")), rel(2, p("P1")), rel(3, p("P2"))}, b("B1"), true, "released"},
		{"bag with an unknown parcel", []mOrder{link(1, b("B1"), p("P1"), p("P2")), rel(2, p("P1"))}, b("B1"), false, "contents"},
		{"bag with a held parcel", []mOrder{link(1, b("B1"), p("P1"), p("P2")), rel(2, b("B1")), hold(3, p("P2"), "H1", "other")}, b("B1"), false, "contents"},
		{"child's other parent held (mutant 3)", []mOrder{link(1, b("B1"), p("P1")), link(2, u("U1"), p("P1")), rel(3, b("B1")), hold(4, u("U1"), "H1", "inspection")}, b("B1"), false, "contents"},
		{"child's other parent revoked", []mOrder{link(1, b("B1"), p("P1")), link(2, u("U1"), p("P1")), rel(3, b("B1")), act(4, "revoke", u("U1"))}, b("B1"), false, "contents"},
		{"unlinked parcel no longer inherits", []mOrder{link(1, b("B1"), p("P1")), rel(2, b("B1")), unlink(3, b("B1"), p("P1"))}, p("P1"), false, "unknown"},
		{"relinked", []mOrder{link(1, b("B1"), p("P1")), rel(2, b("B1")), unlink(3, b("B1"), p("P1")), link(4, b("B1"), p("P1"))}, p("P1"), true, "released"},
		{"older link after unlink does nothing", []mOrder{rel(1, b("B1")), unlink(3, b("B1"), p("P1")), link(2, b("B1"), p("P1"))}, p("P1"), false, "unknown"},
		{"loop", []mOrder{link(1, b("B1"), b("B2")), link(2, b("B2"), b("B1")), rel(3, b("B1")), rel(4, b("B2"))}, b("B1"), false, "error"},
		{"ancestry 5 deep", []mOrder{link(1, u("U5"), u("U4")), link(2, u("U4"), u("U3")), link(3, u("U3"), u("U2")), link(4, u("U2"), u("U1")), link(5, u("U1"), p("P1")), rel(6, p("P1"))}, p("P1"), false, "error"},
		// A content item is decided "by these same rules": one whose own
		// ancestry is 5 deep stops (error), so its container stops too,
		// although the container's own ancestry is 4 deep.
		{"content item with ancestry 5 deep", []mOrder{link(2, u("U4"), u("U3")), link(3, u("U3"), u("U2")), link(4, u("U2"), u("U1")), link(5, u("U1"), b("B1")), link(6, b("B1"), p("P1")), rel(7, u("U4"))}, b("B1"), false, "contents"},
		{"container with ancestry 4 deep passes its parcel", []mOrder{link(3, u("U3"), u("U2")), link(4, u("U2"), u("U1")), link(5, u("U1"), b("B1")), link(6, b("B1"), p("P1")), rel(7, u("U3"))}, b("B1"), true, "released"},
		{"ancestry 4 deep", []mOrder{link(2, u("U4"), u("U3")), link(3, u("U3"), u("U2")), link(4, u("U2"), u("U1")), link(5, u("U1"), p("P1")), rel(6, u("U4"))}, p("P1"), true, "released"},
	}
	for _, c := range cases {
		v := newOracle(c.orders).decide(c.subj, t0)
		if v.Pass != c.pass || !v.allows(c.reason) {
			t.Errorf("%s: oracle says pass=%v %v (%s), want pass=%v %s", c.name, v.Pass, v.Reasons, v.Why, c.pass, c.reason)
		}
	}
}
