package link

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/persist"
	"github.com/cargogate/cargogate/internal/liveness"
	"github.com/cargogate/cargogate/internal/tstime"
)

// control is the link's resync and status part (§5.3, §3 status): a loop of
// its own, holding only what it reads and writes of the link's shared
// state. Ingest's commits reach it through committed and doneReq, the
// order connection's (re)connections through connected.
type control struct {
	conn                     conn
	time                     tstime.Clock
	log                      *slog.Logger
	beat                     *liveness.Registry
	site                     string
	gateway                  string
	resyncTopic, statusTopic string

	// Events from the other parts.
	connected <-chan struct{}
	doneReq   <-chan replayDoneMsg
	committed <-chan persist.Result
	statusDue <-chan struct{}

	// The shared state it reads (set by ingest and the connection).
	online                                   *atomic.Bool
	onlineSince                              *atomic.Int64 // unix nanos of the last online/offline change
	watermark, head, maxSeq, settled, gapTop *atomic.Uint64
	rejected                                 *atomic.Uint64 // Counters.Rejected
	// What it publishes for the snapshot.
	gapSince, resyncAt *atomic.Int64
	resyncs            *atomic.Uint64 // Counters.Resyncs

	publish  func(ctx context.Context, topic string, doc any, retained bool) error
	status   func(state string) customs.Status
	timeouts func() (gapGrace, resyncTimeout time.Duration)
	resync   resyncBook
	// moveOn makes the order connection leave its broker for the next of
	// the list (false: a list of one, or it is down); nil: no list.
	moveOn func() bool
}

// unansweredMoveOn is how many resyncs in a row, each unanswered for
// resync_timeout, make the order connection move on to the next broker.
// Independent brokers: the gateway can be on one and central on another,
// both connected, after a partition between the gateway and central's
// broker heals, and nothing else would ever make either move.
const unansweredMoveOn = 3

// resyncBook is the outstanding resync and the gaps it settles, kept by
// the link (under its mutex) because Snapshot and commit read them too.
type resyncBook interface {
	// sent records the resync id for from..end as the one outstanding.
	sent(id string, from, end uint64)
	// pending reports whether a resync is outstanding.
	pending() bool
	// done clears the outstanding resync if it is id, and returns its range.
	done(id string) (match bool, from, end uint64)
	noteReplayDone(from, end, upTo uint64)
	excusedEnd(q uint64) uint64
}

// newControl makes the control part over the link's state, on l.conn.
func (l *Link) newControl() *control {
	c := &control{conn: l.conn, time: l.time, log: l.log, beat: l.opts.Liveness,
		site: l.opts.Site, gateway: l.opts.Gateway,
		resyncTopic: l.topic(customs.LeafResync), statusTopic: l.topic(customs.LeafStatus),
		connected: l.connected, doneReq: l.doneReq, committed: l.committed, statusDue: l.statusDue,
		online: &l.online, onlineSince: &l.since, watermark: &l.watermark, head: &l.head, maxSeq: &l.maxSeq, settled: &l.settled, gapTop: &l.gapTop,
		rejected: &l.C.Rejected, gapSince: &l.gapSince, resyncAt: &l.resyncAt, resyncs: &l.C.Resyncs,
		publish: l.publish, status: l.status, timeouts: l.Timeouts, resync: (*linkBook)(l)}
	if l.orders != nil {
		c.moveOn = l.orders.MoveOn
	}
	return c
}

// linkBook is the link as control's resyncBook.
type linkBook Link

func (b *linkBook) sent(id string, from, end uint64) {
	b.mu.Lock()
	b.outstanding, b.outFrom, b.outEnd = id, from, end
	b.mu.Unlock()
}

func (b *linkBook) pending() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.outstanding != ""
}

func (b *linkBook) done(id string) (match bool, from, end uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	match = id == b.outstanding
	from, end = b.outFrom, b.outEnd
	if match {
		b.outstanding = ""
	}
	return match, from, end
}

func (b *linkBook) noteReplayDone(from, end, upTo uint64) { (*Link)(b).noteReplayDone(from, end, upTo) }
func (b *linkBook) excusedEnd(q uint64) uint64            { return (*Link)(b).excusedEnd(q) }

// Run runs resync (§5.3) and the status publisher. Resync:
//
//   - at every (re)connection, resync(W+1, 0), retried on every tick until
//     it is sent, replacing any outstanding one;
//   - a gap (head or a seq beyond W) open for gap_grace, or a message
//     rejected gap_grace ago (its seqs are unknown), with no resync
//     outstanding: resync(W+1, highest seq seen), or (W+1, 0) for a
//     rejection;
//   - at most one outstanding; repeated as resync(S+1, 0) after
//     resync_timeout without its replay_done.
//
// S is settled: every seq ≤ S is applied, was received only in orders
// that cannot be applied (amendment 2), or was asked for by a resync whose
// replay_done came without it (gaps.go: sent unreadable, or beyond what
// central can replay). Without such seqs S = W. Gaps are measured from S,
// so a seq that can never be applied neither blocks the filling of later
// gaps nor triggers a resync every gap_grace: the resync that asks for it
// again, resync(W+1, end of its run), goes out at most once per
// resync_timeout.
func (c *control) Run(ctx context.Context) error {
	tick, tickC := c.time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var (
		sentAt     time.Time
		gapSince   time.Time
		lastStatus time.Time
		statusWant bool
		// statusAtOnce: a (re)connection's status is still to be sent,
		// whatever the time since the last one.
		statusAtOnce bool
		lastSent     customs.Status
		// onConnect: a (re)connection's resync is still to be sent.
		onConnect bool
		// rejected is the rejection count last seen; rejectedAt when a new
		// rejection was first seen and not yet covered by a resync.
		rejected   = c.rejected.Load()
		rejectedAt time.Time
		// reconnectAt: when control last connected a client paho gave up.
		reconnectAt time.Time
		// badAt: when the unappliable seq at W+1 was last asked for (or
		// first seen); zero while W+1 is no such seq.
		badAt time.Time
		// gapGrace and resyncTimeout are those in force (SetTimeouts),
		// read at each round.
		gapGrace, resyncTimeout time.Duration
		// unanswered: resyncs in a row that timed out on this connection.
		unanswered int
	)
	defer c.gapSince.Store(0)
	defer c.resyncAt.Store(0)
	beat := c.beat.Beat("link")
	defer beat.Stop()
	send := func(from, to uint64) bool {
		id := ulid.Make().String()
		doc := customs.Resync{Type: customs.TypeResync, Site: c.site, Gateway: c.gateway,
			RequestID: id, FromSeq: from, ToSeq: to}
		if err := c.publish(ctx, c.resyncTopic, doc, false); err != nil {
			c.log.Warn("resync not sent; trying again", "err", err)
			return false
		}
		end := to
		if end == 0 {
			end = max(c.head.Load(), c.maxSeq.Load(), c.gapTop.Load())
		}
		c.resync.sent(id, from, end)
		sentAt = c.time.Now()
		c.resyncAt.Store(sentAt.UnixNano())
		c.resyncs.Add(1)
		c.log.Info("resync sent", "from_seq", from, "to_seq", to, "request_id", id)
		return true
	}
	for {
		beat.Tick()
		select {
		case <-ctx.Done():
			return nil
		case <-c.connected:
			// Every (re)connection: from W+1 up to central's head (§5.3);
			// sent below, and again on each tick until it went out.
			onConnect = true
			// At once, unless one went out since the link came online
			// (the kick of going online may have sent it already).
			statusAtOnce = statusAtOnce || lastStatus.Before(time.Unix(0, c.onlineSince.Load()))
			statusWant = true
			unanswered = 0
		case d := <-c.doneReq:
			match, from, end := c.resync.done(d.id)
			if match {
				c.log.Info("replay done", "request_id", d.id, "up_to", d.upTo, "applied_seq", c.watermark.Load())
				// What the replay was asked for and did not deliver stays
				// a gap, asked for again once per resync_timeout.
				c.resync.noteReplayDone(from, end, d.upTo)
				gapSince = time.Time{}
				unanswered = 0
			}
		case <-c.committed:
		case <-c.statusDue:
			statusWant = true
		case <-tickC:
		}
		now := c.time.Now()
		gapGrace, resyncTimeout = c.timeouts()
		if !c.online.Load() && !c.conn.IsConnected() && now.Sub(reconnectAt) >= time.Second {
			// The client is neither connected nor trying: a Disconnect (after
			// a failed subscribe or commit) ends paho's automatic
			// reconnection, and a Connect racing it can fail. The fault
			// suite found the link deaf for good this way; connect again,
			// at most once a second.
			reconnectAt = now
			c.log.Warn("order connection given up by the MQTT client; connecting again")
			c.conn.Connect()
		}
		if r := c.rejected.Load(); r != rejected {
			rejected = r
			if rejectedAt.IsZero() {
				rejectedAt = now
			}
		}
		w := c.watermark.Load()
		set := max(c.settled.Load(), w)
		top := max(c.head.Load(), c.maxSeq.Load(), c.gapTop.Load())
		if top > w {
			if c.gapSince.Load() == 0 {
				c.gapSince.Store(now.UnixNano())
			}
		} else {
			c.gapSince.Store(0)
		}
		if top > set {
			if gapSince.IsZero() {
				gapSince = now
			}
		} else {
			gapSince = time.Time{}
		}
		switch {
		case set == w:
			badAt = time.Time{}
		case badAt.IsZero():
			badAt = now // central just sent it: ask again after resync_timeout
		}
		if c.online.Load() {
			outstanding := c.resync.pending()
			switch {
			case onConnect:
				if send(w+1, 0) {
					onConnect, rejectedAt = false, time.Time{}
					if set > w {
						badAt = now
					}
				}
			case outstanding && now.Sub(sentAt) > resyncTimeout:
				if unanswered++; unanswered >= unansweredMoveOn && c.moveOn != nil && c.moveOn() {
					// Central is not on this broker: the reconnection
					// on the next one resyncs.
					c.log.Warn("no replay_done to several resyncs; central may be on another broker", "resyncs", unanswered)
					unanswered = 0
					sentAt = now
					break
				}
				c.log.Warn("no replay_done in time; asking again", "timeout", resyncTimeout)
				if send(set+1, 0) {
					rejectedAt = time.Time{}
				}
			case outstanding:
			case !gapSince.IsZero() && now.Sub(gapSince) >= gapGrace:
				c.log.Info("gap open longer than gap_grace", "applied_seq", w, "settled_seq", set, "top_seq", top, "gap_grace", gapGrace)
				send(set+1, top)
				gapSince = now
			case !rejectedAt.IsZero() && now.Sub(rejectedAt) >= gapGrace:
				// A rejected message may have held orders we now lack: ask
				// for everything above what is settled.
				if send(set+1, 0) {
					rejectedAt = time.Time{}
				}
			case set > w && now.Sub(badAt) >= resyncTimeout:
				// The seq at W+1 came only in orders that cannot be
				// applied, or a replay did not deliver it: ask for it (and
				// its run) again, once per resync_timeout.
				end := max(c.resync.excusedEnd(w+1), w+1)
				if end >= top {
					end = 0 // up to central's head
				}
				c.log.Warn("order seq cannot be applied or was not delivered; asking central for it again", "from_seq", w+1, "to_seq", end)
				if send(w+1, end) {
					badAt = now
				}
			}
			st := c.status("online")
			changed := st.AppliedSeq != lastSent.AppliedSeq || st.HeadSeq != lastSent.HeadSeq || st.Outbox != lastSent.Outbox || lastSent.State != "online"
			since := now.Sub(lastStatus)
			if statusAtOnce || (statusWant || changed) && since >= statusMinInterval || since >= statusMaxInterval {
				if err := c.publish(ctx, c.statusTopic, st, true); err == nil {
					lastStatus, lastSent, statusWant, statusAtOnce = now, st, false, false
				}
			}
		} else {
			lastSent = customs.Status{}
		}
	}
}

// The status goes out at every connection, on a change at most once per
// statusMinInterval (changes in between are coalesced: the next one
// carries the latest), and at least every statusMaxInterval. While orders
// apply the status changes with each commit; a site of dozens of gateways
// would otherwise send central several a second each.
const (
	statusMinInterval = time.Second
	statusMaxInterval = 30 * time.Second
)

func (l *Link) kickStatus() {
	select {
	case l.statusDue <- struct{}{}:
	default:
	}
}

func (l *Link) status(state string) customs.Status {
	n, _ := l.outbox.Depth()
	now := l.time.Now().UTC()
	st := customs.Status{Type: customs.TypeStatus, Site: l.opts.Site, Gateway: l.opts.Gateway, State: state,
		AppliedSeq: l.watermark.Load(), HeadSeq: l.head.Load(), Outbox: n, Version: l.opts.Version, At: now}
	// The additions for the fleet view (docs/protocol.md): the oldest
	// unacknowledged event's age and the last audit checkpoint's time.
	if h, ok := l.outbox.(OutboxHealth); ok && n > 0 {
		if at, ok, err := h.OldestPending(); err == nil && ok && !at.IsZero() {
			st.OutboxOldest = max(0, now.Sub(at).Seconds())
		}
	}
	if l.opts.Checkpoint != nil {
		if at, ok := l.opts.Checkpoint(); ok {
			at = at.UTC()
			st.CheckpointAt = &at
		}
	}
	return st
}

func (l *Link) statusDoc(state string) ([]byte, error) {
	return l.opts.Signer.Seal(l.status(state))
}
