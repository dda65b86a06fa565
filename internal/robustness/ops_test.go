package robustness

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/store"
)

func (r *runner) do(o *op) error {
	g := r.gw
	switch o.Kind {
	case opIssue:
		r.central = append(r.central, o.Orders...)
	case opDeliver:
		ms := append(r.late, o.Msgs...)
		if len(r.late) > 0 {
			r.res.Faults["late_lookup_reply"] += len(r.late)
		}
		r.late = nil
		if err := r.deliver(ms); err != nil {
			return err
		}
		return r.checkWatermark()
	case opKill:
		r.res.Faults["kill9"]++
		if err := g.halt(); err != nil {
			return err
		}
		acked, err := g.killIngest(o.Msgs, o.KillAfter)
		if err != nil {
			return err
		}
		var again []*msg
		for i, ok := range acked {
			if ok {
				r.acked(o.Msgs[i])
			} else {
				again = append(again, o.Msgs[i])
			}
		}
		r.res.Messages += len(o.Msgs)
		if err := r.start(); err != nil {
			return err
		}
		// Nothing acknowledged is lost to the kill.
		if err := r.checkDurable(); err != nil || r.res.Fail != "" {
			return err
		}
		// The broker sends again what was not acknowledged.
		if err := r.deliver(again); err != nil {
			return err
		}
		return r.checkWatermark()
	case opClock:
		if off := o.Wall.Sub(o.True); off != r.offset {
			r.res.Faults["clock_jump"]++
			r.offset = off
		}
		g.wall.Store(o.Wall.UnixNano())
		if o.Wall.After(r.seenEver) {
			r.seenEver = o.Wall
		}
	case opRetention:
		r.res.Faults["retention"]++
		r.retained = true
		// One round of the gateway's retainer (store.Retainer): age judged
		// at store.RetentionNow (min of the wall clock and the time floor),
		// Prune in transactions of 2,000 keys until done.
		now := store.RetentionNow(g.clk)
		for range 10000 {
			if now.IsZero() {
				break
			}
			res, err := g.st.Prune(now, time.Duration(o.Days)*24*time.Hour, 2000)
			if err != nil {
				return err
			}
			if res.Done {
				break
			}
		}
	case opRestart:
		r.res.Faults["restart"]++
		if err := g.halt(); err != nil {
			return err
		}
		if err := r.start(); err != nil {
			return err
		}
		return r.checkDurable()
	case opReload:
		r.res.Faults["reload"]++
		g.keys, g.lp = slices.Clone(o.Kids), o.LP
		g.lk.SetKeys(keyring(g.keys))
		g.stn.SetClassifier(classifier(g.lp))
	case opOutbox:
		if o.Block {
			r.res.Faults["outbox_blocked"]++
		}
		r.blocked = o.Block
	case opOnline:
		if !o.Online {
			r.res.Faults["link_down"]++
		}
		r.online = o.Online
		g.sl.online = o.Online
	case opDecide:
		r.lookup = o.Lookup
		for _, s := range o.Subjects {
			if err := r.decide(s); err != nil {
				return err
			}
			if r.res.Fail != "" {
				return nil
			}
		}
		if !r.blocked {
			// Central acknowledges the events: the outbox drains.
			for {
				es, err := g.jr.Pending(1000, 1<<30)
				if err != nil {
					return err
				}
				if len(es) == 0 {
					break
				}
				if err := g.jr.Delivered(es); err != nil {
					return err
				}
			}
			r.pending = 0
		}
	}
	return nil
}

// decide scans s at the gate station and checks the outcome.
func (r *runner) decide(s customs.Subject) error {
	g := r.gw
	wall := g.wallNow()
	if wall.After(r.seen) {
		r.seen = wall
	}
	if wall.After(r.seenEver) {
		r.seenEver = wall
	}
	at := wall
	if r.floor.After(at) {
		at = r.floor
	}
	if r.seen.After(at) {
		at = r.seen
	}
	// The latest time the gateway may judge at: its floor may count
	// orders it could not apply, and every commit reads the wall clock.
	atHigh := at
	if r.floorAll.After(atHigh) {
		atHigh = r.floorAll
	}
	if r.seenEver.After(atHigh) {
		atHigh = r.seenEver
	}
	full := r.pending >= outboxMax
	out := g.stn.Handle(context.Background(), device.Read{Line: []byte(s.ID), At: wall})
	r.res.Decisions++
	r.res.Reasons[out.Reason]++
	if out.Pass {
		r.res.Passes++
	}
	told := g.gate.take()
	if told == nil || *told != out.Pass {
		return fmt.Errorf("%s: decided pass=%v but the gate was told %v", s, out.Pass, told)
	}
	if !full {
		r.pending++
	}
	fail := func(why string) {
		r.res.Fail = fmt.Sprintf("FALSE PASS of %s at %s (wall %s): %s", s, at.Format(time.RFC3339), wall.Format(time.RFC3339), why)
	}
	switch {
	case full:
		r.res.Faults["outbox_full_scan"]++
		if out.Pass {
			fail("the outbox is full: the decision cannot be recorded")
		} else if out.Reason != customs.ReasonError {
			r.res.ReasonDiff++
		}
		return nil
	case isLP(s.ID) && !g.lp:
		if out.Pass || out.Reason != customs.ReasonInvalidCode {
			if out.Pass {
				fail("LP codes are not configured")
			}
			r.res.ReasonDiff++
		}
		return nil
	}
	v := r.oracle().decide(s, at)
	switch {
	case out.Pass && !v.Pass:
		fail("the oracle says STOP " + strings.Join(v.Reasons, "|") + ": " + v.Why)
	case !out.Pass && v.Pass:
		// The gateway's clock may stand later than the model's (atHigh):
		// judged at that time too.
		if r.oracle().decide(s, atHigh).Pass {
			r.res.StopOracle++
			if len(r.res.StopNotes) < 5 {
				r.res.StopNotes = append(r.res.StopNotes, fmt.Sprintf("op %d: STOP %s of %s, oracle PASS: %s", r.opIndex, out.Reason, s, v.Why))
			}
			if !r.retained {
				r.res.Fail = fmt.Sprintf("STOP WITHOUT CAUSE (%s) of %s at %s (wall %s), no retention ran: the oracle says PASS: %s",
					out.Reason, s, at.Format(time.RFC3339), wall.Format(time.RFC3339), v.Why)
			}
		}
	case !out.Pass && !v.allows(out.Reason) && !r.oracle().decide(s, atHigh).allows(out.Reason):
		r.res.ReasonDiff++
		if len(r.res.StopNotes) < 5 {
			r.res.StopNotes = append(r.res.StopNotes, fmt.Sprintf("op %d: STOP %s of %s, oracle STOP %v: %s", r.opIndex, out.Reason, s, v.Reasons, v.Why))
		}
	}
	return nil
}

// isLP reports whether id has the form only the site's parcel pattern
// LP[0-9]{14} reads.
func isLP(id string) bool { return len(id) == 16 && strings.HasPrefix(id, "LP") }
