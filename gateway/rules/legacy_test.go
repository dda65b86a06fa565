package rules

// The decision as it was before the ancestry and the contents walk were
// memoised: exponential on dense lattices, but the reference that the new
// code must agree with on every input (TestDecideMatchesLegacy).

import (
	"fmt"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// legacyDecide decides a scan of s at time now (§4). Any error decides STOP
// (reason error): there is no pass on error.
func legacyDecide(v View, s customs.Subject, now time.Time) (d Decision) {
	defer func() {
		if r := recover(); r != nil {
			d = stopError(s, fmt.Errorf("panic: %v", r))
		}
	}()
	anc, err := legacyAncestry(v, s)
	if err != nil {
		return stopError(s, err)
	}
	// Rule 1: cancelled, then the active hold with the lowest seq, on s or
	// any ancestor.
	if d, stop := blocked(anc); stop {
		return d
	}
	st := anc[0].st
	// Rule 2: a container decides on its contents.
	if st != nil && st.Children > 0 {
		return legacyDecideContents(v, s, anc, now)
	}
	// Rules 3 and 4.
	return legacyDecideRelease(anc, now)
}

// legacyAncestry returns s and its ancestors breadth first, nearest first, each
// once. A chain deeper than MaxDepth or a loop is an error.
func legacyAncestry(v View, s customs.Subject) ([]level, error) {
	st, err := v.State(s)
	if err != nil {
		return nil, err
	}
	out := []level{{subj: s, st: st}}
	seen := map[customs.Subject]int{s: 0}
	frontier := []customs.Subject{s}
	for depth := 1; len(frontier) > 0; depth++ {
		var next []customs.Subject
		for _, c := range frontier {
			ps, err := v.Parents(c)
			if err != nil {
				return nil, err
			}
			for _, p := range ps {
				if p == s {
					return nil, errTooDeep
				}
				if depth > MaxDepth {
					return nil, errTooDeep
				}
				// A subject seen before is not listed again, but its parents
				// are followed again on this path, so a loop above s runs
				// past MaxDepth and is caught.
				next = append(next, p)
				if _, ok := seen[p]; ok {
					continue
				}
				pst, err := v.State(p)
				if err != nil {
					return nil, err
				}
				seen[p] = depth
				out = append(out, level{subj: p, st: pst, depth: depth})
			}
		}
		frontier = next
	}
	return out, nil
}

// legacyDecideRelease applies rules 3 and 4 to a subject without contents.
func legacyDecideRelease(anc []level, now time.Time) Decision {
	if d, ok := effectiveRelease(anc, now); ok {
		return d
	}
	return Decision{Reason: customs.ReasonUnknown, Chain: []Step{{Subject: anc[0].subj, What: "no release known"}}}
}

// legacyDecideContents applies rule 2: a container passes only if every subject
// below it passes. A child inherits the releases above it; its own holds
// and cancels, and those of its own contents, count.
func legacyDecideContents(v View, s customs.Subject, anc []level, now time.Time) Decision {
	inherited, hasInherited := effectiveRelease(anc, now)
	res := Decision{Pass: true, Reason: customs.ReasonReleased}
	w := legacyContentsWalk{v: v, now: now, res: &res, path: map[customs.Subject]bool{s: true}}
	for _, l := range anc {
		w.path[l.subj] = true
	}
	var inh *Decision
	if hasInherited {
		inh = &inherited
	}
	if err := w.walk(s, inh, 1); err != nil {
		return stopError(s, err)
	}
	if res.Pass {
		res.Chain = append([]Step{{Subject: s, What: fmt.Sprintf("all %d items below pass", res.Items)}}, res.Chain...)
	} else {
		res.Reason = customs.ReasonContents
		res.Chain = append([]Step{{Subject: s, What: fmt.Sprintf("%d of %d items below do not pass", w.blocked, res.Items)}}, res.Chain...)
	}
	return res
}

type legacyContentsWalk struct {
	v       View
	now     time.Time
	res     *Decision
	path    map[customs.Subject]bool
	blocked int
}

func (w *legacyContentsWalk) walk(parent customs.Subject, inh *Decision, depth int) error {
	if depth > MaxDepth {
		return errTooDeep
	}
	kids, err := w.v.Children(parent)
	if err != nil {
		return err
	}
	for _, c := range kids {
		if w.path[c] {
			return errTooDeep
		}
		st, err := w.v.State(c)
		if err != nil {
			return err
		}
		w.res.Items++
		// What judges c: c alone when the container is its only parent
		// (the common case, no look upwards needed), else c with all its
		// ancestors, so a hold or revoke on another container of c (its
		// master waybill, say) stops this one too.
		own := []level{{subj: c, st: st}}
		if st != nil && st.Parents > 1 {
			if own, err = legacyAncestry(w.v, c); err != nil {
				return err
			}
		} else if _, err := legacyAncestry(w.v, c); err != nil {
			// Decided by the same rules as a scanned subject: an item
			// whose ancestry is deeper than MaxDepth stops the decision.
			return err
		}
		if d, stop := blocked(own); stop {
			w.block(c, d)
			continue
		}
		rel := inh
		if r, ok := effectiveRelease(own, w.now); ok {
			rel = &r
		}
		if st != nil && st.Children > 0 {
			w.path[c] = true
			err := w.walk(c, rel, depth+1)
			delete(w.path, c)
			if err != nil {
				return err
			}
			continue
		}
		switch {
		case rel == nil:
			w.block(c, Decision{Reason: customs.ReasonUnknown, Chain: []Step{{Subject: c, What: "no release known"}}})
		case !rel.Pass:
			w.block(c, *rel)
		default:
			w.res.BasisSeq = max(w.res.BasisSeq, rel.BasisSeq)
		}
	}
	return nil
}

// block records a content item that stops its container.
func (w *legacyContentsWalk) block(c customs.Subject, d Decision) {
	w.res.BasisSeq = max(w.res.BasisSeq, d.BasisSeq)
	w.res.Pass = false
	w.blocked++
	if len(w.res.Blocking) < MaxBlocking {
		w.res.Blocking = append(w.res.Blocking, Blocked{Subject: c, Reason: d.Reason})
		w.res.Chain = append(w.res.Chain, d.Chain...)
	}
}
