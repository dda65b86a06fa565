package rules

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// MaxDepth is how many link levels are followed up and down (§4).
const MaxDepth = 4

// View is the read side of the store that a decision needs. Implementations
// return (nil, nil) for a subject never seen.
type View interface {
	// State returns the combined state of s, or nil if it has none.
	State(s customs.Subject) (*State, error)
	// Parents returns the containers s is actively linked into.
	Parents(s customs.Subject) ([]customs.Subject, error)
	// Children returns the subjects actively linked into s.
	Children(s customs.Subject) ([]customs.Subject, error)
}

// Step is one line of a decision's explanation: which order, by seq, on
// which subject, counted.
type Step struct {
	Subject customs.Subject `json:"subject"`
	Seq     uint64          `json:"seq,omitempty"`
	What    string          `json:"what"`
}

// Decision is the outcome of deciding a subject.
type Decision struct {
	Pass     bool
	Reason   string // a §3 reason
	BasisSeq uint64 // the highest seq among the orders that decided
	// Blocking lists, for a container that stops on its contents, the
	// children that block it (at most MaxBlocking).
	Blocking []Blocked
	Items    int // for a container: the subjects counted below it
	Chain    []Step
}

// Blocked is a content item that stops its container.
type Blocked struct {
	Subject customs.Subject `json:"subject"`
	Reason  string          `json:"reason"`
}

// MaxBlocking bounds Decision.Blocking.
const MaxBlocking = 20

// Verdict returns "pass" or "stop".
func (d Decision) Verdict() string {
	if d.Pass {
		return customs.Pass
	}
	return customs.Stop
}

var errTooDeep = errors.New("links deeper than 4 levels or looping")

func stopError(s customs.Subject, err error) Decision {
	return Decision{Reason: customs.ReasonError, Chain: []Step{{Subject: s, What: "error: " + err.Error()}}}
}

// level is one subject in the ancestry of the scanned subject with its state.
type level struct {
	subj  customs.Subject
	st    *State
	depth int
}

// Decide decides a scan of s at time now (§4). Any error decides STOP
// (reason error): there is no pass on error.
func Decide(v View, s customs.Subject, now time.Time) (d Decision) {
	defer func() {
		if r := recover(); r != nil {
			d = stopError(s, fmt.Errorf("panic: %v", r))
		}
	}()
	anc, err := ancestry(v, s)
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
		return decideContents(v, s, anc, now)
	}
	// Rules 3 and 4.
	return decideRelease(anc, now)
}

// ancestry returns s and its ancestors breadth first, nearest first, each
// once. A chain deeper than MaxDepth or a loop is an error.
func ancestry(v View, s customs.Subject) ([]level, error) {
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

// blocked applies rule 1 over s and its ancestors.
func blocked(anc []level) (Decision, bool) {
	for _, l := range anc {
		if l.st != nil && l.st.Cancelled() {
			return Decision{Reason: customs.ReasonCancelled, BasisSeq: l.st.CancelSeq,
				Chain: []Step{{Subject: l.subj, Seq: l.st.CancelSeq, What: "cancelled"}}}, true
		}
	}
	var best HoldSlot
	var on customs.Subject
	found := false
	for _, l := range anc {
		if l.st == nil {
			continue
		}
		if h, ok := l.st.ActiveHold(); ok && (!found || h.Seq < best.Seq) {
			best, on, found = h, l.subj, true
		}
	}
	if found {
		why := best.Reason
		if best.Text != "" {
			why += ", given as " + strconv.Quote(best.Text)
		}
		return Decision{Reason: customs.ReasonHeldPrefix + best.Reason, BasisSeq: best.Seq,
			Chain: []Step{{Subject: on, Seq: best.Seq, What: "hold " + best.ID + " (" + why + ")"}}}, true
	}
	return Decision{}, false
}

// effectiveRelease finds the release/revoke that governs s: its own if it has
// one, else that of its nearest ancestor that has one. When several
// ancestors at the same depth have one, a live release among them wins only
// if none of them is a revoke or expired (fail closed).
func effectiveRelease(anc []level, now time.Time) (Decision, bool) {
	depth := -1
	var got *Decision
	for _, l := range anc {
		if depth >= 0 && l.depth > depth {
			break
		}
		if l.st == nil || l.st.RelFlag == RelNone {
			continue
		}
		depth = l.depth
		var d Decision
		switch {
		case l.st.RelFlag == RelRevoke:
			d = Decision{Reason: customs.ReasonRevoked, BasisSeq: l.st.RelSeq,
				Chain: []Step{{Subject: l.subj, Seq: l.st.RelSeq, What: "release revoked"}}}
		case !l.st.ExpiresAt.IsZero() && !now.Before(l.st.ExpiresAt):
			d = Decision{Reason: customs.ReasonExpired, BasisSeq: l.st.RelSeq,
				Chain: []Step{{Subject: l.subj, Seq: l.st.RelSeq, What: "release expired at " + l.st.ExpiresAt.UTC().Format(time.RFC3339)}}}
		default:
			d = Decision{Pass: true, Reason: customs.ReasonReleased, BasisSeq: l.st.RelSeq,
				Chain: []Step{{Subject: l.subj, Seq: l.st.RelSeq, What: "released"}}}
		}
		if got == nil || (got.Pass && !d.Pass) {
			got = &d
		}
	}
	if got == nil {
		return Decision{}, false
	}
	return *got, true
}

// decideRelease applies rules 3 and 4 to a subject without contents.
func decideRelease(anc []level, now time.Time) Decision {
	if d, ok := effectiveRelease(anc, now); ok {
		return d
	}
	return Decision{Reason: customs.ReasonUnknown, Chain: []Step{{Subject: anc[0].subj, What: "no release known"}}}
}

// decideContents applies rule 2: a container passes only if every subject
// below it passes. A child inherits the releases above it; its own holds
// and cancels, and those of its own contents, count.
func decideContents(v View, s customs.Subject, anc []level, now time.Time) Decision {
	inherited, hasInherited := effectiveRelease(anc, now)
	res := Decision{Pass: true, Reason: customs.ReasonReleased}
	w := contentsWalk{v: v, now: now, res: &res, path: map[customs.Subject]bool{s: true}}
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

type contentsWalk struct {
	v       View
	now     time.Time
	res     *Decision
	path    map[customs.Subject]bool
	blocked int
}

func (w *contentsWalk) walk(parent customs.Subject, inh *Decision, depth int) error {
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
			if own, err = ancestry(w.v, c); err != nil {
				return err
			}
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
func (w *contentsWalk) block(c customs.Subject, d Decision) {
	w.res.BasisSeq = max(w.res.BasisSeq, d.BasisSeq)
	w.res.Pass = false
	w.blocked++
	if len(w.res.Blocking) < MaxBlocking {
		w.res.Blocking = append(w.res.Blocking, Blocked{Subject: c, Reason: d.Reason})
		w.res.Chain = append(w.res.Chain, d.Chain...)
	}
}
