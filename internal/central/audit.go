package central

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// The audit's window. A scan event says what the gateway held when it
// decided: every order up to applied_seq (its contiguous watermark, read
// before deciding), the order at basis_seq (the newest that decided), and
// possibly any others it had received above its watermark (out of order, or
// by lookup) — but only orders central had committed by then. Central notes
// a time before each commit; hi is the highest seq committed by the event's
// at plus Options.DecisionSlack (the lookup and processing between the read
// and the decision, and clock skew between gateway and central). So the
// gateway held orders 1..lo, the basis, and some subset of (lo, hi].
//
// Only the orders on the subject's family (index.family) matter. Orders
// combine per key (a subject's release, one hold_id, cancel, one
// container–child pair) and the highest seq of a key wins, so a subset
// comes down to one choice per key: its value as of lo (and the basis), or
// that of one of its orders in the window. The checks try every
// combination of choices: a PASS is justified when one combination
// releases the subject; a STOP is a defect when every combination does.
// Beyond maxCombos combinations the event is left unchecked (counted,
// never a violation): no false alarm.

// maxCombos bounds the combinations tried for one event.
const maxCombos = 1 << 14

// window returns lo and hi (see above), both clamped to the head.
func (c *Central) window(basisSeq, appliedSeq uint64, at time.Time) (lo, hi uint64) {
	head := c.led.head()
	lo = min(appliedSeq, head)
	hi = c.led.issuedBy(at.Add(c.opts.DecisionSlack))
	// The gateway did hold lo and the basis, whatever the clocks say.
	hi = min(max(hi, lo, basisSeq), head)
	return lo, hi
}

// CheckPass checks a PASS decision against the ledger: it returns nil when
// some set of orders the gateway may have held when it decided (the window
// above) releases s at `at` under §4 and docs/protocol.md point 1, else
// why not, as of the orders the gateway surely held; ErrUnchecked when the
// window is too large to search.
//
// It is written independently of gateway/rules, so the fault suite can
// tell a gateway that passed on stale, lost or forged state from one that
// had what central had issued.
func (c *Central) CheckPass(s customs.Subject, basisSeq, appliedSeq uint64, at time.Time) error {
	head := c.led.head()
	if basisSeq == 0 || basisSeq > head {
		return fmt.Errorf("basis_seq %d: not a seq of the ledger (head %d)", basisSeq, head)
	}
	lo, hi := c.window(basisSeq, appliedSeq, at)
	w, err := c.buildWindow(s, basisSeq, lo, hi)
	if err != nil {
		return err
	}
	why := w.base.checkPass(s, at)
	if why == nil {
		return nil
	}
	found, err := w.search(s, at, true)
	if err != nil {
		return err
	}
	if found {
		return nil
	}
	return fmt.Errorf("as of seq %d with any of the %d orders on its family in (%d, %d]: %w", max(lo, basisSeq), w.optional, lo, hi, why)
}

// CheckStop checks a STOP decision against the ledger: it returns an error
// (a STOP defect) when every set of orders the gateway may have held when
// it decided releases s at `at`, so the gateway had no excuse; nil when
// some set does not; ErrUnchecked when the window is too large to search.
// A STOP for a cause outside the ledger (reason error, invalid_code) is
// not the ledger's to judge: Audit leaves those out.
func (c *Central) CheckStop(s customs.Subject, basisSeq, appliedSeq uint64, at time.Time) error {
	lo, hi := c.window(basisSeq, appliedSeq, at)
	if basisSeq > hi {
		basisSeq = 0 // not a seq of the ledger: it constrains nothing
	}
	w, err := c.buildWindow(s, basisSeq, lo, hi)
	if err != nil {
		return err
	}
	w.base.strict = true
	if w.base.checkPass(s, at) != nil {
		return nil
	}
	stopped, err := w.search(s, at, false)
	if err != nil {
		return err
	}
	if stopped {
		return nil
	}
	return fmt.Errorf("the ledger releases %s as of seq %d and with any of the %d orders on its family in (%d, %d]", s, max(lo, basisSeq), w.optional, lo, hi)
}

// win is the state the gateway surely had (base) and the choices per key
// in the window.
type win struct {
	base     *asOf
	keys     [][]effect // per key, the values it may take besides base's
	optional int        // orders in the window
}

// effect sets one key to one value.
type effect func(v *asOf)

func (c *Central) buildWindow(s customs.Subject, basisSeq, lo, hi uint64) (*win, error) {
	var seqs []uint64
	for _, q := range c.idx.family(s) {
		if q <= hi {
			seqs = append(seqs, q)
		}
	}
	raws, err := c.led.ordersBySeq(seqs)
	if err != nil {
		return nil, err
	}
	orders := make([]customs.Order, 0, len(raws))
	for _, raw := range raws {
		var o customs.Order
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, err
		}
		// Read as a gateway reads it (amendment 2): an order a gateway
		// cannot apply never stands in its state. Central issues none
		// (Issue validates), so this only keeps the two readings one.
		if _, err := o.Normalize(); err != nil {
			continue
		}
		orders = append(orders, o)
	}
	w := &win{base: newAsOf()}
	basisKeys := map[string]bool{}
	for i := range orders {
		o := &orders[i]
		if o.Seq <= lo {
			w.base.apply(o)
		}
		if o.Seq == basisSeq && basisSeq > lo {
			w.base.apply(o)
			for _, k := range effects(o) {
				basisKeys[k.key] = true
			}
		}
	}
	// Per key, the distinct values its window orders give; a key of the
	// basis only takes values from orders above the basis.
	type opt struct {
		class string
		eff   effect
	}
	byKey := map[string][]opt{}
	var keyOrder []string
	for i := range orders {
		o := &orders[i]
		if o.Seq <= lo || o.Seq == basisSeq {
			continue
		}
		w.optional++
		for _, e := range effects(o) {
			if basisKeys[e.key] && o.Seq < basisSeq {
				continue
			}
			if _, ok := byKey[e.key]; !ok {
				keyOrder = append(keyOrder, e.key)
			}
			dup := false
			for _, x := range byKey[e.key] {
				dup = dup || x.class == e.class
			}
			if !dup {
				byKey[e.key] = append(byKey[e.key], opt{e.class, e.eff})
			}
		}
	}
	for _, k := range keyOrder {
		var es []effect
		for _, x := range byKey[k] {
			es = append(es, x.eff)
		}
		w.keys = append(w.keys, es)
	}
	return w, nil
}

type keyedEffect struct {
	key, class string
	eff        effect
}

// effects splits an order into its effect on each key. class tells apart
// the values that can decide differently (a release's expiry is kept
// exact: whether it is live depends on the scan's time).
func effects(o *customs.Order) []keyedEffect {
	s := o.Subject
	switch o.Action {
	case customs.Release, customs.Revoke:
		rel, exp, seq := o.Action == customs.Release, o.ExpiresAt, o.Seq
		return []keyedEffect{{"rel " + s.String(), fmt.Sprint(rel, exp.UnixNano()), func(v *asOf) {
			st := v.state(s)
			st.hasRel, st.released, st.relSeq, st.expires = true, rel, seq, exp
		}}}
	case customs.Hold, customs.Unhold:
		on, id := o.Action == customs.Hold, o.HoldID
		return []keyedEffect{{"hold " + s.String() + " " + id, fmt.Sprint(on), func(v *asOf) { v.state(s).holds[id] = on }}}
	case customs.Cancel:
		return []keyedEffect{{"cancel " + s.String(), "", func(v *asOf) { v.state(s).cancelled = true }}}
	case customs.Link, customs.Unlink:
		on := o.Action == customs.Link
		var out []keyedEffect
		for _, ch := range o.Children {
			pair := [2]customs.Subject{s, ch}
			out = append(out, keyedEffect{"link " + s.String() + " " + ch.String(), fmt.Sprint(on), func(v *asOf) { v.links[pair] = on }})
		}
		return out
	}
	return nil
}

// search tries every combination of choices, base first. With wantPass it
// reports whether one releases s; without, whether one does not.
func (w *win) search(s customs.Subject, at time.Time, wantPass bool) (bool, error) {
	combos := 1
	for _, es := range w.keys {
		combos *= len(es) + 1
		if combos > maxCombos {
			return false, fmt.Errorf("%w: %d keys", ErrUnchecked, len(w.keys))
		}
	}
	pick := make([]int, len(w.keys)) // 0: base's value; i: keys[k][i-1]
	for {
		v := w.base.clone()
		for k, p := range pick {
			if p > 0 {
				w.keys[k][p-1](v)
			}
		}
		if (v.checkPass(s, at) == nil) == wantPass {
			return true, nil
		}
		k := 0
		for ; k < len(pick); k++ {
			if pick[k] < len(w.keys[k]) {
				pick[k]++
				break
			}
			pick[k] = 0
		}
		if k == len(pick) {
			return false, nil
		}
	}
}

func (v *asOf) clone() *asOf {
	c := newAsOf()
	for s, st := range v.subj {
		cp := *st
		cp.holds = make(map[string]bool, len(st.holds))
		for id, on := range st.holds {
			cp.holds[id] = on
		}
		c.subj[s] = &cp
	}
	for k, on := range v.links {
		c.links[k] = on
	}
	c.strict = v.strict
	return c
}

// asOf is the combined state of a few subjects as of one seq, built by
// applying the ledger's orders in seq order.
type asOf struct {
	subj  map[customs.Subject]*subjState
	links map[[2]customs.Subject]bool // (container, child) → linked
	// strict reads §4 as the gateway does where the checks' plain reading
	// is more lenient (equal-distance releases, items with more than one
	// container). CheckPass is lenient and CheckStop strict, so neither
	// raises a false alarm on a decision made the stricter way.
	strict bool
}

type subjState struct {
	hasRel    bool // a release or revoke applied
	released  bool // the last of them is a release
	relSeq    uint64
	expires   time.Time
	cancelled bool
	holds     map[string]bool // hold_id → active
}

func newAsOf() *asOf {
	return &asOf{subj: map[customs.Subject]*subjState{}, links: map[[2]customs.Subject]bool{}}
}

func (v *asOf) state(s customs.Subject) *subjState {
	st := v.subj[s]
	if st == nil {
		st = &subjState{holds: map[string]bool{}}
		v.subj[s] = st
	}
	return st
}

// apply takes orders in ascending seq, so the last one of a kind wins.
func (v *asOf) apply(o *customs.Order) {
	st := v.state(o.Subject)
	switch o.Action {
	case customs.Release, customs.Revoke:
		st.hasRel, st.released, st.relSeq, st.expires = true, o.Action == customs.Release, o.Seq, o.ExpiresAt
	case customs.Hold:
		st.holds[o.HoldID] = true
	case customs.Unhold:
		st.holds[o.HoldID] = false
	case customs.Cancel:
		st.cancelled = true
	case customs.Link, customs.Unlink:
		for _, ch := range o.Children {
			v.links[[2]customs.Subject{o.Subject, ch}] = o.Action == customs.Link
		}
	}
}

func (v *asOf) parents(s customs.Subject) []customs.Subject {
	var out []customs.Subject
	for k, linked := range v.links {
		if linked && k[1] == s {
			out = append(out, k[0])
		}
	}
	return out
}

func (v *asOf) children(s customs.Subject) []customs.Subject {
	var out []customs.Subject
	for k, linked := range v.links {
		if linked && k[0] == s {
			out = append(out, k[1])
		}
	}
	return out
}

// blocked says why s cannot pass by itself: cancelled or an active hold.
func (v *asOf) blocked(s customs.Subject) error {
	st := v.state(s)
	if st.cancelled {
		return fmt.Errorf("%s is cancelled", s)
	}
	for id, on := range st.holds {
		if on {
			return fmt.Errorf("%s has hold %q active", s, id)
		}
	}
	return nil
}

// release is the release/revoke that governs a subject: its own, or one
// inherited from above.
type release struct {
	from     customs.Subject
	released bool
	expires  time.Time
}

func (v *asOf) own(s customs.Subject) *release {
	st := v.state(s)
	if !st.hasRel {
		return nil
	}
	return &release{from: s, released: st.released, expires: st.expires}
}

func (v *asOf) checkPass(s customs.Subject, at time.Time) error {
	// Rule 1 over the ancestry, and the nearest ancestor's release for
	// rule 3; 4 levels up.
	// Strict: at equal distance every governing release must be live
	// (amendment 1), so one that is not governs.
	var inherited *release
	inhDepth := 0
	seen := map[customs.Subject]bool{s: true}
	level := []customs.Subject{s}
	for depth := 0; depth <= maxDepth && len(level) > 0; depth++ {
		var next []customs.Subject
		for _, n := range level {
			if err := v.blocked(n); err != nil {
				return err
			}
			if r := v.own(n); depth > 0 && r != nil {
				if inherited == nil || (v.strict && inhDepth == depth && r.live(at) != nil) {
					inherited, inhDepth = r, depth
				}
			}
			for _, p := range v.parents(n) {
				if !seen[p] {
					seen[p] = true
					next = append(next, p)
				}
			}
		}
		level = next
	}
	return v.passes(s, inherited, at, 0)
}

// passes checks s with the release it inherits (rules 2–4).
func (v *asOf) passes(s customs.Subject, inh *release, at time.Time, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: contents deeper than %d levels", s, maxDepth)
	}
	if err := v.blocked(s); err != nil {
		return err
	}
	gov := inh
	if r := v.own(s); r != nil {
		gov = r
	}
	if kids := v.children(s); len(kids) > 0 {
		for _, k := range kids {
			if err := v.passes(k, gov, at, depth+1); err != nil {
				return fmt.Errorf("contents of %s: %w", s, err)
			}
			// Strict: an item with more than one container is decided
			// with its full ancestry, as the gateway does.
			if v.strict && len(v.parents(k)) > 1 {
				if err := v.checkPass(k, at); err != nil {
					return fmt.Errorf("contents of %s: %w", s, err)
				}
			}
		}
		return nil
	}
	if gov == nil {
		return fmt.Errorf("%s has no release", s)
	}
	if err := gov.live(at); err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	return nil
}

// live says why r does not release at `at`; nil when it does.
func (r *release) live(at time.Time) error {
	switch {
	case !r.released:
		return fmt.Errorf("release revoked (on %s)", r.from)
	case !r.expires.IsZero() && !at.Before(r.expires):
		return fmt.Errorf("release expired at %s (on %s), scanned at %s", r.expires.Format(time.RFC3339), r.from, at.Format(time.RFC3339))
	}
	return nil
}

// Audit is a gateway's record at central checked against the ledger.
type Audit struct {
	Head   uint64 `json:"head"`
	Events int    `json:"events"` // received from the gateway, each id once
	Scans  int    `json:"scans"`
	Passes int    `json:"passes"`
	Stops  int    `json:"stops"`
	// DuplicatesDropped counts events received again under an id already
	// recorded (this process, every gateway).
	DuplicatesDropped uint64 `json:"duplicates_dropped"`
	// Violations are PASS scans that no set of orders the gateway may have
	// held released (see CheckPass): the grave defect.
	Violations []string `json:"violations"`
	// StopDefects are STOP scans that every set of orders the gateway may
	// have held released (see CheckStop): a lesser defect, counted apart.
	// STOPs for reason error or invalid_code are not judged.
	StopDefects []string `json:"stop_defects"`
	// Unchecked counts scans whose window was too large to search.
	Unchecked int `json:"unchecked"`
}

// Audit checks every scan event received from gateway ("" for all): PASS
// with CheckPass, STOP with CheckStop.
func (c *Central) Audit(gateway string) (Audit, error) {
	evs, err := c.led.events(gateway)
	if err != nil {
		return Audit{}, err
	}
	a := Audit{Head: c.led.head(), Events: len(evs), DuplicatesDropped: c.Stats().DuplicatesDropped, Violations: []string{}, StopDefects: []string{}}
	for _, e := range evs {
		if e.Kind != customs.EventScan {
			continue
		}
		a.Scans++
		var applied uint64
		if e.AppliedSeq != nil {
			applied = *e.AppliedSeq
		}
		switch e.Decision {
		case customs.Pass:
			a.Passes++
			err := fmt.Errorf("no subject")
			if e.Subject != nil {
				err = c.CheckPass(*e.Subject, e.BasisSeq, applied, e.At)
			}
			switch {
			case errors.Is(err, ErrUnchecked):
				a.Unchecked++
			case err != nil:
				a.Violations = append(a.Violations, fmt.Sprintf("event %s (code %q, basis_seq %d, applied_seq %d): %v", e.ID, e.Code, e.BasisSeq, applied, err))
			}
		case customs.Stop:
			a.Stops++
			if e.Subject == nil || e.Reason == customs.ReasonError || e.Reason == customs.ReasonInvalidCode {
				continue
			}
			err := c.CheckStop(*e.Subject, e.BasisSeq, applied, e.At)
			switch {
			case errors.Is(err, ErrUnchecked):
				a.Unchecked++
			case err != nil:
				a.StopDefects = append(a.StopDefects, fmt.Sprintf("event %s (code %q, reason %s, basis_seq %d, applied_seq %d): %v", e.ID, e.Code, e.Reason, e.BasisSeq, applied, err))
			}
		}
	}
	return a, nil
}

// Orders returns the ledger's orders from..to (inclusive, clamped to the
// head), in seq order.
func (c *Central) Orders(from, to uint64) ([]customs.Order, error) {
	to = min(to, c.led.head())
	var out []customs.Order
	for from <= to {
		raws, err := c.led.orderRange(from, to, 10000)
		if err != nil {
			return nil, err
		}
		if len(raws) == 0 {
			break
		}
		for _, r := range raws {
			var o customs.Order
			if err := json.Unmarshal(r, &o); err != nil {
				return nil, err
			}
			out = append(out, o)
		}
		from += uint64(len(raws))
	}
	return out, nil
}
