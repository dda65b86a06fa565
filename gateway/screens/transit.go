package screens

import (
	"time"

	"github.com/cargogate/cargogate/gateway/arrival"
	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/scan"
)

// What the arrival screen shows of an arrival station (PROTOCOL §9): the
// open transit as the station last reported it, the items stopped at the
// station while it is open, and the result of the last transit closed.
//
// The station reports the open transit with every outcome it hands over at
// an arrival station (Outcome.Transit), but not with every one: an invalid
// code or a failed view carries none. So a missing Transit keeps what the
// hub has; only an arrival outcome (the transit closed) clears it.

// maxStopped bounds the stopped items kept per open transit.
const maxStopped = 1000

// StoppedItem is an item decided STOP at an arrival station while a
// transit was open: held, cancelled, its contents held, or not released.
type StoppedItem struct {
	Subject customs.Subject `json:"subject"`
	Code    string          `json:"code"`
	Reason  string          `json:"reason"`
	At      time.Time       `json:"at"`
}

// ArrivalResult is a closed transit: its arrival event as journalled, and
// the items stopped while it was open.
type ArrivalResult struct {
	Event   *customs.Event `json:"event"`
	Stopped []StoppedItem  `json:"stopped"`
}

// TransitState is an arrival station's state on the arrival screen, sent
// in the hello and as a "transit" message whenever it changes.
type TransitState struct {
	// Transit is the open transit; nil when none is open.
	Transit *arrival.View `json:"transit"`
	// Stopped are the items stopped while Transit is open, oldest first.
	Stopped []StoppedItem `json:"stopped"`
	// Arrival is the last transit closed since the gateway started; nil
	// before the first.
	Arrival *ArrivalResult `json:"arrival"`
}

// TransitBrief is an open transit on the supervisor's overview.
type TransitBrief struct {
	Transit       customs.Subject `json:"transit"`
	OpenedAt      time.Time       `json:"opened_at"`
	LastLine      time.Time       `json:"last_line"`
	Expected      int             `json:"expected"`
	Counted       int             `json:"counted"` // of the expected contents
	Extra         int             `json:"extra"`
	Missing       int             `json:"missing"`
	SealsExpected int             `json:"seals_expected"`
	SealsSeen     int             `json:"seals_seen"` // of the expected seals
	Foreign       int             `json:"foreign"`
	Stopped       int             `json:"stopped"`
}

// applyTransit folds an outcome into the station's arrival state and
// reports whether it changed. h.mu is held.
func (s *stationState) applyTransit(o scan.Outcome) bool {
	changed := false
	if o.Kind == "arrival" && o.Arrival != nil {
		res := &ArrivalResult{Event: o.Arrival, Stopped: []StoppedItem{}}
		if s.transit != nil && o.Arrival.Transit != nil && s.transit.Transit == *o.Arrival.Transit {
			res.Stopped = append(res.Stopped, s.stopped...)
		}
		s.arrival, s.transit, s.stopped = res, nil, nil
		changed = true
	}
	if tr := o.Transit; tr != nil {
		if s.transit == nil || s.transit.Transit != tr.Transit || !s.transit.OpenedAt.Equal(tr.OpenedAt) {
			s.stopped = nil // another transit: what was stopped belongs to the last one
		}
		s.transit = tr
		changed = true
	}
	if s.transit != nil && isDecision(o) && o.Subject != nil && o.Subject.Kind != customs.Transit {
		i := -1
		for j, x := range s.stopped {
			if x.Subject == *o.Subject {
				i = j
				break
			}
		}
		switch {
		case !o.Pass && i >= 0:
			s.stopped[i] = StoppedItem{Subject: *o.Subject, Code: o.Code, Reason: o.Reason, At: o.At}
			changed = true
		case !o.Pass && len(s.stopped) < maxStopped:
			s.stopped = append(s.stopped, StoppedItem{Subject: *o.Subject, Code: o.Code, Reason: o.Reason, At: o.At})
			changed = true
		case o.Pass && i >= 0:
			// Scanned again and passed (a hold lifted meanwhile).
			s.stopped = append(s.stopped[:i], s.stopped[i+1:]...)
			changed = true
		}
	}
	return changed
}

// transitStateLocked is a copy of the station's arrival state. h.mu is
// held.
func (s *stationState) transitStateLocked() TransitState {
	return TransitState{Transit: s.transit, Stopped: append([]StoppedItem{}, s.stopped...), Arrival: s.arrival}
}

// brief summarises the open transit for the overview; nil when none is
// open.
func (s *stationState) brief() *TransitBrief {
	v := s.transit
	if v == nil {
		return nil
	}
	b := &TransitBrief{Transit: v.Transit, OpenedAt: v.OpenedAt, LastLine: v.LastLine, Expected: v.Expected,
		Counted: v.CountedOK, Extra: len(v.Extra), Missing: len(v.Missing), SealsExpected: len(v.SealsExpected),
		Foreign: len(v.Foreign), Stopped: len(s.stopped)}
	b.SealsSeen = len(v.Seals) - len(v.Foreign)
	return b
}

// forList drops from an outcome kept in a list of scans what the arrival
// state keeps whole: the transit view (up to 1,000 missing items on every
// scan) and the arrival event's missing and extra lists.
func forList(o scan.Outcome) scan.Outcome {
	o.Transit = nil
	if ev := o.Arrival; ev != nil {
		e := *ev
		e.Missing, e.Extra = nil, nil
		o.Arrival = &e
	}
	return o
}
