package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/gateway/clock"
	"github.com/cargogate/cargogate/gateway/store"
)

// deliveredPruner is the journal's retention of delivered events.
type deliveredPruner interface {
	PruneDelivered(before time.Time, max int) (int, error)
}

// retain prunes what has left the terminal every retention.interval, in
// transactions of at most a few thousand keys, so that ingest and scans
// never wait long behind it. Age is judged at the earlier of the wall clock
// and the time floor (central's newest signed timestamp): a wall clock
// jumped forward prunes nothing more, and with no central time yet nothing
// is pruned. The store applies the same bound to the orders itself.
func retain(ctx context.Context, st *store.Store, jr deliveredPruner, clk *clock.Clock, r config.Retention, log *slog.Logger) error {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
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
func retentionNow(clk *clock.Clock) time.Time {
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
