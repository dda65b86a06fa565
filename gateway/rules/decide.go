package rules

import (
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
//
// The work is linear in the subjects and links within reach, however
// densely they cross: each subject is read once per decision, its
// ancestry is summarised once, and the contents below a container are
// walked once for each release they inherit.
func Decide(v View, s customs.Subject, now time.Time) (d Decision) {
	defer func() {
		if r := recover(); r != nil {
			d = stopError(s, fmt.Errorf("panic: %v", r))
		}
	}()
	r := newReader(v, now)
	top := r.node(s)
	anc, err := r.ancestry(top, 0)
	if err != nil {
		return stopError(s, err)
	}
	// Rule 1: cancelled, then the active hold with the lowest seq, on s or
	// any ancestor.
	if d, stop := blocked(anc.blockers()); stop {
		return d
	}
	st, err := r.state(top)
	if err != nil {
		return stopError(s, err)
	}
	// Rule 2: a container decides on its contents.
	if st != nil && st.Children > 0 {
		return r.decideContents(top, anc)
	}
	// Rules 3 and 4.
	return decideRelease(s, anc.releases(), now)
}

// reader is what one decision has read and worked out, so that nothing is
// read or worked out twice: one node per subject, linked to its parents
// and children once read.
type reader struct {
	v      View
	now    time.Time
	nodes  map[customs.Subject]*node
	free   []node                   // allocated a chunk at a time
	onPath map[customs.Subject]bool // the scanned subject, its ancestors and the containers being walked
	// base is the scanned container's height: the longest chain of links
	// above it. A content item d levels below it has an ancestry at least
	// base+d deep, and is judged by the same rules (§4 rule 2), so the
	// contents may go only MaxDepth-base levels down.
	base int
}

// node is a subject met in a decision. Plain content items (one
// container, no contents of their own: reached one way only) get none.
type node struct {
	s        customs.Subject
	st       *State
	ups      []*node
	downs    []customs.Subject
	read     uint8       // which of readState, readUps, readDowns are done
	anc      *ancSummary // once summarised
	climbing bool        // on the way up being summarised
	judged   bool        // once judged as a content item:
	j        judgement
	walked   []walkedWith // its contents, once per release inherited
}

const (
	readState = 1 << iota
	readUps
	readDowns
)

func newReader(v View, now time.Time) *reader {
	return &reader{v: v, now: now, nodes: map[customs.Subject]*node{}}
}

func (r *reader) node(s customs.Subject) *node {
	n, ok := r.nodes[s]
	if !ok {
		if len(r.free) == 0 {
			r.free = make([]node, min(max(len(r.nodes), 8), 1024))
		}
		n, r.free = &r.free[0], r.free[1:]
		n.s = s
		r.nodes[s] = n
	}
	return n
}

func (r *reader) subjectNodes(ss []customs.Subject) []*node {
	out := make([]*node, len(ss))
	for i, s := range ss {
		out[i] = r.node(s)
	}
	return out
}

func (r *reader) state(n *node) (*State, error) {
	if n.read&readState == 0 {
		st, err := r.v.State(n.s)
		if err != nil {
			return nil, err
		}
		n.st, n.read = st, n.read|readState
	}
	return n.st, nil
}

func (r *reader) parentsOf(n *node) ([]*node, error) {
	if n.read&readUps == 0 {
		ps, err := r.v.Parents(n.s)
		if err != nil {
			return nil, err
		}
		n.ups, n.read = r.subjectNodes(ps), n.read|readUps
	}
	return n.ups, nil
}

func (r *reader) childrenOf(n *node) ([]customs.Subject, error) {
	if n.read&readDowns == 0 {
		cs, err := r.v.Children(n.s)
		if err != nil {
			return nil, err
		}
		n.downs, n.read = cs, n.read|readDowns
	}
	return n.downs, nil
}

// ancSummary is what rules 1, 3 and 4 need from a subject and its
// ancestors: in the order of a breadth-first walk up (nearest first, then
// in the order Parents lists them), the first cancelled subject, the
// subject of the active hold with the lowest seq, and at the nearest
// distance where any has a release/revoke, the first of them and the first
// that does not pass. Each level's depth is its distance from the subject.
// A subject's summary follows from its own state and its parents'
// summaries, so each is worked out once.
type ancSummary struct {
	height   int // the longest chain of links above the subject
	cancel   *level
	hold     *level
	holdSeq  uint64
	relDepth int // -1: no release/revoke on the subject or above
	relFirst *level
	relStop  *level // nil: every one at relDepth is a live release
}

// blockers returns the levels that decide rule 1.
func (a *ancSummary) blockers() []level {
	var out []level
	for _, l := range []*level{a.cancel, a.hold} {
		if l != nil {
			out = append(out, *l)
		}
	}
	return out
}

// releases returns the levels that decide rules 3 and 4, the one that does
// not pass first.
func (a *ancSummary) releases() []level {
	var out []level
	for _, l := range []*level{a.relStop, a.relFirst} {
		if l != nil {
			out = append(out, *l)
		}
	}
	return out
}

func up(l *level) *level {
	if l == nil {
		return nil
	}
	return &level{subj: l.subj, st: l.st, depth: l.depth + 1}
}

// ancestry summarises n and its ancestors; n is d links above the subject
// being summarised. A chain of links deeper than MaxDepth above that
// subject, or a loop, is an error: the longest chain counts, however short
// another way up is.
func (r *reader) ancestry(n *node, d int) (*ancSummary, error) {
	if a := n.anc; a != nil {
		if d+a.height > MaxDepth {
			return nil, errTooDeep
		}
		return a, nil
	}
	if n.climbing {
		return nil, errTooDeep
	}
	st, err := r.state(n)
	if err != nil {
		return nil, err
	}
	ps, err := r.parentsOf(n)
	if err != nil {
		return nil, err
	}
	if len(ps) > 0 && d+1 > MaxDepth {
		return nil, errTooDeep
	}
	a := &ancSummary{relDepth: -1}
	if st != nil {
		self := &level{subj: n.s, st: st}
		if st.Cancelled() {
			a.cancel = self
		}
		if h, ok := st.ActiveHold(); ok {
			a.hold, a.holdSeq = self, h.Seq
		}
		if st.RelFlag != RelNone {
			a.relDepth, a.relFirst = 0, self
			if !releaseLive(st, r.now) {
				a.relStop = self
			}
		}
	}
	n.climbing = true
	// Parents in order: on a tie in distance (and seq), the earlier parent
	// comes first in the walk up, as in a breadth-first walk.
	for _, p := range ps {
		pa, err := r.ancestry(p, d+1)
		if err != nil {
			return nil, err
		}
		a.height = max(a.height, pa.height+1)
		if pa.cancel != nil && (a.cancel == nil || pa.cancel.depth+1 < a.cancel.depth) {
			a.cancel = up(pa.cancel)
		}
		if pa.hold != nil && (a.hold == nil || pa.holdSeq < a.holdSeq || pa.holdSeq == a.holdSeq && pa.hold.depth+1 < a.hold.depth) {
			a.hold, a.holdSeq = up(pa.hold), pa.holdSeq
		}
		switch {
		case pa.relDepth < 0:
		case a.relDepth < 0 || pa.relDepth+1 < a.relDepth:
			a.relDepth, a.relFirst, a.relStop = pa.relDepth+1, up(pa.relFirst), up(pa.relStop)
		case pa.relDepth+1 == a.relDepth && a.relStop == nil:
			a.relStop = up(pa.relStop)
		}
	}
	n.climbing = false
	n.anc = a
	return a, nil
}

// releaseLive reports whether the release/revoke of st is a release not
// expired at now.
func releaseLive(st *State, now time.Time) bool {
	return st.RelFlag == RelRelease && (st.ExpiresAt.IsZero() || now.Before(st.ExpiresAt))
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
func decideRelease(s customs.Subject, rels []level, now time.Time) Decision {
	if d, ok := effectiveRelease(rels, now); ok {
		return d
	}
	return Decision{Reason: customs.ReasonUnknown, Chain: []Step{{Subject: s, What: "no release known"}}}
}
