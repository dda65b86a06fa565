package rules

import (
	"slices"
	"strings"

	"github.com/cargogate/cargogate/gateway/customs"
)

// MemView is a View over orders combined in memory: orders are combined with State.Apply
// and LinkState.ApplyLink exactly as the store combines them (the container's
// Children count moves when ApplyLink reports a change, and a linked child
// gets a state of its own). Parents and Children are returned sorted, so a
// decision never depends on the order the orders were applied in.
type MemView struct {
	states map[customs.Subject]*State
	down   map[customs.Subject]map[customs.Subject]*LinkState
	up     map[customs.Subject]map[customs.Subject]*LinkState
}

var _ View = (*MemView)(nil)

// NewMemView combines orders in the order given.
func NewMemView(orders ...customs.Order) *MemView {
	v := &MemView{
		states: map[customs.Subject]*State{},
		down:   map[customs.Subject]map[customs.Subject]*LinkState{},
		up:     map[customs.Subject]map[customs.Subject]*LinkState{},
	}
	for i := range orders {
		v.Apply(&orders[i])
	}
	return v
}

func (v *MemView) state(s customs.Subject) *State {
	st, ok := v.states[s]
	if !ok {
		st = &State{}
		v.states[s] = st
	}
	return st
}

// Apply combines one more order.
func (v *MemView) Apply(o *customs.Order) {
	st := v.state(o.Subject)
	st.Apply(o)
	if o.Action != customs.Link && o.Action != customs.Unlink {
		return
	}
	for _, c := range o.Children {
		if v.down[o.Subject] == nil {
			v.down[o.Subject] = map[customs.Subject]*LinkState{}
		}
		l := v.down[o.Subject][c]
		if l == nil {
			l = &LinkState{}
			v.down[o.Subject][c] = l
			if v.up[c] == nil {
				v.up[c] = map[customs.Subject]*LinkState{}
			}
			v.up[c][o.Subject] = l
		}
		was := l.Linked
		cst := v.state(c)
		if l.ApplyLink(o.Seq, o.Action == customs.Link) {
			if was {
				st.Children--
				cst.Parents--
			} else {
				st.Children++
				cst.Parents++
			}
		}
		if o.Seq > cst.LastSeq {
			cst.LastSeq = o.Seq
		}
	}
}

func (v *MemView) State(s customs.Subject) (*State, error) { return v.states[s], nil }

func linked(m map[customs.Subject]*LinkState) []customs.Subject {
	var out []customs.Subject
	for s, l := range m {
		if l.Linked {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b customs.Subject) int { return strings.Compare(a.String(), b.String()) })
	return out
}

func (v *MemView) Parents(s customs.Subject) ([]customs.Subject, error) { return linked(v.up[s]), nil }
func (v *MemView) Children(s customs.Subject) ([]customs.Subject, error) {
	return linked(v.down[s]), nil
}
