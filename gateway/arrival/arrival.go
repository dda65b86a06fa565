// Package arrival checks a transit truck in at an arrival station (运抵,
// PROTOCOL §9): scanning the transit opens it, seal scans are checked
// against its seal order, bags and parcels are counted against its contents,
// and closing it (the transit scanned again, another transit, or
// close_after without a scan) makes one arrival event.
//
// The open transit lives in a small persisted record, not in memory, so a
// gateway restarted in the middle of an unloading resumes it.
package arrival

import (
	"encoding/json"
	"errors"
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
}

// New loads a station's open transit, if any.
func New(station string, closeAfter time.Duration, p Persister, c Contents) (*Tracker, error) {
	t := &Tracker{station: station, closeAfter: closeAfter, store: p, contents: c}
	raw, err := p.GetState(t.key())
	if err != nil {
		return nil, fmt.Errorf("arrival %s: load: %w", station, err)
	}
	if raw != nil {
		var o Open
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, fmt.Errorf("arrival %s: load: %w", station, err)
		}
		t.open = &o
	}
	return t, nil
}

func (t *Tracker) key() string { return "arrival/" + t.station }

func (t *Tracker) save() error {
	if t.open == nil {
		return t.store.PutState(t.key(), nil)
	}
	raw, err := json.Marshal(t.open)
	if err != nil {
		return err
	}
	return t.store.PutState(t.key(), raw)
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

// ErrNoneOpen is returned by Seal with no transit open.
var ErrNoneOpen = errors.New("no transit open")

// ScanTransit handles a scan of transit tr: it closes the open transit (tr
// itself, or another) and, if tr was not the one open, opens tr. It returns
// the arrival event of the closed transit, if one closed.
func (t *Tracker) ScanTransit(tr customs.Subject, now time.Time, newID func() string) (*customs.Event, error) {
	var ev *customs.Event
	if t.open != nil {
		same := t.open.Transit == tr
		e, err := t.Close(now, newID)
		if err != nil {
			return nil, err
		}
		ev = e
		if same {
			return ev, nil
		}
	}
	t.open = &Open{Transit: tr, OpenedAt: now, LastLine: now}
	return ev, t.save()
}

// Seal marks a seal seen on the open transit.
func (t *Tracker) Seal(id string, now time.Time) error {
	if t.open == nil {
		return ErrNoneOpen
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

// Close closes the open transit and returns its arrival event (§9). The
// caller journals the event; the open record is removed here.
func (t *Tracker) Close(now time.Time, newID func() string) (*customs.Event, error) {
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
		Expected: &expected, Counted: &counted, Missing: nonNilS(v.Missing), Extra: nonNilS(v.Extra)}
	t.open = nil
	return ev, t.save()
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
