package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/gateway/store"
)

// deliveredPruner is the journal's retention of delivered events.
type deliveredPruner interface {
	PruneDelivered(before time.Time, max int) (int, error)
}

// retain prunes what has left the terminal every retention.interval, in
// transactions of at most a few thousand keys, so that ingest and scans
// never wait long behind it.
func retain(ctx context.Context, st *store.Store, jr deliveredPruner, r config.Retention, log *slog.Logger) error {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		var orders, subjects, events int
		for ctx.Err() == nil {
			res, err := st.Prune(now.AddDate(0, 0, -r.OrdersDays), 2000)
			if err != nil {
				log.Error("retention: orders", "err", err)
				break
			}
			orders, subjects = orders+res.Orders, subjects+res.Subjects
			if res.Done {
				break
			}
		}
		for ctx.Err() == nil {
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
