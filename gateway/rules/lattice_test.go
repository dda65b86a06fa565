package rules

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/cargogate/cargogate/gateway/customs"
)

// randomGraphOrders returns orders over nc containers and np parcels with
// dense links: diamonds, several containers per parcel, chains past
// MaxDepth now and then, loops now and then.
func randomGraphOrders(r *rand.Rand, nc, np int) ([]customs.Order, []customs.Subject) {
	var cs, ps []customs.Subject
	for i := 0; i < nc; i++ {
		cs = append(cs, B(fmt.Sprintf("C%d", i)))
	}
	for i := 0; i < np; i++ {
		ps = append(ps, P(fmt.Sprintf("P%d", i)))
	}
	var orders []customs.Order
	seq := uint64(0)
	next := func() uint64 { seq += uint64(r.Intn(3) + 1); return seq }
	// Containers in rank order: links go mostly from a lower rank to a
	// higher one (a DAG), and with loops on, now and then back.
	loops := r.Intn(4) == 0
	for i, c := range cs {
		var kids []customs.Subject
		for j := i + 1; j < nc; j++ {
			if r.Intn(3) == 0 {
				kids = append(kids, cs[j])
			}
		}
		if loops && i > 0 && r.Intn(4) == 0 {
			kids = append(kids, cs[r.Intn(i)])
		}
		for _, p := range ps {
			if r.Intn(4) == 0 {
				kids = append(kids, p)
			}
		}
		if len(kids) > 0 {
			orders = append(orders, link(next(), c, kids...))
		}
	}
	all := append(append([]customs.Subject(nil), cs...), ps...)
	for _, s := range all {
		switch r.Intn(8) {
		case 0, 1, 2:
			orders = append(orders, rel(next(), s))
		case 3:
			orders = append(orders, revoke(next(), s))
		case 4:
			orders = append(orders, relExp(next(), s, now.Add(-1)))
		}
		if r.Intn(6) == 0 {
			orders = append(orders, hold(next(), s, "H1", customs.HoldReasons[r.Intn(len(customs.HoldReasons))]))
		}
		if r.Intn(15) == 0 {
			orders = append(orders, cancel(next(), s))
		}
	}
	// Some links taken out again.
	for i := 0; i < 2; i++ {
		if r.Intn(2) == 0 {
			orders = append(orders, unlink(next(), cs[r.Intn(nc)], all[r.Intn(len(all))]))
		}
	}
	r.Shuffle(len(orders), func(i, j int) { orders[i], orders[j] = orders[j], orders[i] })
	return orders, all
}

// TestDecideMatchesLegacy checks that the memoised decision is the very
// decision the plain walk (which follows every way up and down again)
// makes, on dense random graphs: every field, chains included.
func TestDecideMatchesLegacy(t *testing.T) {
	seed, cases := propSeed(t)
	counts := map[string]int{}
	for i := 0; i < cases; i++ {
		caseSeed := seed + int64(i)
		r := rand.New(rand.NewSource(caseSeed))
		orders, all := randomGraphOrders(r, r.Intn(8)+2, r.Intn(6)+1)
		v := NewMemView(orders...)
		for _, s := range all {
			want := legacyDecide(v, s, now)
			got := Decide(v, s, now)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d (rerun: CARGOGATE_PROP_SEED=%d CARGOGATE_PROP_CASES=1): %v decided\n%+v\nwas\n%+v\norders: %+v", caseSeed, caseSeed, s, got, want, orders)
			}
			counts[want.Reason]++
			if want.Items > 0 {
				if distinct := len(closure(newOracle(orders).down, s)); want.Items > distinct {
					counts["diamond below"]++
				}
			}
		}
	}
	t.Logf("%d cases from seed %d: %v", cases, seed, counts)
	for _, k := range []string{"released", "contents", "error", "revoked", "cancelled", "diamond below"} {
		if counts[k] == 0 {
			t.Errorf("the generator made no decision %q", k)
		}
	}
}

// lattice is k containers on each of levels 0 to 3 and k parcels on level
// 4, every subject linked into every subject of the level above: k^4 ways
// down from a top container and k^4 ways up from a parcel, all within
// MaxDepth. Every subject is released.
type lattice struct {
	levels [][]customs.Subject
	parent map[customs.Subject][]customs.Subject
	child  map[customs.Subject][]customs.Subject
	states map[customs.Subject]*State
}

func newLattice(k int) *lattice {
	l := &lattice{parent: map[customs.Subject][]customs.Subject{}, child: map[customs.Subject][]customs.Subject{},
		states: map[customs.Subject]*State{}}
	seq := uint64(0)
	for lv := 0; lv <= 4; lv++ {
		var level []customs.Subject
		for i := 0; i < k; i++ {
			s := B(fmt.Sprintf("L%dC%03d", lv, i))
			if lv == 4 {
				s = P(fmt.Sprintf("L%dP%03d", lv, i))
			}
			seq++
			st := &State{RelSeq: seq, RelFlag: RelRelease, LastSeq: seq}
			if lv > 0 {
				st.Parents = uint32(k)
			}
			if lv < 4 {
				st.Children = uint32(k)
			}
			l.states[s] = st
			level = append(level, s)
		}
		l.levels = append(l.levels, level)
	}
	for lv := 1; lv <= 4; lv++ {
		for _, c := range l.levels[lv] {
			for _, p := range l.levels[lv-1] {
				l.parent[c] = append(l.parent[c], p)
				l.child[p] = append(l.child[p], c)
			}
		}
	}
	return l
}

func (l *lattice) State(s customs.Subject) (*State, error) { return l.states[s], nil }
func (l *lattice) Parents(s customs.Subject) ([]customs.Subject, error) {
	return l.parent[s], nil
}
func (l *lattice) Children(s customs.Subject) ([]customs.Subject, error) {
	return l.child[s], nil
}

var _ View = (*lattice)(nil)

// countingView counts the reads a decision makes.
type countingView struct {
	View
	reads int
}

func (c *countingView) State(s customs.Subject) (*State, error) {
	c.reads++
	return c.View.State(s)
}

func (c *countingView) Parents(s customs.Subject) ([]customs.Subject, error) {
	c.reads++
	return c.View.Parents(s)
}

func (c *countingView) Children(s customs.Subject) ([]customs.Subject, error) {
	c.reads++
	return c.View.Children(s)
}

// TestDecideLatticeReadsLinear decides the top and the bottom of a dense
// lattice and counts the reads: at most three per subject (its state, its
// parents, its children), not one per way through the lattice.
func TestDecideLatticeReadsLinear(t *testing.T) {
	for _, k := range []int{3, 6, 10} {
		l := newLattice(k)
		subjects := 5 * k
		ways := k * (1 + k*(1+k*(1+k))) // items below a top container, one per way down
		for _, tc := range []struct {
			name  string
			s     customs.Subject
			items int
		}{
			{"top", l.levels[0][0], ways},
			{"bottom", l.levels[4][0], 0},
			{"middle", l.levels[2][0], k * (1 + k)},
		} {
			t.Run(fmt.Sprintf("k=%d/%s", k, tc.name), func(t *testing.T) {
				v := &countingView{View: l}
				d := Decide(v, tc.s, now)
				if !d.Pass || d.Reason != customs.ReasonReleased || d.Items != tc.items {
					t.Fatalf("%s %q items %d, want pass released items %d; chain %+v", d.Verdict(), d.Reason, d.Items, tc.items, d.Chain)
				}
				if v.reads > 3*subjects {
					t.Fatalf("%d reads for a lattice of %d subjects", v.reads, subjects)
				}
				t.Logf("%d reads, %d subjects", v.reads, subjects)
			})
		}
	}
}

// BenchmarkDecideLattice decides the top container (its contents: k^4 ways
// down) and a bottom parcel (its ancestry: k^4 ways up) of a lattice of
// 5 levels of k subjects, fully linked level to level: 4k^2 links.
func BenchmarkDecideLattice(b *testing.B) {
	for _, k := range []int{50, 100} {
		l := newLattice(k)
		for _, tc := range []struct {
			name string
			s    customs.Subject
		}{{"top", l.levels[0][0]}, {"bottom", l.levels[4][0]}} {
			b.Run(fmt.Sprintf("k=%d/%s", k, tc.name), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if d := Decide(l, tc.s, now); !d.Pass {
						b.Fatalf("%s %q", d.Verdict(), d.Reason)
					}
				}
			})
		}
	}
}

// TestDecideLongestWay: depth is the longest way through the links, not
// the shortest: a subject 1 level from another one way and 5 levels
// another way is too deep, looking up from the bottom and down from the
// top; with 4 levels the long way it is not.
func TestDecideLongestWay(t *testing.T) {
	p, a := P("RR000000001CN"), A("78412345675")
	c := []customs.Subject{B("C1"), B("C2"), B("C3"), B("C4")}
	for _, tc := range []struct {
		name  string
		chain []customs.Subject // between p and a on the long way
		pass  bool
	}{
		{"5 levels the long way", c, false},
		{"4 levels the long way", c[:3], true},
	} {
		orders := []customs.Order{rel(1, a), link(2, a, p)}
		below := p
		for i, x := range tc.chain {
			orders = append(orders, link(uint64(3+i), x, below))
			below = x
		}
		orders = append(orders, link(10, a, below))
		v := NewMemView(orders...)
		for _, s := range []customs.Subject{p, a} {
			d := Decide(v, s, now)
			if d.Pass != tc.pass || !tc.pass && d.Reason != customs.ReasonError {
				t.Errorf("%s: %v decided %s %q", tc.name, s, d.Verdict(), d.Reason)
			}
			if want := legacyDecide(v, s, now); !reflect.DeepEqual(d, want) {
				t.Errorf("%s: %v decided %+v, the plain walk %+v", tc.name, s, d, want)
			}
		}
	}
}
