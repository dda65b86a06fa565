package rules

import (
	"fmt"

	"github.com/cargogate/cargogate/gateway/customs"
)

// decideContents applies rule 2: a container passes only if every subject
// below it passes. A child inherits the releases above it; its own holds
// and cancels, and those of its own contents, count. A subject reached by
// several ways down is counted, and judged, once for each way, as if each
// way were walked.
func (r *reader) decideContents(top *node, anc *ancSummary) Decision {
	s := top.s
	inherited, hasInherited := effectiveRelease(anc.releases(), r.now)
	// Below s, s and its ancestors are a loop: exactly the subjects that
	// summarising s has summarised.
	r.onPath = map[customs.Subject]bool{}
	for _, n := range r.nodes {
		if n.anc != nil {
			r.onPath[n.s] = true
		}
	}
	var inh *Decision
	if hasInherited {
		inh = &inherited
	}
	c, err := r.walk(top, inh, 1, anc.height)
	if err != nil {
		return stopError(s, err)
	}
	res := Decision{Pass: c.blocked == 0, Reason: customs.ReasonReleased, BasisSeq: c.basis, Items: c.items}
	for i, b := range c.blocking {
		res.Blocking = append(res.Blocking, b)
		res.Chain = append(res.Chain, c.chains[i]...)
	}
	if res.Pass {
		res.Chain = append([]Step{{Subject: s, What: fmt.Sprintf("all %d items below pass", res.Items)}}, res.Chain...)
	} else {
		res.Reason = customs.ReasonContents
		res.Chain = append([]Step{{Subject: s, What: fmt.Sprintf("%d of %d items below do not pass", c.blocked, res.Items)}}, res.Chain...)
	}
	return res
}

// walkedWith is the contents below a container walked with the release it
// inherits.
type walkedWith struct {
	inh *Decision
	c   *contents
}

// contents is the outcome of walking below one container.
type contents struct {
	items, blocked int
	basis          uint64
	blocking       []Blocked // the first MaxBlocking that stop it
	chains         [][]Step  // and why
	height         int       // the longest chain of walked containers below it
}

func (c *contents) block(s customs.Subject, d Decision) {
	c.basis = max(c.basis, d.BasisSeq)
	c.blocked++
	if len(c.blocking) < MaxBlocking {
		c.blocking = append(c.blocking, Blocked{Subject: s, Reason: d.Reason})
		c.chains = append(c.chains, d.Chain)
	}
}

func (c *contents) add(sub *contents) {
	c.items += sub.items
	c.blocked += sub.blocked
	c.basis = max(c.basis, sub.basis)
	for i := 0; i < len(sub.blocking) && len(c.blocking) < MaxBlocking; i++ {
		c.blocking = append(c.blocking, sub.blocking[i])
		c.chains = append(c.chains, sub.chains[i])
	}
	c.height = max(c.height, sub.height+1)
}

// judgement is how a content item is judged, whichever way it is
// reached.
type judgement struct {
	st      *State
	blocked *Decision // rule 1 stops it
	own     *Decision // the release that governs it, its own or from above
}

// judge works out how c is judged: c alone when it has one container
// (the common case, no look upwards needed), else c with all its
// ancestors, so a hold or revoke on another container of c (its master
// waybill, say) stops this one too. It returns c's node, or nil for a
// plain item.
func (r *reader) judge(c customs.Subject) (judgement, *node, error) {
	n := r.nodes[c]
	if n != nil && n.judged {
		return n.j, n, nil
	}
	var st *State
	var err error
	if n != nil {
		st, err = r.state(n)
	} else {
		st, err = r.v.State(c)
	}
	if err != nil {
		return judgement{}, nil, err
	}
	j := judgement{st: st}
	self := [1]level{{subj: c, st: st}}
	own, rels := self[:], self[:]
	if st != nil && st.Parents > 1 {
		if n == nil {
			n = r.node(c)
			n.st, n.read = st, n.read|readState
		}
		a, err := r.ancestry(n, 0)
		if err != nil {
			return judgement{}, nil, err
		}
		own, rels = a.blockers(), a.releases()
	}
	if d, stop := blocked(own); stop {
		j.blocked = heap(d)
	} else if d, ok := effectiveRelease(rels, r.now); ok {
		j.own = heap(d)
	}
	if n == nil && st != nil && st.Children > 0 {
		n = r.node(c)
		n.st, n.read = st, n.read|readState
	}
	if n != nil {
		n.judged, n.j = true, j
	}
	return j, n, nil
}

// heap returns a copy of d to point to: the address of a node's release
// is what its contents are walked with.
func heap(d Decision) *Decision { return &d }

// walk walks the contents of parent, depth levels below the scanned
// subject, inheriting inh; above is the longest chain of links above
// parent. A content item is decided by the same rules as a scanned
// subject, so one whose longest chain of links above goes past MaxDepth
// stops the decision (error), whether it has one container or several.
func (r *reader) walk(parent *node, inh *Decision, depth, above int) (*contents, error) {
	if depth > MaxDepth {
		return nil, errTooDeep
	}
	kids, err := r.childrenOf(parent)
	if err != nil {
		return nil, err
	}
	out := &contents{}
	for _, c := range kids {
		if r.onPath[c] {
			return nil, errTooDeep
		}
		j, n, err := r.judge(c)
		if err != nil {
			return nil, err
		}
		// The longest chain above c: through parent, or, for an item of
		// several containers, the one its summary found (judge checked it).
		h := above + 1
		if n != nil && n.anc != nil {
			h = max(h, n.anc.height)
		}
		if h > MaxDepth {
			return nil, errTooDeep
		}
		out.items++
		if j.blocked != nil {
			out.block(c, *j.blocked)
			continue
		}
		rel := inh
		if j.own != nil {
			rel = j.own
		}
		if j.st != nil && j.st.Children > 0 {
			sub, err := r.below(n, rel, depth+1, h)
			if err != nil {
				return nil, err
			}
			out.add(sub)
			continue
		}
		switch {
		case rel == nil:
			out.block(c, Decision{Reason: customs.ReasonUnknown, Chain: []Step{{Subject: c, What: "no release known"}}})
		case !rel.Pass:
			out.block(c, *rel)
		default:
			out.basis = max(out.basis, rel.BasisSeq)
		}
	}
	return out, nil
}

// below walks the contents of c once for each release it inherits; above
// is the longest chain of links above c, the same whichever way c is
// reached. A container walked before is too deep if its longest chain of
// containers below reaches past MaxDepth from here; a loop below it would
// have failed the first walk.
func (r *reader) below(c *node, inh *Decision, depth, above int) (*contents, error) {
	for _, w := range c.walked {
		if w.inh == inh {
			if depth+w.c.height > MaxDepth {
				return nil, errTooDeep
			}
			return w.c, nil
		}
	}
	r.onPath[c.s] = true
	sub, err := r.walk(c, inh, depth, above)
	delete(r.onPath, c.s)
	if err != nil {
		return nil, err
	}
	c.walked = append(c.walked, walkedWith{inh, sub})
	return sub, nil
}
