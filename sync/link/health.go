package link

import (
	"fmt"
	"sync"
	"time"

	"github.com/cargogate/cargogate/gateway/persist"
	"github.com/cargogate/cargogate/internal/tstime"
)

// OutboxHealth is the optional ability of an Outbox to report its bounds,
// alarm and refusals (journal.Journal has it).
type OutboxHealth interface {
	Health() persist.OutboxHealth
	OldestPending() (time.Time, bool, error)
}

// watchedStore records whether the store can still commit, for status and
// readiness. A failed Apply marks it not writable; a later Apply that
// commits orders marks it writable again. An Apply without orders (a head)
// that commits proves little on a full disk, so it clears nothing.
type watchedStore struct {
	Store
	time    tstime.Clock
	mu      sync.Mutex
	lastErr string
	since   time.Time // when the store stopped being writable
}

func (w *watchedStore) Apply(b persist.Batch) (persist.Result, error) {
	res, err := w.Store.Apply(b)
	w.mu.Lock()
	switch {
	case err != nil:
		if w.lastErr == "" {
			w.since = w.time.Now()
		}
		w.lastErr = err.Error()
	case len(b.Orders) > 0:
		w.lastErr = ""
	}
	w.mu.Unlock()
	return res, err
}

func (w *watchedStore) writable() (ok bool, lastErr string, since time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr == "", w.lastErr, w.since
}

// health fills the snapshot's readiness and alarms.
func (l *Link) health(s *Snapshot) {
	s.StoreWritable = true
	if w, ok := l.store.(*watchedStore); ok {
		var since time.Time
		s.StoreWritable, s.StoreError, since = w.writable()
		if !s.StoreWritable {
			s.Alarms = append(s.Alarms, "order store not writable since "+since.UTC().Format(time.RFC3339)+
				": orders are not acknowledged and stay with the broker or central ("+s.StoreError+")")
		}
	}
	s.OutboxWritable = true
	if h, ok := l.outbox.(OutboxHealth); ok {
		oh := h.Health()
		s.OutboxHealth = &oh
		s.OutboxWritable = oh.Writable
		if at, ok, err := h.OldestPending(); err == nil && ok && !at.IsZero() {
			s.OutboxOldest = max(0, tstime.Since(l.time, at).Seconds())
		}
		if oh.Alarm {
			s.Alarms = append(s.Alarms, "outbox nearly full: events are not reaching central")
		}
		if oh.Refused > 0 {
			s.Alarms = append(s.Alarms, "outbox was full: scans were decided STOP (error) because their events could not be kept")
		}
		if !oh.Writable {
			s.Alarms = append(s.Alarms, "outbox not writable: scans are decided STOP (error) ("+oh.LastError+")")
		}
	}
	if s.GapCount > 0 && len(s.Gaps) > 0 {
		g := s.Gaps[0]
		msg := fmt.Sprintf("order seq %d cannot be applied (%s): applied_seq stays at %d below it; central is asked for it again every resync_timeout",
			g.Seq, g.Error, s.Watermark)
		if s.GapCount > 1 {
			msg += fmt.Sprintf("; %d such seqs open", s.GapCount)
		}
		s.Alarms = append(s.Alarms, msg)
	}
	if s.UndeliveredOpen > 0 && len(s.Undelivered) > 0 {
		r := s.Undelivered[0]
		msg := fmt.Sprintf("order seqs %s not delivered by central's replay", seqRun(r.From, r.To))
		if r.Beyond {
			msg = fmt.Sprintf("order seqs %s not delivered by central's replay (announced, but above what it can replay)", seqRun(r.From, r.To))
		}
		msg += fmt.Sprintf(": applied_seq stays at %d below them; central is asked for them again every resync_timeout", s.Watermark)
		if len(s.Undelivered) > 1 {
			msg += fmt.Sprintf("; %d such seqs open", s.UndeliveredOpen)
		}
		s.Alarms = append(s.Alarms, msg)
	}
	s.Ready = s.StoreWritable && s.OutboxWritable
}

// seqRun names a run of seqs: "5" or "5–9".
func seqRun(from, to uint64) string {
	if from == to {
		return fmt.Sprint(from)
	}
	return fmt.Sprintf("%d–%d", from, to)
}
