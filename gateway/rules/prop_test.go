package rules

import (
	"fmt"
	"math/rand"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// The property test's universe: 5 parcels, 2 bags, 1 ULD, 1 AWB.
var (
	propParcels    = []customs.Subject{P("P1"), P("P2"), P("P3"), P("P4"), P("P5")}
	propContainers = []customs.Subject{B("B1"), B("B2"), U("U1"), A("A1")}
	propUniverse   = append(append([]customs.Subject(nil), propParcels...), propContainers...)
)

// propSeed is the base seed; case i uses propSeed+i. Set CARGOGATE_PROP_SEED
// to explore other sequences, CARGOGATE_PROP_CASES for more cases.
func propSeed(t *testing.T) (int64, int) {
	seed, cases := int64(20261128), 1000
	if s := os.Getenv("CARGOGATE_PROP_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("CARGOGATE_PROP_SEED: %v", err)
		}
		seed = v
	}
	if s := os.Getenv("CARGOGATE_PROP_CASES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("CARGOGATE_PROP_CASES: %v", err)
		}
		cases = v
	}
	return seed, cases
}

// randomOrders returns n orders with distinct seqs drawn from 1..3n (so
// there are gaps), in seq order.
func randomOrders(r *rand.Rand, n int) []customs.Order {
	seqs := r.Perm(3 * n)[:n]
	for i := range seqs {
		seqs[i]++
	}
	slices.Sort(seqs)
	pick := func(from []customs.Subject) customs.Subject { return from[r.Intn(len(from))] }
	holdIDs := []string{"H1", "H2"}
	out := make([]customs.Order, 0, n)
	for _, seq := range seqs {
		o := customs.Order{Seq: uint64(seq)}
		switch k := r.Intn(100); {
		case k < 30:
			o.Action, o.Subject = customs.Release, pick(propUniverse)
			switch r.Intn(4) {
			case 0:
				o.ExpiresAt = now.Add(-time.Duration(r.Intn(3600)+1) * time.Second)
			case 1:
				o.ExpiresAt = now.Add(time.Duration(r.Intn(3600)+1) * time.Second)
			case 2:
				o.ExpiresAt = now // expired: now ≥ expires_at
			}
		case k < 40:
			o.Action, o.Subject = customs.Revoke, pick(propUniverse)
		case k < 52:
			o.Action, o.Subject = customs.Hold, pick(propUniverse)
			o.HoldID, o.Reason = holdIDs[r.Intn(2)], customs.HoldReasons[r.Intn(len(customs.HoldReasons))]
		case k < 64:
			o.Action, o.Subject = customs.Unhold, pick(propUniverse)
			o.HoldID = holdIDs[r.Intn(2)]
		case k < 67:
			o.Action, o.Subject = customs.Cancel, pick(propUniverse)
		case k < 88:
			o.Action, o.Subject = customs.Link, pick(propContainers)
		default:
			o.Action, o.Subject = customs.Unlink, pick(propContainers)
		}
		if o.Action == customs.Link || o.Action == customs.Unlink {
			// Mostly parcels into containers; now and then a container into
			// another, which makes deep chains and loops possible.
			for m := r.Intn(3) + 1; len(o.Children) < m; {
				var c customs.Subject
				if r.Intn(4) == 0 {
					c = pick(propContainers)
				} else {
					c = pick(propParcels)
				}
				if c != o.Subject {
					o.Children = append(o.Children, c)
				}
			}
		}
		out = append(out, o)
	}
	return out
}

func decideAll(orders []customs.Order) map[customs.Subject]Decision {
	v := NewMemView(orders...)
	out := map[customs.Subject]Decision{}
	for _, s := range propUniverse {
		out[s] = Decide(v, s, now)
	}
	return out
}

// oracle is computed from the orders list alone, without State or Decide.
type oracle struct {
	released map[customs.Subject]bool // some release order exists on it
	blocked  map[customs.Subject]bool // cancelled, or an active hold
	// ownLive: the subject has release/revoke orders of its own and the
	// highest-seq one is a release not expired at now (false when it has
	// none: see ownAny).
	ownAny, ownLive map[customs.Subject]bool
	down, up        map[customs.Subject][]customs.Subject
}

func newOracle(orders []customs.Order) *oracle {
	o := &oracle{released: map[customs.Subject]bool{}, blocked: map[customs.Subject]bool{},
		ownAny: map[customs.Subject]bool{}, ownLive: map[customs.Subject]bool{},
		down: map[customs.Subject][]customs.Subject{}, up: map[customs.Subject][]customs.Subject{}}
	type holdKey struct {
		s  customs.Subject
		id string
	}
	type pair struct{ p, c customs.Subject }
	holdSeq, linkSeq := map[holdKey]uint64{}, map[pair]uint64{}
	holdOn, linkOn := map[holdKey]bool{}, map[pair]bool{}
	relSeq := map[customs.Subject]uint64{}
	for _, x := range orders {
		switch x.Action {
		case customs.Release, customs.Revoke:
			if x.Action == customs.Release {
				o.released[x.Subject] = true
			}
			o.ownAny[x.Subject] = true
			if x.Seq > relSeq[x.Subject] {
				relSeq[x.Subject] = x.Seq
				o.ownLive[x.Subject] = x.Action == customs.Release && (x.ExpiresAt.IsZero() || now.Before(x.ExpiresAt))
			}
		case customs.Cancel:
			o.blocked[x.Subject] = true
		case customs.Hold, customs.Unhold:
			k := holdKey{x.Subject, x.HoldID}
			if x.Seq > holdSeq[k] {
				holdSeq[k], holdOn[k] = x.Seq, x.Action == customs.Hold
			}
		case customs.Link, customs.Unlink:
			for _, c := range x.Children {
				k := pair{x.Subject, c}
				if x.Seq > linkSeq[k] {
					linkSeq[k], linkOn[k] = x.Seq, x.Action == customs.Link
				}
			}
		}
	}
	for k, on := range holdOn {
		if on {
			o.blocked[k.s] = true
		}
	}
	for k, on := range linkOn {
		if on {
			o.down[k.p] = append(o.down[k.p], k.c)
			o.up[k.c] = append(o.up[k.c], k.p)
		}
	}
	return o
}

// closure returns every subject reachable from s through g, s excluded
// (unless on a loop), without any depth bound.
func closure(g map[customs.Subject][]customs.Subject, s customs.Subject) []customs.Subject {
	seen := map[customs.Subject]bool{}
	var out []customs.Subject
	stack := []customs.Subject{s}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, y := range g[x] {
			if !seen[y] {
				seen[y] = true
				out = append(out, y)
				stack = append(stack, y)
			}
		}
	}
	return out
}

// checkPass returns why a PASS of s contradicts the orders, or "".
func (o *oracle) checkPass(s customs.Subject) string {
	anc := closure(o.up, s)
	for _, x := range append([]customs.Subject{s}, anc...) {
		if o.blocked[x] {
			return fmt.Sprintf("%v is held or cancelled", x)
		}
	}
	relOnChain := func(x customs.Subject) bool {
		if o.released[x] {
			return true
		}
		for _, a := range closure(o.up, x) {
			if o.released[a] {
				return true
			}
		}
		return false
	}
	if len(o.down[s]) == 0 {
		if !relOnChain(s) {
			return "no release on it or any ancestor"
		}
		if o.ownAny[s] && !o.ownLive[s] {
			return "its own latest release/revoke is a revoke or expired"
		}
		return ""
	}
	for _, x := range closure(o.down, s) {
		if o.blocked[x] {
			return fmt.Sprintf("content %v is held or cancelled", x)
		}
		if len(o.down[x]) == 0 {
			if !relOnChain(x) {
				return fmt.Sprintf("content %v has no release on it or any container", x)
			}
			if o.ownAny[x] && !o.ownLive[x] {
				return fmt.Sprintf("content %v: its own latest release/revoke is a revoke or expired", x)
			}
		}
	}
	return ""
}

func TestDecideProperties(t *testing.T) {
	seed, cases := propSeed(t)
	passes, stops := 0, 0
	for i := 0; i < cases; i++ {
		caseSeed := seed + int64(i)
		r := rand.New(rand.NewSource(caseSeed))
		fail := func(format string, a ...any) {
			t.Helper()
			t.Fatalf("seed %d (rerun: CARGOGATE_PROP_SEED=%d CARGOGATE_PROP_CASES=1): %s", caseSeed, caseSeed, fmt.Sprintf(format, a...))
		}
		orders := randomOrders(r, r.Intn(30)+1)

		// (a) in seq order.
		want := decideAll(orders)

		// (b) shuffled.
		shuffled := append([]customs.Order(nil), orders...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })

		// (c) shuffled, with duplicates and replays of ranges mixed in.
		var replayed []customs.Order
		for _, o := range shuffled {
			replayed = append(replayed, o)
			if r.Intn(4) == 0 {
				replayed = append(replayed, o)
			}
			if r.Intn(10) == 0 {
				from := r.Intn(len(orders))
				replayed = append(replayed, orders[from:from+r.Intn(len(orders)-from)+1]...)
			}
		}
		replayed = append(replayed, orders...) // a full resync at the end

		for name, seq := range map[string][]customs.Order{"shuffled": shuffled, "replayed": replayed} {
			got := decideAll(seq)
			for _, s := range propUniverse {
				if !reflect.DeepEqual(got[s], want[s]) {
					fail("%s: %v decided %+v, in seq order %+v\norders: %+v", name, s, got[s], want[s], orders)
				}
			}
		}

		o := newOracle(orders)
		for _, s := range propUniverse {
			d := want[s]
			if !d.Pass {
				stops++
				if d.Reason == "" {
					fail("%v: stop without a reason", s)
				}
				continue
			}
			passes++
			if d.Reason != customs.ReasonReleased {
				fail("%v: pass with reason %q", s, d.Reason)
			}
			if why := o.checkPass(s); why != "" {
				fail("%v passes but %s\ndecision: %+v\norders: %+v", s, why, d, orders)
			}
		}
	}
	t.Logf("%d cases from seed %d: %d decisions pass, %d stop", cases, seed, passes, stops)
	if passes == 0 || stops == 0 {
		t.Fatalf("the generator is degenerate: %d passes, %d stops", passes, stops)
	}
}
