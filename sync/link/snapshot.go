package link

import (
	"cmp"
	"slices"
	"time"

	"github.com/cargogate/cargogate/gateway/persist"
)

// Snapshot is the link's state for status pages and metrics.
type Snapshot struct {
	Online       bool              `json:"online"`
	PubOnline    bool              `json:"events_online"`
	Since        time.Time         `json:"since"`
	Watermark    uint64            `json:"applied_seq"`
	Head         uint64            `json:"head_seq"`
	MaxSeq       uint64            `json:"max_seq"`
	Lag          uint64            `json:"lag"`
	Outbox       int               `json:"outbox"`
	OutboxBytes  int64             `json:"outbox_bytes"`
	Rejected     uint64            `json:"rejected"`
	RejectedBy   map[string]uint64 `json:"rejected_by"`
	LastReject   string            `json:"last_reject,omitempty"`
	Applied      uint64            `json:"orders_applied"`
	Duplicates   uint64            `json:"orders_duplicate"`
	Conflicts    uint64            `json:"orders_conflict"`
	Resyncs      uint64            `json:"resyncs"`
	Resyncing    bool              `json:"resyncing"`
	EventsSent   uint64            `json:"events_sent"`
	BrokerClient string            `json:"client_id"`
	// Broker and EventsBroker are the brokers the order and the events
	// connections are on ("": down); Brokers the list they try in turn.
	Broker       string   `json:"broker"`
	EventsBroker string   `json:"events_broker"`
	Brokers      []string `json:"brokers"`
	// GapSince is when the open gap (Lag > 0) was first seen; ResyncSent
	// when the outstanding resync went out.
	GapSince   *time.Time `json:"gap_since,omitempty"`
	ResyncSent *time.Time `json:"resync_sent,omitempty"`
	// StoreWritable is false while the order store fails to commit (disk
	// full, I/O error): orders are then not acknowledged.
	StoreWritable bool   `json:"store_writable"`
	StoreError    string `json:"store_error,omitempty"`
	// OutboxWritable is false while the outbox fails to commit.
	OutboxWritable bool                  `json:"outbox_writable"`
	OutboxHealth   *persist.OutboxHealth `json:"outbox_health,omitempty"`
	// OutboxOldest is the age in seconds of the oldest event not yet
	// acknowledged by central (amendment 3).
	OutboxOldest float64 `json:"outbox_oldest_s"`
	// Ready: both stores commit. Deciding goes on when not ready, but
	// orders are not taken and scans may be decided STOP (error).
	Ready  bool     `json:"ready"`
	Alarms []string `json:"alarms,omitempty"`
	// RedeliverDue: events were sent and are still waiting for central's
	// events_ack; those not acknowledged within Options.AckTimeout are sent
	// again.
	RedeliverDue bool `json:"redeliver_due"`
	// Unappliable counts orders that could not be applied (amendment 2),
	// FieldsDropped the out-of-form fields set aside in orders applied.
	Unappliable   uint64 `json:"orders_unappliable"`
	FieldsDropped uint64 `json:"order_fields_dropped"`
	// Gaps are the seqs held open by orders that cannot be applied, lowest
	// first, at most maxGapsShown of GapCount.
	Gaps     []GapSeq `json:"unappliable_seqs,omitempty"`
	GapCount int      `json:"unappliable_open"`
	// Undelivered are the runs of seqs a replay was asked for and did not
	// deliver (held open like Gaps), lowest first, at most maxGapsShown;
	// UndeliveredOpen counts their seqs.
	Undelivered     []SeqRange `json:"undelivered_seqs,omitempty"`
	UndeliveredOpen uint64     `json:"undelivered_open"`
}

// GapSeq is a seq received only in orders that cannot be applied: it stays
// a gap (amendment 2), so the watermark stops below it.
type GapSeq struct {
	Seq   uint64    `json:"seq"`
	Since time.Time `json:"since"` // first received
	Error string    `json:"error"` // why the last copy could not be applied
	Seen  int       `json:"seen"`  // copies received
}

const maxGapsShown = 20

// Snapshot returns the link's state.
func (l *Link) Snapshot() Snapshot {
	s := Snapshot{Online: l.online.Load(), PubOnline: l.out.Online(), Since: time.Unix(0, l.since.Load()).UTC(),
		Watermark: l.watermark.Load(), Head: l.head.Load(), MaxSeq: l.maxSeq.Load(),
		Rejected: l.C.Rejected.Load(), Applied: l.C.Applied.Load(), Duplicates: l.C.Duplicates.Load(),
		Conflicts: l.C.Conflicts.Load(), Resyncs: l.C.Resyncs.Load(), EventsSent: l.C.EventsSent.Load(),
		BrokerClient: l.clientID()}
	top := max(s.Head, s.MaxSeq, l.gapTop.Load())
	if top > s.Watermark {
		s.Lag = top - s.Watermark
	}
	s.Outbox, s.OutboxBytes = l.outbox.Depth()
	l.mu.Lock()
	s.RejectedBy = make(map[string]uint64, len(l.rejectedBy))
	for k, v := range l.rejectedBy {
		s.RejectedBy[k] = v
	}
	s.LastReject = l.lastReject
	s.Resyncing = l.outstanding != ""
	s.GapCount = len(l.gaps)
	for _, g := range l.gaps {
		s.Gaps = append(s.Gaps, *g)
	}
	s.UndeliveredOpen = undeliveredCount(l.undelivered)
	s.Undelivered = slices.Clone(l.undelivered[:min(len(l.undelivered), maxGapsShown)])
	l.mu.Unlock()
	slices.SortFunc(s.Gaps, func(a, b GapSeq) int { return cmp.Compare(a.Seq, b.Seq) })
	if len(s.Gaps) > maxGapsShown {
		s.Gaps = s.Gaps[:maxGapsShown]
	}
	s.Unappliable, s.FieldsDropped = l.C.Unappliable.Load(), l.C.FieldsDropped.Load()
	if n := l.gapSince.Load(); n != 0 {
		t := time.Unix(0, n).UTC()
		s.GapSince = &t
	}
	if n := l.resyncAt.Load(); n != 0 && s.Resyncing {
		t := time.Unix(0, n).UTC()
		s.ResyncSent = &t
	}
	l.health(&s)
	s.RedeliverDue = l.out.RedeliverDue()
	if l.orders != nil {
		if s.Online {
			s.Broker = l.orders.Current()
		}
		if s.PubOnline {
			s.EventsBroker = l.events.Current()
		}
		s.Brokers = l.orders.URLs()
	}
	return s
}
