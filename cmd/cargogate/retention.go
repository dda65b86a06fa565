package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/gateway/store"
)

// deliveredPruner is the journal's retention of delivered events.
type deliveredPruner interface {
	PruneDelivered(before time.Time, max int) (int, error)
}

// orderPruner is the store's retention of orders and subjects.
type orderPruner interface {
	Prune(cutoff time.Time, max int) (store.PruneResult, error)
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
// never wait long behind it. A new interval counts from when it is set.
func retain(ctx context.Context, st orderPruner, jr deliveredPruner, rt *retention, log *slog.Logger) error {
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
