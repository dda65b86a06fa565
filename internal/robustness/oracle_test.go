package robustness

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// The oracle: PROTOCOL §4 (with amendment 1) read directly off the list of
// orders the gateway was given. It shares no code with gateway/rules or
// gateway/store: it keeps the orders as a plain list and, for every
// question, scans that list again. Plain and slow on purpose.

// mOrder is an order as the model holds it: already read the way amendment 2
// says (cosmetic fields dropped, an unlisted hold reason read as "other").
type mOrder struct {
	Seq      uint64
	Action   string
	Subject  customs.Subject
	HoldID   string
	Reason   string
	Expires  time.Time // zero: no expiry
	Children []customs.Subject
}

func (o mOrder) String() string {
	s := fmt.Sprintf("#%d %s %s", o.Seq, o.Action, o.Subject)
	switch o.Action {
	case "hold":
		s += fmt.Sprintf(" id=%s reason=%s", o.HoldID, o.Reason)
	case "unhold":
		s += " id=" + o.HoldID
	case "release":
		if !o.Expires.IsZero() {
			s += " until " + o.Expires.UTC().Format(time.RFC3339)
		}
	case "link", "unlink":
		var c []string
		for _, k := range o.Children {
			c = append(c, k.String())
		}
		s += " [" + strings.Join(c, " ") + "]"
	}
	return s
}

// verdict is the oracle's answer: pass, and the reasons a STOP may give
// (more than one where §4 leaves the choice open).
type verdict struct {
	Pass    bool
	Reasons []string
	Why     string
}

func (v verdict) allows(reason string) bool {
	for _, r := range v.Reasons {
		if r == reason {
			return true
		}
	}
	return false
}

// oracle answers for one set of orders. The orders are only grouped by
// subject and by child, so that each question reads a short list.
type oracle struct {
	bySubj  map[customs.Subject][]mOrder
	byChild map[customs.Subject][]mOrder // link and unlink orders naming the child
}

func newOracle(orders []mOrder) *oracle {
	o := &oracle{bySubj: map[customs.Subject][]mOrder{}, byChild: map[customs.Subject][]mOrder{}}
	for _, x := range orders {
		o.bySubj[x.Subject] = append(o.bySubj[x.Subject], x)
		for _, c := range x.Children {
			o.byChild[c] = append(o.byChild[c], x)
		}
	}
	return o
}

const maxLevels = 4 // §4: links are followed at most 4 levels up and down

// latest returns the order with the highest seq among those that match.
func latest(list []mOrder, match func(mOrder) bool) (mOrder, bool) {
	var best mOrder
	found := false
	for _, x := range list {
		if match(x) && (!found || x.Seq > best.Seq) {
			best, found = x, true
		}
	}
	return best, found
}

func has(list []customs.Subject, s customs.Subject) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// linked reports whether child is linked into container: the link/unlink
// of that pair with the highest seq is a link.
func (o *oracle) linked(container, child customs.Subject) bool {
	x, ok := latest(o.byChild[child], func(x mOrder) bool {
		return (x.Action == "link" || x.Action == "unlink") && x.Subject == container && has(x.Children, child)
	})
	return ok && x.Action == "link"
}

// parents lists the containers s is linked into.
func (o *oracle) parents(s customs.Subject) []customs.Subject {
	var cands []customs.Subject
	for _, x := range o.byChild[s] {
		if x.Action == "link" && has(x.Children, s) && !has(cands, x.Subject) {
			cands = append(cands, x.Subject)
		}
	}
	var out []customs.Subject
	for _, c := range cands {
		if o.linked(c, s) {
			out = append(out, c)
		}
	}
	return out
}

// children lists the subjects linked into s.
func (o *oracle) children(s customs.Subject) []customs.Subject {
	var cands []customs.Subject
	for _, x := range o.bySubj[s] {
		if x.Action == "link" && x.Subject == s {
			for _, c := range x.Children {
				if !has(cands, c) {
					cands = append(cands, c)
				}
			}
		}
	}
	var out []customs.Subject
	for _, c := range cands {
		if o.linked(s, c) {
			out = append(out, c)
		}
	}
	return out
}

func (o *oracle) cancelled(s customs.Subject) bool {
	for _, x := range o.bySubj[s] {
		if x.Action == "cancel" && x.Subject == s {
			return true
		}
	}
	return false
}

// activeHolds returns the active holds on s: for each hold_id, the
// hold/unhold with the highest seq, if it is a hold.
func (o *oracle) activeHolds(s customs.Subject) []mOrder {
	ids := map[string]bool{}
	for _, x := range o.bySubj[s] {
		if (x.Action == "hold" || x.Action == "unhold") && x.Subject == s {
			ids[x.HoldID] = true
		}
	}
	var out []mOrder
	for id := range ids {
		x, _ := latest(o.bySubj[s], func(x mOrder) bool {
			return (x.Action == "hold" || x.Action == "unhold") && x.Subject == s && x.HoldID == id
		})
		if x.Action == "hold" {
			out = append(out, x)
		}
	}
	return out
}

// releaseOrder returns the release/revoke with the highest seq on s.
func (o *oracle) releaseOrder(s customs.Subject) (mOrder, bool) {
	return latest(o.bySubj[s], func(x mOrder) bool {
		return (x.Action == "release" || x.Action == "revoke") && x.Subject == s
	})
}

// tooDeep reports whether a path of links longer than maxLevels, or a
// loop, leads from s in the direction next goes.
func tooDeep(s customs.Subject, next func(customs.Subject) []customs.Subject) bool {
	var walk func(x customs.Subject, d int) bool
	walk = func(x customs.Subject, d int) bool {
		for _, n := range next(x) {
			if d+1 > maxLevels || walk(n, d+1) {
				return true
			}
		}
		return false
	}
	return walk(s, 0)
}

// ancestors returns s's ancestors with their distance: the fewest links
// from s up to them.
func (o *oracle) ancestors(s customs.Subject) map[customs.Subject]int {
	dist := map[customs.Subject]int{}
	frontier := []customs.Subject{s}
	for d := 1; len(frontier) > 0 && d <= maxLevels; d++ {
		var next []customs.Subject
		for _, x := range frontier {
			for _, p := range o.parents(x) {
				if _, seen := dist[p]; seen || p == s {
					continue
				}
				dist[p] = d
				next = append(next, p)
			}
		}
		frontier = next
	}
	return dist
}

// decide decides a scan of s at now by §4.
func (o *oracle) decide(s customs.Subject, now time.Time) verdict {
	return o.decideAt(s, now, 0)
}

// decideAt decides s found level links below the scanned subject.
func (o *oracle) decideAt(s customs.Subject, now time.Time, level int) verdict {
	stop := func(why string, reasons ...string) verdict { return verdict{Reasons: reasons, Why: why} }
	if tooDeep(s, o.parents) {
		return stop(s.String()+": ancestry deeper than 4 levels or looping", customs.ReasonError)
	}
	anc := o.ancestors(s)
	family := []customs.Subject{s}
	for a := range anc {
		family = append(family, a)
	}
	sort.Slice(family, func(i, j int) bool { return family[i].String() < family[j].String() })
	// Rule 1.
	for _, x := range family {
		if o.cancelled(x) {
			return stop(x.String()+" cancelled", customs.ReasonCancelled)
		}
	}
	var lowest *mOrder
	for _, x := range family {
		for _, h := range o.activeHolds(x) {
			if lowest == nil || h.Seq < lowest.Seq {
				h := h
				lowest = &h
			}
		}
	}
	if lowest != nil {
		return stop("hold "+lowest.String(), customs.ReasonHeldPrefix+lowest.Reason)
	}
	// Rule 2.
	if kids := o.children(s); len(kids) > 0 {
		if level == 0 && tooDeep(s, o.children) {
			// (A content item that stops for another reason may hide the
			// depth: contents is as good a STOP.)
			return stop(s.String()+": contents deeper than 4 levels or looping", customs.ReasonError, customs.ReasonContents)
		}
		if level >= maxLevels {
			return stop(s.String()+": contents deeper than 4 levels", customs.ReasonError)
		}
		for _, c := range kids {
			if v := o.decideAt(c, now, level+1); !v.Pass {
				// A content item that stops: the container stops on its
				// contents (or with error, for a structure too deep).
				return stop("content "+c.String()+" stops: "+v.Why, customs.ReasonContents, customs.ReasonError)
			}
		}
		return verdict{Pass: true, Reasons: []string{customs.ReasonReleased}, Why: "every content item passes"}
	}
	// Rules 3 and 4 (amendment 1): the nearest release/revoke governs; at
	// equal distance every one must be a live release.
	governing := []customs.Subject{}
	if _, ok := o.releaseOrder(s); ok {
		governing = append(governing, s)
	} else {
		best := maxLevels + 1
		for a, d := range anc {
			if _, ok := o.releaseOrder(a); ok && d < best {
				best = d
			}
		}
		for a, d := range anc {
			if _, ok := o.releaseOrder(a); ok && d == best {
				governing = append(governing, a)
			}
		}
	}
	if len(governing) == 0 {
		return stop("no release on "+s.String()+" or above", customs.ReasonUnknown)
	}
	var reasons []string
	why := ""
	for _, g := range governing {
		r, _ := o.releaseOrder(g)
		switch {
		case r.Action == "revoke":
			reasons = append(reasons, customs.ReasonRevoked)
			why += " " + r.String()
		case !r.Expires.IsZero() && !now.Before(r.Expires):
			reasons = append(reasons, customs.ReasonExpired)
			why += " " + r.String() + " expired"
		}
	}
	if len(reasons) > 0 {
		return stop("governed by"+why, reasons...)
	}
	r, _ := o.releaseOrder(governing[0])
	return verdict{Pass: true, Reasons: []string{customs.ReasonReleased}, Why: "released by " + r.String()}
}
