package store

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cargogate/cargogate/internal/tstime"
)

// Policy is the retention in force: how long orders and delivered events
// are kept, and how often pruning runs.
type Policy struct {
	OrdersDays int
	EventsDays int
	Interval   time.Duration
}

// OrderPruner is the store's retention of orders and subjects; it judges
// age at min(wall, its stored time floor) itself (*Store.Prune).
type OrderPruner interface {
	Prune(wall time.Time, keep time.Duration, max int) (PruneResult, error)
}

// DeliveredPruner is the journal's retention of delivered events.
type DeliveredPruner interface {
	PruneDelivered(before time.Time, max int) (int, error)
}

// TimeSource is what retention reads of the gateway's clock.
type TimeSource interface {
	Wall() time.Time
	Floor() time.Time
}

var _ OrderPruner = (*Store)(nil)

// pruneBatch bounds the keys one pruning transaction removes.
const pruneBatch = 2000

// Retainer prunes what has left the terminal, orders from the store and
// delivered events from the journal, every Policy.Interval. SetPolicy
// changes the policy in force (a configuration reload).
type Retainer struct {
	orders  OrderPruner
	events  DeliveredPruner
	clk     TimeSource
	log     *slog.Logger
	policy  atomic.Pointer[Policy]
	changed chan struct{} // the interval may have changed

	// Time is the clock the interval runs on; nil: the real one. Set it
	// before Run.
	Time tstime.Clock
}

// NewRetainer returns a retainer with policy p in force; log may be nil.
func NewRetainer(orders OrderPruner, events DeliveredPruner, clk TimeSource, p Policy, log *slog.Logger) *Retainer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Retainer{orders: orders, events: events, clk: clk, log: log, changed: make(chan struct{}, 1)}
	r.policy.Store(&p)
	return r
}

// Policy returns the policy in force.
func (r *Retainer) Policy() Policy { return *r.policy.Load() }

// SetPolicy puts p in force; a new interval counts from now.
func (r *Retainer) SetPolicy(p Policy) {
	r.policy.Store(&p)
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Run prunes every interval until ctx is done, in transactions of at most
// a few thousand keys, so that ingest and scans never wait long behind it.
// Age is judged at the earlier of the wall clock and the time floor
// (central's newest signed timestamp): a wall clock jumped forward prunes
// nothing more, and with no central time yet nothing is pruned. The store
// applies the same bound to the orders itself.
func (r *Retainer) Run(ctx context.Context) error {
	interval := r.Policy().Interval
	t, tc := tstime.Or(r.Time).NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.changed:
			if p := r.Policy(); p.Interval != interval {
				interval = p.Interval
				t.Reset(interval)
			}
			continue
		case <-tc:
		}
		r.prune(ctx)
	}
}

// prune runs one round of pruning with the policy in force.
func (r *Retainer) prune(ctx context.Context) {
	p := r.Policy()
	now := RetentionNow(r.clk)
	var orders, subjects, events int
	for ctx.Err() == nil && !now.IsZero() {
		res, err := r.orders.Prune(now, time.Duration(p.OrdersDays)*24*time.Hour, pruneBatch)
		if err != nil {
			r.log.Error("retention: orders", "err", err)
			break
		}
		orders, subjects = orders+res.Orders, subjects+res.Subjects
		if res.Done {
			break
		}
	}
	for ctx.Err() == nil && !now.IsZero() {
		n, err := r.events.PruneDelivered(now.AddDate(0, 0, -p.EventsDays), pruneBatch)
		if err != nil {
			r.log.Error("retention: events", "err", err)
			break
		}
		events += n
		if n == 0 {
			break
		}
	}
	if orders+subjects+events > 0 {
		r.log.Info("retention", "orders_pruned", orders, "subjects_pruned", subjects, "events_pruned", events)
	}
}

// RetentionNow is the time retention judges age at: min(wall, time
// floor), zero while central has vouched for no time.
func RetentionNow(clk TimeSource) time.Time {
	wall, floor := clk.Wall(), clk.Floor()
	if floor.Before(wall) {
		return floor
	}
	return wall
}

// KeepWall persists clk's latest reading every interval and once when ctx
// is done, so that a restart with the wall clock set back revives no
// release that expired while the gateway ran (each batch stores it too).
// log may be nil.
func (s *Store) KeepWall(ctx context.Context, clk interface{ Now() time.Time }, every time.Duration, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t, tc := tstime.Or(s.time).NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.SaveWall(clk.Now()); err != nil {
				log.Error("clock: saving the wall reading", "err", err)
			}
			return nil
		case <-tc:
			if err := s.SaveWall(clk.Now()); err != nil {
				log.Error("clock: saving the wall reading", "err", err)
			}
		}
	}
}
