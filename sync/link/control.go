package link

import (
	"context"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/cargogate/cargogate/gateway/customs"
)

// control runs resync (§5.3) and the status publisher. Resync:
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
func (l *Link) control(ctx context.Context) error {
	tick, tickC := l.time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var (
		sentAt     time.Time
		gapSince   time.Time
		lastStatus time.Time
		statusWant bool
		lastSent   customs.Status
		// onConnect: a (re)connection's resync is still to be sent.
		onConnect bool
		// rejected is the rejection count last seen; rejectedAt when a new
		// rejection was first seen and not yet covered by a resync.
		rejected   = l.C.Rejected.Load()
		rejectedAt time.Time
		// reconnectAt: when control last connected a client paho gave up.
		reconnectAt time.Time
		// badAt: when the unappliable seq at W+1 was last asked for (or
		// first seen); zero while W+1 is no such seq.
		badAt time.Time
	)
	defer l.gapSince.Store(0)
	defer l.resyncAt.Store(0)
	beat := l.opts.Liveness.Beat("link")
	defer beat.Stop()
	send := func(from, to uint64) bool {
		id := ulid.Make().String()
		doc := customs.Resync{Type: customs.TypeResync, Site: l.opts.Site, Gateway: l.opts.Gateway,
			RequestID: id, FromSeq: from, ToSeq: to}
		if err := l.publish(ctx, l.topic(customs.LeafResync), doc, false); err != nil {
			l.log.Warn("resync not sent; trying again", "err", err)
			return false
		}
		end := to
		if end == 0 {
			end = max(l.head.Load(), l.maxSeq.Load(), l.gapTop.Load())
		}
		l.mu.Lock()
		l.outstanding, l.outFrom, l.outEnd = id, from, end
		l.mu.Unlock()
		sentAt = l.time.Now()
		l.resyncAt.Store(sentAt.UnixNano())
		l.C.Resyncs.Add(1)
		l.log.Info("resync sent", "from_seq", from, "to_seq", to, "request_id", id)
		return true
	}
	for {
		beat.Tick()
		select {
		case <-ctx.Done():
			return nil
		case <-l.connected:
			// Every (re)connection: from W+1 up to central's head (§5.3);
			// sent below, and again on each tick until it went out.
			onConnect = true
			statusWant = true
		case d := <-l.doneReq:
			l.mu.Lock()
			match := d.id == l.outstanding
			from, end := l.outFrom, l.outEnd
			if match {
				l.outstanding = ""
			}
			l.mu.Unlock()
			if match {
				l.log.Info("replay done", "request_id", d.id, "up_to", d.upTo, "applied_seq", l.watermark.Load())
				// What the replay was asked for and did not deliver stays
				// a gap, asked for again once per resync_timeout.
				l.noteReplayDone(from, end, d.upTo)
				gapSince = time.Time{}
			}
		case <-l.committed:
		case <-l.statusDue:
			statusWant = true
		case <-tickC:
		}
		now := l.time.Now()
		l.opts.GapGrace, l.opts.ResyncTimeout = l.Timeouts()
		if !l.online.Load() && !l.conn.IsConnected() && now.Sub(reconnectAt) >= time.Second {
			// The client is neither connected nor trying: a Disconnect (after
			// a failed subscribe or commit) ends paho's automatic
			// reconnection, and a Connect racing it can fail. The fault
			// suite found the link deaf for good this way; connect again,
			// at most once a second.
			reconnectAt = now
			l.log.Warn("order connection given up by the MQTT client; connecting again")
			l.conn.Connect()
		}
		if r := l.C.Rejected.Load(); r != rejected {
			rejected = r
			if rejectedAt.IsZero() {
				rejectedAt = now
			}
		}
		w := l.watermark.Load()
		set := max(l.settled.Load(), w)
		top := max(l.head.Load(), l.maxSeq.Load(), l.gapTop.Load())
		if top > w {
			if l.gapSince.Load() == 0 {
				l.gapSince.Store(now.UnixNano())
			}
		} else {
			l.gapSince.Store(0)
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
		if l.online.Load() {
			l.mu.Lock()
			outstanding := l.outstanding != ""
			l.mu.Unlock()
			switch {
			case onConnect:
				if send(w+1, 0) {
					onConnect, rejectedAt = false, time.Time{}
					if set > w {
						badAt = now
					}
				}
			case outstanding && now.Sub(sentAt) > l.opts.ResyncTimeout:
				l.log.Warn("no replay_done in time; asking again", "timeout", l.opts.ResyncTimeout)
				if send(set+1, 0) {
					rejectedAt = time.Time{}
				}
			case outstanding:
			case !gapSince.IsZero() && now.Sub(gapSince) >= l.opts.GapGrace:
				l.log.Info("gap open longer than gap_grace", "applied_seq", w, "settled_seq", set, "top_seq", top, "gap_grace", l.opts.GapGrace)
				send(set+1, top)
				gapSince = now
			case !rejectedAt.IsZero() && now.Sub(rejectedAt) >= l.opts.GapGrace:
				// A rejected message may have held orders we now lack: ask
				// for everything above what is settled.
				if send(set+1, 0) {
					rejectedAt = time.Time{}
				}
			case set > w && now.Sub(badAt) >= l.opts.ResyncTimeout:
				// The seq at W+1 came only in orders that cannot be
				// applied, or a replay did not deliver it: ask for it (and
				// its run) again, once per resync_timeout.
				end := max(l.excusedEnd(w+1), w+1)
				if end >= top {
					end = 0 // up to central's head
				}
				l.log.Warn("order seq cannot be applied or was not delivered; asking central for it again", "from_seq", w+1, "to_seq", end)
				if send(w+1, end) {
					badAt = now
				}
			}
			st := l.status("online")
			changed := st.AppliedSeq != lastSent.AppliedSeq || st.HeadSeq != lastSent.HeadSeq || st.Outbox != lastSent.Outbox || lastSent.State != "online"
			if (statusWant || changed) && now.Sub(lastStatus) >= 200*time.Millisecond || now.Sub(lastStatus) >= 30*time.Second {
				if err := l.publish(ctx, l.topic(customs.LeafStatus), st, true); err == nil {
					lastStatus, lastSent, statusWant = now, st, false
				}
			}
		} else {
			lastSent = customs.Status{}
		}
	}
}

func (l *Link) kickStatus() {
	select {
	case l.statusDue <- struct{}{}:
	default:
	}
}

func (l *Link) status(state string) customs.Status {
	n, _ := l.outbox.Depth()
	return customs.Status{Type: customs.TypeStatus, Site: l.opts.Site, Gateway: l.opts.Gateway, State: state,
		AppliedSeq: l.watermark.Load(), HeadSeq: l.head.Load(), Outbox: n, Version: l.opts.Version, At: l.time.Now().UTC()}
}

func (l *Link) statusDoc(state string) ([]byte, error) {
	return l.opts.Signer.Seal(l.status(state))
}
