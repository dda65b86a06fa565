package central

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// CheckPass checks a PASS decision against the ledger. The ledger "as of"
// a seq X is its orders 1..X; as of X it releases s when s and every
// container it is linked into have no cancel and no active hold, and s is
// released — by its own last release/revoke, else its nearest container's,
// a release that has not expired at `at` — or, for a container with
// contents, every content item passes the same way (§4 and docs/protocol.md
// point 1).
//
// The decision is justified when the ledger releases s as of
// X = max(basisSeq, appliedSeq) — the gateway had every order up to its
// watermark appliedSeq, and the one at basisSeq — or as of a later seq of
// an order on s or its family (containers, contents): a gateway may hold
// orders beyond its watermark, such as an unhold, or the link that made a
// bag's parcels its contents, which basis_seq does not name (it is the
// newest release among them). A PASS that no such ledger state justifies
// — a hold, cancel or revoke the gateway had, an expired or missing
// release — is reported with why as of X.
//
// It is written independently of gateway/rules, so the fault suite can
// tell a gateway that passed on stale, lost or forged state from one that
// had what central had issued.
func (c *Central) CheckPass(s customs.Subject, basisSeq, appliedSeq uint64, at time.Time) error {
	head := c.led.head()
	if basisSeq == 0 || basisSeq > head {
		return fmt.Errorf("basis_seq %d: not a seq of the ledger (head %d)", basisSeq, head)
	}
	lo := max(basisSeq, min(appliedSeq, head))
	err := c.checkPassAsOf(s, lo, at)
	if err == nil {
		return nil
	}
	for _, q := range c.idx.related(s) {
		if q > lo && c.checkPassAsOf(s, q, at) == nil {
			return nil
		}
	}
	return fmt.Errorf("as of seq %d and every later order on it or its family: %w", lo, err)
}

func (c *Central) checkPassAsOf(s customs.Subject, basisSeq uint64, at time.Time) error {
	if basisSeq == 0 || basisSeq > c.led.head() {
		return fmt.Errorf("basis_seq %d: not a seq of the ledger (head %d)", basisSeq, c.led.head())
	}
	var seqs []uint64
	for _, q := range c.idx.related(s) {
		if q <= basisSeq {
			seqs = append(seqs, q)
		}
	}
	raws, err := c.led.ordersBySeq(seqs)
	if err != nil {
		return err
	}
	v := newAsOf()
	for _, raw := range raws {
		var o customs.Order
		if err := json.Unmarshal(raw, &o); err != nil {
			return err
		}
		// Read as a gateway reads it (amendment 2): an order a gateway
		// cannot apply never stands in its state. Central issues none
		// (Issue validates), so this only keeps the two readings one.
		if _, err := o.Normalize(); err != nil {
			continue
		}
		v.apply(&o)
	}
	return v.checkPass(s, at)
}

// asOf is the combined state of a few subjects as of one seq, built by
// applying the ledger's orders in seq order.
type asOf struct {
	subj  map[customs.Subject]*subjState
	links map[[2]customs.Subject]bool // (container, child) → linked
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
	var inherited *release
	seen := map[customs.Subject]bool{s: true}
	level := []customs.Subject{s}
	for depth := 0; depth <= maxDepth && len(level) > 0; depth++ {
		var next []customs.Subject
		for _, n := range level {
			if err := v.blocked(n); err != nil {
				return err
			}
			if depth > 0 && inherited == nil {
				if r := v.own(n); r != nil {
					inherited = r
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
		}
		return nil
	}
	switch {
	case gov == nil:
		return fmt.Errorf("%s has no release", s)
	case !gov.released:
		return fmt.Errorf("%s: release revoked (on %s)", s, gov.from)
	case !gov.expires.IsZero() && !at.Before(gov.expires):
		return fmt.Errorf("%s: release expired at %s (on %s), scanned at %s", s, gov.expires.Format(time.RFC3339), gov.from, at.Format(time.RFC3339))
	}
	return nil
}

// Audit is a gateway's record at central checked against the ledger.
type Audit struct {
	Head   uint64 `json:"head"`
	Events int    `json:"events"` // received from the gateway, each id once
	Scans  int    `json:"scans"`
	Passes int    `json:"passes"`
	// DuplicatesDropped counts events received again under an id already
	// recorded (this process, every gateway).
	DuplicatesDropped uint64 `json:"duplicates_dropped"`
	// Violations are PASS scans the ledger did not release at their
	// basis_seq (see CheckPass).
	Violations []string `json:"violations"`
}

// Audit checks every PASS scan event received from gateway ("" for all)
// with CheckPass.
func (c *Central) Audit(gateway string) (Audit, error) {
	evs, err := c.led.events(gateway)
	if err != nil {
		return Audit{}, err
	}
	a := Audit{Head: c.led.head(), Events: len(evs), DuplicatesDropped: c.Stats().DuplicatesDropped, Violations: []string{}}
	for _, e := range evs {
		if e.Kind != customs.EventScan {
			continue
		}
		a.Scans++
		if e.Decision != "pass" {
			continue
		}
		a.Passes++
		var err error
		if e.Subject == nil {
			err = fmt.Errorf("no subject")
		} else {
			var applied uint64
			if e.AppliedSeq != nil {
				applied = *e.AppliedSeq
			}
			err = c.CheckPass(*e.Subject, e.BasisSeq, applied, e.At)
		}
		if err != nil {
			a.Violations = append(a.Violations, fmt.Sprintf("event %s (code %q, basis_seq %d): %v", e.ID, e.Code, e.BasisSeq, err))
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
