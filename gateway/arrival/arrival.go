// Package arrival checks a transit truck in at an arrival station (运抵,
// PROTOCOL §9): scanning the transit opens it, seal scans are checked
// against its seal order, bags and parcels are counted against its contents,
// and closing it (the transit scanned again, another transit, or
// close_after without a scan) makes one arrival event.
//
// The open transit lives in a small persisted record, not in memory, so a
// gateway restarted in the middle of an unloading resumes it.
//
// Closing is in two steps, so that a kill -9 or a journal that refuses the
// event (outbox full, disk error) never loses an arrival: Close (or
// ScanTransit) builds the arrival event, id included, and moves it into the
// record's closing list in the same write that ends the open transit; the
// caller journals the event and only then calls Journalled, which drops it
// from the list. Until then it is Pending: the station appends it again,
// after a failed append or a restart, under the same id, so that central
// drops a copy journalled twice (a kill between the append and Journalled)
// as a duplicate (protocol §3: central drops duplicates by id).
package arrival

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// MaxListed bounds the missing and extra lists of an arrival event (§9).
const MaxListed = 1000

// Persister keeps one named record durably (the journal's state bucket).
type Persister interface {
	GetState(name string) ([]byte, error)
	PutState(name string, v []byte) error
}

// Contents reads what the store holds on a transit: its seals (and whether
// it has a seal order) and its direct children.
type Contents interface {
	Transit(t customs.Subject) (seals []string, sealed bool, children []customs.Subject, err error)
}

// Open is the open transit of a station, as persisted.
type Open struct {
	Transit  customs.Subject   `json:"transit"`
	OpenedAt time.Time         `json:"opened_at"`
	LastLine time.Time         `json:"last_line"` // the last line read at the station
	Seals    []string          `json:"seals_seen"`
	Counted  []customs.Subject `json:"counted"` // each once, in scan order
}

// View is the open transit with what the store expects of it, for screens.
type View struct {
	Open
	SealsExpected []string          `json:"seals_expected"`
	Sealed        bool              `json:"sealed"`
	Foreign       []string          `json:"foreign"`
	Expected      int               `json:"expected"`
	CountedOK     int               `json:"counted_ok"`
	Extra         []customs.Subject `json:"extra"`
	Missing       []customs.Subject `json:"missing"`
}

// Tracker is one arrival station's transit state. It is used from the
// station's loop only.
type Tracker struct {
	station    string
	closeAfter time.Duration
	store      Persister
	contents   Contents
	open       *Open
	closing    []*customs.Event // closed, not yet journalled (oldest first)
}

// record is what is persisted under the station's key: one write holds both
// the open transit and the arrival events not yet journalled, so that
// closing a transit and keeping its event is one atomic step.
type record struct {
	Open    *Open            `json:"open,omitempty"`
	Closing []*customs.Event `json:"closing,omitempty"`
}

// New loads a station's open transit and its arrival events not yet
// journalled, if any.
func New(station string, closeAfter time.Duration, p Persister, c Contents) (*Tracker, error) {
	t := &Tracker{station: station, closeAfter: closeAfter, store: p, contents: c}
	raw, err := p.GetState(t.key())
	if err != nil {
		return nil, fmt.Errorf("arrival %s: load: %w", station, err)
	}
	if raw != nil {
		var r record
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("arrival %s: load: %w", station, err)
		}
		if r.Open == nil && r.Closing == nil {
			// Written by an earlier version: the open transit alone.
			var o Open
			if err := json.Unmarshal(raw, &o); err != nil {
				return nil, fmt.Errorf("arrival %s: load: %w", station, err)
			}
			if o.Transit != (customs.Subject{}) {
				r.Open = &o
			}
		}
		t.open, t.closing = r.Open, r.Closing
	}
	return t, nil
}

func (t *Tracker) key() string { return "arrival/" + t.station }

func (t *Tracker) save() error {
	if t.open == nil && len(t.closing) == 0 {
		return t.store.PutState(t.key(), nil)
	}
	raw, err := json.Marshal(record{Open: t.open, Closing: t.closing})
	if err != nil {
		return err
	}
	return t.store.PutState(t.key(), raw)
}

// Pending returns the arrival events closed but not yet journalled, oldest
// first: the caller journals each and then calls Journalled.
func (t *Tracker) Pending() []*customs.Event { return slices.Clone(t.closing) }

// Journalled drops the arrival event id from the pending ones, once it is
// durable in the journal.
func (t *Tracker) Journalled(id string) error {
	i := slices.IndexFunc(t.closing, func(e *customs.Event) bool { return e.ID == id })
	if i < 0 {
		return nil
	}
	t.closing = slices.Delete(slices.Clone(t.closing), i, i+1)
	if len(t.closing) == 0 {
		t.closing = nil
	}
	return t.save()
}

// Current returns the open transit, or nil.
func (t *Tracker) Current() *Open { return t.open }

// Touch records that a line was read at the station (close_after counts
// from the last one).
func (t *Tracker) Touch(now time.Time) error {
	if t.open == nil {
		return nil
	}
	t.open.LastLine = now
	return t.save()
}

// Due reports whether the open transit should close for lack of scans.
func (t *Tracker) Due(now time.Time) bool {
	return t.open != nil && t.closeAfter > 0 && now.Sub(t.open.LastLine) >= t.closeAfter
}

// ScanTransit handles a scan of transit tr: it closes the open transit (tr
// itself, or another) and, if tr was not the one open, opens tr, in one
// write. It returns the arrival event of the closed transit, if one closed:
// pending until the caller has journalled it and called Journalled.
func (t *Tracker) ScanTransit(tr customs.Subject, now time.Time, offline bool, newID func() string) (*customs.Event, error) {
	var ev *customs.Event
	open, closing := t.open, t.closing
	if t.open != nil {
		same := t.open.Transit == tr
		e, err := t.closeEvent(now, offline, newID)
		if err != nil {
			return nil, err
		}
		ev = e
		t.open, t.closing = nil, append(slices.Clone(t.closing), e)
		if same {
			if err := t.save(); err != nil {
				t.open, t.closing = open, closing
				return nil, err
			}
			return ev, nil
		}
	}
	t.open = &Open{Transit: tr, OpenedAt: now, LastLine: now}
	if err := t.save(); err != nil {
		t.open, t.closing = open, closing
		return nil, err
	}
	return ev, nil
}

// Seal marks a seal seen on the open transit.
func (t *Tracker) Seal(id string, now time.Time) error {
	if t.open == nil {
		return errNoneOpen
	}
	if !slices.Contains(t.open.Seals, id) {
		t.open.Seals = append(t.open.Seals, id)
	}
	t.open.LastLine = now
	return t.save()
}

// Count counts a bag or parcel against the open transit; with none open it
// does nothing.
func (t *Tracker) Count(s customs.Subject, now time.Time) error {
	if t.open == nil {
		return nil
	}
	if !slices.Contains(t.open.Counted, s) {
		t.open.Counted = append(t.open.Counted, s)
	}
	t.open.LastLine = now
	return t.save()
}

// View compares the open transit with what the store holds on it.
func (t *Tracker) View() (*View, error) {
	if t.open == nil {
		return nil, nil
	}
	seals, sealed, kids, err := t.contents.Transit(t.open.Transit)
	if err != nil {
		return nil, err
	}
	v := &View{Open: *t.open, SealsExpected: seals, Sealed: sealed, Expected: len(kids)}
	for _, s := range t.open.Seals {
		if !slices.Contains(seals, s) {
			v.Foreign = append(v.Foreign, s)
		}
	}
	expected := make(map[customs.Subject]bool, len(kids))
	for _, k := range kids {
		expected[k] = true
	}
	counted := make(map[customs.Subject]bool, len(t.open.Counted))
	for _, c := range t.open.Counted {
		counted[c] = true
		if expected[c] {
			v.CountedOK++
		} else if len(v.Extra) < MaxListed {
			v.Extra = append(v.Extra, c)
		}
	}
	for _, k := range kids {
		if !counted[k] && len(v.Missing) < MaxListed {
			v.Missing = append(v.Missing, k)
		}
	}
	return v, nil
}

// Close closes the open transit and returns its arrival event (§9), or nil
// with none open. The event is kept in the persisted record, pending, in the
// same write that ends the open transit; the caller journals it and then
// calls Journalled. If that write fails, the transit stays open.
func (t *Tracker) Close(now time.Time, offline bool, newID func() string) (*customs.Event, error) {
	if t.open == nil {
		return nil, nil
	}
	ev, err := t.closeEvent(now, offline, newID)
	if err != nil {
		return nil, err
	}
	open, closing := t.open, t.closing
	t.open, t.closing = nil, append(slices.Clone(t.closing), ev)
	if err := t.save(); err != nil {
		t.open, t.closing = open, closing
		return nil, err
	}
	return ev, nil
}

// closeEvent builds the arrival event of the open transit.
func (t *Tracker) closeEvent(now time.Time, offline bool, newID func() string) (*customs.Event, error) {
	v, err := t.View()
	if err != nil || v == nil {
		return nil, err
	}
	ok := v.Sealed && len(v.Foreign) == 0
	for _, s := range v.SealsExpected {
		if !slices.Contains(v.Seals, s) {
			ok = false
		}
	}
	tr := v.Transit
	// counted is the transit's own contents seen, so that expected −
	// counted is what is missing; scans of other things are listed in extra.
	expected, counted := v.Expected, v.CountedOK
	ev := &customs.Event{ID: newID(), Kind: customs.EventArrival, Station: t.station, Role: "arrival", At: now.UTC(),
		Transit: &tr, SealsExpected: nonNil(v.SealsExpected), SealsSeen: nonNil(v.Seals), SealsOK: &ok,
		Expected: &expected, Counted: &counted, Missing: nonNilS(v.Missing), Extra: nonNilS(v.Extra), Offline: &offline}
	return ev, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilS(s []customs.Subject) []customs.Subject {
	if s == nil {
		return []customs.Subject{}
	}
	return s
}
