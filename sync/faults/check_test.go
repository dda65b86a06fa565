package faults

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/journal"
)

type report struct {
	Orders     uint64 // ledger head = orders applied
	Events     int    // events in the gateway's journal = received by central
	Scans      int    // scans written by the test
	Passes     int
	Lost       int    // journalled events central never received
	DupIDs     uint64 // duplicates central dropped by id
	DupScans   int    // a scan recorded twice under different ids
	Stops      int
	Violations int // PASS scans the ledger did not release
	StopDefect int // STOP scans the ledger released in every state the gateway may have held
	Unchecked  int // scans whose window was too large to judge
	Late       int // scan events first received after a later one of their station
}

func (r report) String() string {
	return fmt.Sprintf("orders %d applied; events %d received exactly once (lost %d, duplicates dropped by id %d, duplicates under another id %d, out of decision order %d); scans %d (%d PASS, %d STOP), PASS not released by the ledger %d, STOP the ledger released %d, unchecked %d",
		r.Orders, r.Events, r.Lost, r.DupIDs, r.DupScans, r.Late, r.Scans, r.Passes, r.Stops, r.Violations, r.StopDefect, r.Unchecked)
}

// finalCheck ends a scenario: the gateway converges, is stopped, and its
// journal and status are compared with central's ledger and events.
//   - every order of the ledger is applied (applied_seq = head);
//   - every event the gateway journalled reached central exactly once
//     after de-duplication by id, and central has no other;
//   - every scan whose gate frame was seen is recorded once, with that
//     decision; a scan is never recorded twice under two ids;
//   - every PASS scan is one the ledger released in some state the gateway
//     may have held when it decided, and every STOP (but for reason error
//     or invalid_code) one it did not release in some such state (see
//     central.CheckPass, CheckStop).
func (s *site) finalCheck() report { return s.check(false) }

// finalCheckAllowConflicts is finalCheck for a scenario that forged
// conflicting orders on purpose.
func (s *site) finalCheckAllowConflicts() report { return s.check(true) }

func (s *site) check(conflictsOK bool) report {
	s.t.Helper()
	_, st := s.converge()
	c := s.c()
	r := report{Orders: c.Head()}
	if st.Link.Applied != r.Orders || (st.Link.Conflicts != 0 && !conflictsOK) {
		s.t.Errorf("applied_seq %d, ledger head %d, conflicts %d", st.Link.Applied, r.Orders, st.Link.Conflicts)
	}
	s.gw.Stop(10 * time.Second)
	j, err := journal.Open(filepath.Join(s.o.dataDir, "events.db"), journal.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		s.t.Fatal(err)
	}
	journalled := map[string]bool{}
	pending := 0
	err = j.ForEach(func(e journal.Entry, delivered bool) error {
		var ev customs.Event
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			return err
		}
		journalled[ev.ID] = true
		if !delivered {
			pending++
		}
		return nil
	})
	j.Close()
	if err != nil {
		s.t.Fatal(err)
	}
	if pending != 0 {
		s.t.Errorf("%d events still pending after the outbox showed empty", pending)
	}
	received := map[string]customs.Event{}
	byCode := map[string][]customs.Event{}
	newest := map[string]time.Time{} // per station, the latest scan received so far
	for _, e := range c.Events(gwName) {
		if e.Kind == customs.EventScan {
			if e.At.Before(newest[e.Station]) {
				r.Late++
				if !s.o.lateOK && r.Late <= 10 {
					s.t.Errorf("scan event %s (%q, at %s) received after a later one of station %s", e.ID, e.Code, e.At, e.Station)
				}
			} else {
				newest[e.Station] = e.At
			}
		}
		if _, dup := received[e.ID]; dup {
			s.t.Errorf("central holds event %s twice", e.ID)
		}
		received[e.ID] = e
		if e.Kind == customs.EventScan {
			byCode[e.Code] = append(byCode[e.Code], e)
		}
	}
	r.Events = len(received)
	for id := range journalled {
		if _, ok := received[id]; !ok {
			r.Lost++
			if r.Lost <= 10 {
				s.t.Errorf("event %s journalled, never received by central", id)
			}
		}
	}
	for id := range received {
		if !journalled[id] {
			s.t.Errorf("central received event %s the gateway never journalled", id)
		}
	}
	s.smu.Lock()
	scans := append([]scanRec(nil), s.scans...)
	s.smu.Unlock()
	r.Scans = len(scans)
	codes := map[string]int{}
	for _, sc := range scans {
		codes[sc.code]++
	}
	for _, sc := range scans {
		evs := byCode[sc.code]
		if codes[sc.code] > 1 {
			continue // scanned twice on purpose: counted below as a whole
		}
		switch {
		case len(evs) > 1:
			r.DupScans++
			s.t.Errorf("scan %q recorded %d times under different ids", sc.code, len(evs))
		case sc.frame != "" && len(evs) == 0:
			r.Lost++
			s.t.Errorf("scan %q: gate told %s, no event at central", sc.code, sc.frame)
		case sc.frame != "" && evs[0].Decision != strings.ToLower(sc.frame):
			s.t.Errorf("scan %q: gate told %s, event says %s", sc.code, sc.frame, evs[0].Decision)
		}
	}
	for code, n := range codes {
		if n > 1 && len(byCode[code]) > n {
			r.DupScans++
			s.t.Errorf("code %q scanned %d times, recorded %d times", code, n, len(byCode[code]))
		}
	}
	a, err := c.Audit(gwName)
	if err != nil {
		s.t.Fatal(err)
	}
	r.Passes, r.Stops, r.DupIDs, r.Violations, r.StopDefect, r.Unchecked = a.Passes, a.Stops, a.DuplicatesDropped, len(a.Violations), len(a.StopDefects), a.Unchecked
	for i, v := range a.Violations {
		if i < 10 {
			s.t.Errorf("ledger check: PASS %s", v)
		}
	}
	for i, v := range a.StopDefects {
		switch {
		case i >= 10:
		case s.o.stopDefectsOK:
			s.t.Logf("ledger check: STOP %s", v)
		default:
			s.t.Errorf("ledger check: STOP %s", v)
		}
	}
	s.t.Logf("final check: %s", r)
	return r
}
