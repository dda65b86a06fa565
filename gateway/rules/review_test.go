package rules

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// A hostile review's oracle of §4 (with amendment 1), written apart from
// decide.go and contents.go: it reads the orders themselves for every
// question and decides a content item by deciding it in full, as the
// contract says ("every child passes by these same rules").

type revOracle struct {
	orders []customs.Order
	now    time.Time
}

func (o *revOracle) linked(parent, child customs.Subject) bool {
	var best uint64
	on := false
	for _, x := range o.orders {
		if x.Subject != parent || (x.Action != customs.Link && x.Action != customs.Unlink) || x.Seq <= best {
			continue
		}
		for _, c := range x.Children {
			if c == child {
				best, on = x.Seq, x.Action == customs.Link
			}
		}
	}
	return on
}

func (o *revOracle) subjects() map[customs.Subject]bool {
	out := map[customs.Subject]bool{}
	for _, x := range o.orders {
		out[x.Subject] = true
		for _, c := range x.Children {
			out[c] = true
		}
	}
	return out
}

func (o *revOracle) parents(s customs.Subject) []customs.Subject {
	var out []customs.Subject
	for p := range o.subjects() {
		if o.linked(p, s) {
			out = append(out, p)
		}
	}
	return out
}

func (o *revOracle) children(s customs.Subject) []customs.Subject {
	var out []customs.Subject
	for c := range o.subjects() {
		if o.linked(s, c) {
			out = append(out, c)
		}
	}
	return out
}

// blockedSelf: cancelled or an active hold on s itself.
func (o *revOracle) blockedSelf(s customs.Subject) bool {
	holds := map[string]customs.Order{}
	for _, x := range o.orders {
		if x.Subject != s {
			continue
		}
		if x.Action == customs.Cancel {
			return true
		}
		if x.Action == customs.Hold || x.Action == customs.Unhold {
			if h, ok := holds[x.HoldID]; !ok || x.Seq > h.Seq {
				holds[x.HoldID] = x
			}
		}
	}
	for _, h := range holds {
		if h.Action == customs.Hold {
			return true
		}
	}
	return false
}

// ownRelease: 0 none, 1 live release, 2 revoked or expired.
func (o *revOracle) ownRelease(s customs.Subject) int {
	var last *customs.Order
	for i, x := range o.orders {
		if x.Subject == s && (x.Action == customs.Release || x.Action == customs.Revoke) && (last == nil || x.Seq > last.Seq) {
			last = &o.orders[i]
		}
	}
	switch {
	case last == nil:
		return 0
	case last.Action == customs.Release && (last.ExpiresAt.IsZero() || o.now.Before(last.ExpiresAt)):
		return 1
	}
	return 2
}

// height is the longest chain of links above s; -1 for a loop.
func (o *revOracle) height(s customs.Subject, path map[customs.Subject]bool) int {
	if path[s] {
		return -1
	}
	path[s] = true
	defer delete(path, s)
	h := 0
	for _, p := range o.parents(s) {
		ph := o.height(p, path)
		if ph < 0 {
			return -1
		}
		h = max(h, ph+1)
	}
	return h
}

// pass decides s; budget is how many levels of contents may still be
// walked below s (MaxDepth for the scanned subject).
func (o *revOracle) pass(s customs.Subject, budget int, below map[customs.Subject]bool) bool {
	if h := o.height(s, map[customs.Subject]bool{}); h < 0 || h > MaxDepth {
		return false
	}
	// Rule 1 over s and every ancestor.
	dist := map[customs.Subject]int{s: 0}
	queue := []customs.Subject{s}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		if o.blockedSelf(x) {
			return false
		}
		for _, p := range o.parents(x) {
			if _, ok := dist[p]; !ok {
				dist[p] = dist[x] + 1
				queue = append(queue, p)
			}
		}
	}
	// Rule 2.
	if kids := o.children(s); len(kids) > 0 {
		if budget <= 0 || below[s] {
			return false
		}
		below[s] = true
		defer delete(below, s)
		for _, c := range kids {
			if below[c] || !o.pass(c, budget-1, below) {
				return false
			}
		}
		return true
	}
	// Rules 3 and 4: the nearest distance with a release/revoke; every one
	// there a live release.
	best := -1
	for x, d := range dist {
		if o.ownRelease(x) != 0 && (best < 0 || d < best) {
			best = d
		}
	}
	if best < 0 {
		return false
	}
	for x, d := range dist {
		if d == best && o.ownRelease(x) == 2 {
			return false
		}
	}
	return true
}

func (o *revOracle) decide(s customs.Subject) bool {
	// The scanned subject's ancestors are on the way: contents reaching
	// one of them is a loop.
	below := map[customs.Subject]bool{}
	var up func(x customs.Subject, d int)
	up = func(x customs.Subject, d int) {
		if below[x] || d > MaxDepth+1 {
			return
		}
		below[x] = true
		for _, p := range o.parents(x) {
			up(p, d+1)
		}
	}
	for _, p := range o.parents(s) {
		up(p, 1)
	}
	return o.pass(s, MaxDepth, below)
}

// TestReview_ContentItemAncestryTooDeep: a bag 4 levels below other
// containers holds a parcel whose ancestry is therefore 5 levels deep.
// Scanned alone the parcel is STOP error; as the bag's only content it
// must stop the bag too (§4: a container passes only if every child
// passes by these same rules).
func TestReview_ContentItemAncestryTooDeep(t *testing.T) {
	p, b := P("RR000000001CN"), B("BAG1")
	up := []customs.Subject{U("AKE00001MU"), A("78412345675"), U("AKE00002MU"), B("TOP")}
	orders := []customs.Order{rel(1, b), link(2, up[0], b)}
	for i := 1; i < len(up); i++ {
		orders = append(orders, link(uint64(2+i), up[i], up[i-1]))
	}
	orders = append(orders, link(10, b, p))
	v := NewMemView(orders...)
	if d := Decide(v, p, now); d.Pass || d.Reason != customs.ReasonError {
		t.Fatalf("parcel alone: %s %q, want stop error", d.Verdict(), d.Reason)
	}
	if d := Decide(v, b, now); d.Pass {
		t.Errorf("bag whose parcel's ancestry is 5 deep: PASS (%+v), want STOP", d.Chain)
	}
	if (&revOracle{orders: orders, now: now}).decide(b) {
		t.Errorf("the oracle passes the bag")
	}
	// Mixed: the same with the chain 4 deep (bag at depth 3): passes.
	orders = append(orders[:0:0], rel(1, b), link(2, up[0], b))
	for i := 1; i < len(up)-1; i++ {
		orders = append(orders, link(uint64(2+i), up[i], up[i-1]))
	}
	orders = append(orders, link(10, b, p))
	v = NewMemView(orders...)
	if d := Decide(v, b, now); !d.Pass {
		t.Errorf("bag 3 below, parcel 4: %s %q, want pass", d.Verdict(), d.Reason)
	}
}

// TestReview_RandomAgainstOracle decides every subject of random dense
// graphs of containers (any container in any other, loops, diamonds,
// chains past 4) with random releases, expiries, revokes, holds and
// cancels, and compares with the oracle above. A PASS the oracle does not
// give fails.
func TestReview_RandomAgainstOracle(t *testing.T) {
	// A fixed seed that reached a false PASS before the depth fix;
	// REVIEW_SEED replays another.
	seed := int64(1796552892488967875)
	if s := os.Getenv("REVIEW_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	rounds := 400
	if testing.Short() {
		rounds = 50
	}
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewSource(seed))
	falsePass, falseStop := 0, 0
	for round := 0; round < rounds; round++ {
		var conts, all []customs.Subject
		kinds := []func(string) customs.Subject{B, U, A, func(id string) customs.Subject { return customs.Subject{Kind: customs.Transit, ID: id} }}
		for i := 0; i < 4+r.Intn(8); i++ {
			c := kinds[r.Intn(len(kinds))](fmt.Sprintf("C%d", i))
			conts = append(conts, c)
		}
		all = append(all, conts...)
		for i := 0; i < 2+r.Intn(6); i++ {
			all = append(all, P(fmt.Sprintf("RR%09dCN", i)))
		}
		var orders []customs.Order
		seq := uint64(0)
		next := func() uint64 { seq++; return seq }
		for i := 0; i < 10+r.Intn(40); i++ {
			s := all[r.Intn(len(all))]
			switch k := r.Intn(10); {
			case k < 4:
				c := conts[r.Intn(len(conts))]
				kid := all[r.Intn(len(all))]
				if kid == c {
					continue
				}
				if r.Intn(5) == 0 {
					orders = append(orders, unlink(next(), c, kid))
				} else {
					orders = append(orders, link(next(), c, kid))
				}
			case k < 6:
				if r.Intn(3) == 0 {
					orders = append(orders, relExp(next(), s, now.Add(time.Duration(r.Intn(3)-1)*time.Hour)))
				} else {
					orders = append(orders, rel(next(), s))
				}
			case k < 7:
				orders = append(orders, revoke(next(), s))
			case k < 8:
				orders = append(orders, hold(next(), s, fmt.Sprint("H", r.Intn(2)), "inspection"))
			case k < 9:
				orders = append(orders, unhold(next(), s, fmt.Sprint("H", r.Intn(2))))
			default:
				if r.Intn(4) == 0 {
					orders = append(orders, cancel(next(), s))
				}
			}
		}
		// Applied in a shuffled order: by seq, never by arrival.
		shuffled := append([]customs.Order(nil), orders...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		v := NewMemView(shuffled...)
		o := &revOracle{orders: orders, now: now}
		for _, s := range all {
			got := Decide(v, s, now)
			want := o.decide(s)
			switch {
			case got.Pass && !want:
				falsePass++
				if falsePass <= 3 {
					t.Errorf("false PASS of %v (reason %q, chain %+v); orders:", s, got.Reason, got.Chain)
					for _, x := range orders {
						t.Logf("  %d %s %v %v exp=%v hold=%s", x.Seq, x.Action, x.Subject, x.Children, x.ExpiresAt, x.HoldID)
					}
				}
			case !got.Pass && want:
				falseStop++
				if falseStop <= 3 {
					t.Logf("STOP where the oracle passes: %v %q", s, got.Reason)
				}
			}
		}
	}
	t.Logf("%d rounds: %d false PASS, %d STOP where the oracle passes", rounds, falsePass, falseStop)
}

// TestReview_Corners: attacks of the review that found the code right,
// kept as regressions.
func TestReview_Corners(t *testing.T) {
	p, q := P("RR000000001CN"), P("RR000000002CN")
	b1, b2, b3 := B("BAG1"), B("BAG2"), B("BAG3")
	u1 := U("AKE12345MU")
	for _, tc := range []struct {
		name   string
		orders []customs.Order
		subj   customs.Subject
		reason string // "" : PASS
	}{
		{"expires_at exactly now", []customs.Order{relExp(1, p, now)}, p, "expired"},
		{"an expired release of higher seq after a live one", []customs.Order{relExp(2, p, now.Add(-time.Hour)), rel(1, p)}, p, "expired"},
		{"unhold of higher seq before its hold", []customs.Order{rel(1, p), unhold(3, p, "H"), hold(2, p, "H", "detention")}, p, ""},
		{"hold_id reused on another subject", []customs.Order{rel(1, p), rel(2, q), hold(3, p, "H", "detention"), unhold(4, q, "H")}, p, "held:detention"},
		{"revoked parent at the same distance as a released one", []customs.Order{rel(1, b1), revoke(2, b2), link(3, b1, p), link(4, b2, p)}, p, "revoked"},
		{"the same, the bag scanned", []customs.Order{rel(1, b1), revoke(2, b2), link(3, b1, p), link(4, b2, p)}, b1, "contents"},
		{"held grandchild through a second parent", []customs.Order{rel(1, u1), link(2, u1, b1), link(3, b1, p), link(4, b2, p), hold(5, b2, "H", "do_not_load")}, u1, "contents"},
		{"parcel in a loop two levels up", []customs.Order{rel(1, p), link(2, b1, p), link(3, b2, b1), link(4, b1, b2)}, p, "error"},
		{"cancel of low seq after a release of high seq", []customs.Order{rel(5, p), cancel(1, p)}, p, "cancelled"},
		{"container in container of mixed kinds, held at the bottom", []customs.Order{rel(1, u1), link(2, u1, A("78412345675")), link(3, A("78412345675"), b3), link(4, b3, p), hold(5, p, "H", "x")}, u1, "contents"},
	} {
		v := NewMemView(tc.orders...)
		d := Decide(v, tc.subj, now)
		if tc.reason == "" && !d.Pass || tc.reason != "" && (d.Pass || d.Reason != tc.reason) {
			t.Errorf("%s: %s %q, want %q", tc.name, d.Verdict(), d.Reason, tc.reason)
		}
		if want := (&revOracle{orders: tc.orders, now: now}).decide(tc.subj); want != d.Pass {
			t.Errorf("%s: the oracle says pass=%v", tc.name, want)
		}
	}
}
