package site

import (
	"fmt"
	"strings"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// report is what the final check measured over the whole site.
type report struct {
	Gateways   int
	Orders     uint64 // ledger head = orders applied by every gateway
	Events     int    // events central holds from the gateways
	Scans      int    // scans written by the test, each answered
	Passes     int
	Stops      int
	Lost       int    // answered scans with no event at central
	Dups       int    // events held twice, or a scan recorded twice
	DupDropped uint64 // events central received again and dropped by id
	Violations int    // PASS scans the ledger did not release
	StopDefect int    // STOP scans the ledger released in every state the gateway may have held
	Unchecked  int
	Resyncs    uint64
}

func (r report) String() string {
	return fmt.Sprintf("%d gateways; orders %d applied by each; events %d at central exactly once (lost %d, held twice %d, duplicates dropped by id %d); scans %d (%d PASS, %d STOP), PASS not released by the ledger %d, STOP the ledger released %d, unchecked %d; resyncs %d",
		r.Gateways, r.Orders, r.Events, r.Lost, r.Dups, r.DupDropped, r.Scans, r.Passes, r.Stops, r.Violations, r.StopDefect, r.Unchecked, r.Resyncs)
}

// finalCheck ends a scenario (traffic and scanning stopped): every gateway
// converges, then for each
//   - applied_seq equals central's head, with no conflicting order;
//   - its outbox is empty: central acknowledged every event;
//   - every scan the test wrote was answered and is recorded at central
//     exactly once, with the decision the gate showed, and central holds no
//     scan the test did not make and no event id twice;
//   - the fault suite's ledger check (central.Audit: CheckPass for every
//     PASS, CheckStop for every STOP) finds no PASS the ledger did not
//     release and no STOP it released in every state the gateway may have
//     held.
func (f *fleet) finalCheck() report {
	f.t.Helper()
	head := f.c.Head()
	took := f.waitAll(fmt.Sprintf("applied_seq = head %d, outbox empty", head), func(_ *gateway, st gwStatus) bool {
		return st.Link.Applied >= head && st.Link.Outbox == 0 && st.Link.Online && st.Link.PubOnline
	})
	f.t.Logf("final convergence after traffic stopped: %v", took.Round(time.Millisecond))
	r := report{Gateways: len(f.gws), Orders: head}
	for _, g := range f.gws {
		st, ok := g.status()
		if !ok {
			f.t.Errorf("%s: no status", g.name)
			continue
		}
		r.Resyncs += st.Link.Resyncs
		if st.Link.Applied != head || st.Link.Conflicts != 0 {
			f.t.Errorf("%s: applied_seq %d, ledger head %d, conflicts %d", g.name, st.Link.Applied, head, st.Link.Conflicts)
		}
		f.checkGateway(g, &r)
	}
	r.DupDropped = f.c.Stats().DuplicatesDropped
	// With orders issued, the ledger check must have judged something: a
	// run with no PASS, or whose windows were mostly too wide to search,
	// proves nothing.
	if r.Orders > 0 && (r.Passes == 0 || r.Unchecked*100 > r.Scans) {
		f.t.Errorf("ledger check too thin: %d PASS, %d of %d scans unchecked (at most 1%%)", r.Passes, r.Unchecked, r.Scans)
	}
	f.t.Logf("final check: %s", r)
	return r
}

func (f *fleet) checkGateway(g *gateway, r *report) {
	ids := map[string]bool{}
	byCode := map[string][]customs.Event{}
	for _, e := range f.c.Events(g.name) {
		if ids[e.ID] {
			r.Dups++
			f.t.Errorf("%s: central holds event %s twice", g.name, e.ID)
		}
		ids[e.ID] = true
		if e.Kind == customs.EventScan {
			byCode[e.Code] = append(byCode[e.Code], e)
		}
	}
	r.Events += len(ids)
	g.mu.Lock()
	scans := append([]scanRec(nil), g.scans...)
	g.mu.Unlock()
	r.Scans += len(scans)
	scanned := map[string]bool{}
	for _, sc := range scans {
		scanned[sc.code] = true
		evs := byCode[sc.code]
		switch {
		case len(evs) == 0:
			r.Lost++
			f.t.Errorf("%s: scan %q: gate told %s, no event at central", g.name, sc.code, sc.frame)
		case len(evs) > 1:
			r.Dups++
			f.t.Errorf("%s: scan %q recorded %d times", g.name, sc.code, len(evs))
		case evs[0].Decision != strings.ToLower(sc.frame):
			f.t.Errorf("%s: scan %q: gate told %s, event says %s", g.name, sc.code, sc.frame, evs[0].Decision)
		}
	}
	for code := range byCode {
		if !scanned[code] {
			f.t.Errorf("%s: central holds a scan of %q the test never made", g.name, code)
		}
	}
	a, err := f.c.Audit(g.name)
	if err != nil {
		f.t.Fatal(err)
	}
	r.Passes += a.Passes
	r.Stops += a.Stops
	r.Violations += len(a.Violations)
	r.StopDefect += len(a.StopDefects)
	r.Unchecked += a.Unchecked
	for i, v := range a.Violations {
		if i < 5 {
			f.t.Errorf("%s: ledger check: PASS %s", g.name, v)
		}
	}
	for i, v := range a.StopDefects {
		if i < 5 {
			f.t.Errorf("%s: ledger check: STOP %s", g.name, v)
		}
	}
}
