package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/gateway/clock"
	"github.com/cargogate/cargogate/gateway/store"
)

// deliveredPruner is the journal's retention of delivered events.
type deliveredPruner interface {
	PruneDelivered(before time.Time, max int) (int, error)
}

// orderPruner is the store's retention of orders and subjects; it judges
// age at min(wall, its stored time floor) itself.
type orderPruner interface {
	Prune(wall time.Time, keep time.Duration, max int) (store.PruneResult, error)
}

// timeSource is what retention reads of the gateway's clock.
type timeSource interface {
	Wall() time.Time
	Floor() time.Time
}

// retention is the retention configuration in force; a reload changes it
// in place.
type retention struct {
	cfg     atomic.Pointer[config.Retention]
	changed chan struct{} // the interval may have changed
}

func newRetention(r config.Retention) *retention {
	rt := &retention{changed: make(chan struct{}, 1)}
	rt.cfg.Store(&r)
	return rt
}

func (rt *retention) get() config.Retention { return *rt.cfg.Load() }

func (rt *retention) set(r config.Retention) {
	rt.cfg.Store(&r)
	select {
	case rt.changed <- struct{}{}:
	default:
	}
}

// retain prunes what has left the terminal every retention.interval, in
// transactions of at most a few thousand keys, so that ingest and scans
// never wait long behind it. Age is judged at the earlier of the wall clock
// and the time floor (central's newest signed timestamp): a wall clock
// jumped forward prunes nothing more, and with no central time yet nothing
// is pruned. The store applies the same bound to the orders itself. A new
// interval counts from when it is set.
func retain(ctx context.Context, st orderPruner, jr deliveredPruner, clk timeSource, rt *retention, log *slog.Logger) error {
	interval := rt.get().Interval
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rt.changed:
			if r := rt.get(); r.Interval != interval {
				interval = r.Interval
				t.Reset(interval)
			}
			continue
		case <-t.C:
		}
		r := rt.get()
		now := retentionNow(clk)
		var orders, subjects, events int
		for ctx.Err() == nil && !now.IsZero() {
			res, err := st.Prune(now, time.Duration(r.OrdersDays)*24*time.Hour, 2000)
			if err != nil {
				log.Error("retention: orders", "err", err)
				break
			}
			orders, subjects = orders+res.Orders, subjects+res.Subjects
			if res.Done {
				break
			}
		}
		for ctx.Err() == nil && !now.IsZero() {
			n, err := jr.PruneDelivered(now.AddDate(0, 0, -r.EventsDays), 2000)
			if err != nil {
				log.Error("retention: events", "err", err)
				break
			}
			events += n
			if n == 0 {
				break
			}
		}
		if orders+subjects+events > 0 {
			log.Info("retention", "orders_pruned", orders, "subjects_pruned", subjects, "events_pruned", events)
		}
	}
}

// retentionNow is the time retention judges age at: min(wall, time floor),
// zero while central has vouched for no time.
func retentionNow(clk timeSource) time.Time {
	wall, floor := clk.Wall(), clk.Floor()
	if floor.Before(wall) {
		return floor
	}
	return wall
}

// saveWall persists the clock's latest reading every interval and once at
// shutdown, so that a restart with the wall clock set back revives no
// release that expired while the gateway ran (each batch stores it too).
func saveWall(ctx context.Context, st *store.Store, clk *clock.Clock, every time.Duration, log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := st.SaveWall(clk.Now()); err != nil {
				log.Error("clock: saving the wall reading", "err", err)
			}
			return nil
		case <-t.C:
			if err := st.SaveWall(clk.Now()); err != nil {
				log.Error("clock: saving the wall reading", "err", err)
			}
		}
	}
}
