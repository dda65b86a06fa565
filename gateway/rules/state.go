// Package rules is how orders combine on a subject and how a scanned subject
// is decided (PROTOCOL §4). It is pure: it reads subjects, links and times
// through a small View and never does I/O of its own, so the same code decides
// at a scanner, in a property test and in `cargogate inspect`.
package rules

import (
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// Release flags.
const (
	RelNone    = 0
	RelRelease = 1
	RelRevoke  = 2
)

// HoldSlot is the latest hold/unhold seen for one hold_id.
type HoldSlot struct {
	ID     string
	Seq    uint64
	Active bool
	Reason string
	// Text is the reason as central gave it when it was not in the list
	// (Reason is then "other", amendment 2); shown, never deciding.
	Text string
}

// State is everything that decides a subject, combined from its orders by
// seq (never by arrival order). It is kept small: the store writes one per
// subject touched by a batch.
type State struct {
	RelSeq    uint64    // seq of the release/revoke that decides; 0: none
	RelFlag   uint8     // RelNone, RelRelease or RelRevoke
	ExpiresAt time.Time // of that release; zero: no expiry
	CancelSeq uint64    // lowest seq of a cancel applied; 0: not cancelled
	Holds     []HoldSlot
	SealSeq   uint64 // seq of the seal order that decides (transit)
	Seals     []string
	Children  uint32 // number of active links below this subject
	Parents   uint32 // number of active links above this subject
	LastSeq   uint64 // highest seq of any order applied to this subject
}

// Cancelled reports whether a cancel was ever applied.
func (s *State) Cancelled() bool { return s.CancelSeq != 0 }

// ActiveHold returns the active hold placed by the lowest seq.
func (s *State) ActiveHold() (HoldSlot, bool) {
	var best HoldSlot
	found := false
	for _, h := range s.Holds {
		if h.Active && (!found || h.Seq < best.Seq) {
			best, found = h, true
		}
	}
	return best, found
}

// Apply combines one order into the state of its subject. Link and unlink
// are pair-wise and combined by ApplyLink; Apply only records their seq.
// Applying an order twice, or an older order after a newer one, never changes
// the result.
func (s *State) Apply(o *customs.Order) {
	if o.Seq > s.LastSeq {
		s.LastSeq = o.Seq
	}
	switch o.Action {
	case customs.Release, customs.Revoke:
		if o.Seq > s.RelSeq {
			s.RelSeq = o.Seq
			if o.Action == customs.Release {
				s.RelFlag = RelRelease
				s.ExpiresAt = o.ExpiresAt
			} else {
				s.RelFlag = RelRevoke
				s.ExpiresAt = time.Time{}
			}
		}
	case customs.Cancel:
		if s.CancelSeq == 0 || o.Seq < s.CancelSeq {
			s.CancelSeq = o.Seq
		}
	case customs.Hold, customs.Unhold:
		for i := range s.Holds {
			h := &s.Holds[i]
			if h.ID != o.HoldID {
				continue
			}
			if o.Seq > h.Seq {
				h.Seq = o.Seq
				h.Active = o.Action == customs.Hold
				if h.Active {
					h.Reason, h.Text = o.Reason, o.ReasonText
				}
			}
			return
		}
		s.Holds = append(s.Holds, HoldSlot{ID: o.HoldID, Seq: o.Seq, Active: o.Action == customs.Hold, Reason: o.Reason, Text: o.ReasonText})
	case customs.Seal:
		if o.Seq > s.SealSeq {
			s.SealSeq = o.Seq
			s.Seals = append([]string(nil), o.Seals...)
		}
	}
}

// LinkState is the latest link/unlink seen for one (container, child) pair.
type LinkState struct {
	Seq    uint64
	Linked bool
}

// ApplyLink combines a link or unlink of one pair: the highest seq decides.
// It reports whether the pair's linked state changed.
func (l *LinkState) ApplyLink(seq uint64, link bool) (changed bool) {
	if seq <= l.Seq {
		return false
	}
	was := l.Linked
	l.Seq, l.Linked = seq, link
	return was != link
}
