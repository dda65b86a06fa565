package link

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/persist"
)

// Amendment 2: an order that cannot be applied leaves its seq a gap. The
// link keeps those seqs in memory (a restart's resync from W+1 finds them
// again): they are alarmed, the watermark stops below the lowest, and the
// resync that asks for them again goes out at most once per
// resync_timeout, while gaps above them are filled as usual.

// seqReader is the optional ability of a Store to read the order applied
// under a seq (store.Store has it).
type seqReader interface {
	Order(seq uint64) (customs.Order, bool, error)
}

// gapLister is the optional ability of a Store to list the seqs it lacks
// (store.Store has it).
type gapLister interface {
	Missing(from, to uint64, limit int) ([][2]uint64, error)
}

// maxAuditOrder bounds the JSON of an unappliable order in the audit log.
const maxAuditOrder = 2048

func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// noteOrders records, after a commit, the fields set aside and the orders
// that could not be applied (counted, logged, audited), keeps the seqs of
// the latter as gaps, and recomputes settled. Called by commit only.
func (l *Link) noteOrders(batch []*item, applied []customs.Order, res persist.Result) {
	now := l.time.Now().UTC()
	for _, it := range batch {
		if it.reject != "" {
			continue
		}
		for _, d := range it.drops {
			l.C.FieldsDropped.Add(uint64(len(d.dropped)))
			l.log.Warn("order fields out of form set aside; the order is applied without them", "seq", d.seq, "dropped", d.dropped)
			l.audit("order_fields_dropped", map[string]any{"seq": d.seq, "topic": it.msg.Topic(), "dropped": d.dropped})
		}
		if len(it.bad) == 0 {
			continue
		}
		sum := sha256.Sum256(it.msg.Payload())
		for _, b := range it.bad {
			l.C.Unappliable.Add(1)
			gap := b.seq != 0 && b.seq > res.Watermark
			if gap && l.seqs != nil {
				// A seq already applied (an unappliable copy of it) is no gap.
				if _, ok, err := l.seqs.Order(b.seq); err == nil && ok {
					gap = false
				}
			}
			first := true
			if gap {
				l.mu.Lock()
				g := l.gaps[b.seq]
				if g == nil {
					g = &GapSeq{Seq: b.seq, Since: now}
					l.gaps[b.seq] = g
				}
				g.Error, g.Seen = b.err.Error(), g.Seen+1
				first = g.Seen == 1
				l.mu.Unlock()
			}
			if !first {
				// The same gap asked for again (once per resync_timeout):
				// audited and alarmed already.
				l.log.Debug("order still cannot be applied", "seq", b.seq, "err", b.err)
				continue
			}
			l.log.Warn("order cannot be applied; its seq stays a gap", "seq", b.seq, "err", b.err, "gap", gap, "topic", it.msg.Topic())
			l.audit("order_unappliable", map[string]any{"seq": b.seq, "topic": it.msg.Topic(), "error": b.err.Error(),
				"order": b.order, "gap": gap, "message_sha256": hex.EncodeToString(sum[:])})
		}
	}
	var top uint64
	l.mu.Lock()
	if len(l.gaps) > 0 {
		for _, o := range applied {
			delete(l.gaps, o.Seq)
		}
		for q := range l.gaps {
			if q <= res.Watermark {
				delete(l.gaps, q)
				continue
			}
			top = max(top, q)
		}
	}
	l.mu.Unlock()
	l.gapTop.Store(top)
	l.settleMu.Lock()
	defer l.settleMu.Unlock()
	// Seqs only leave gaps and undelivered by being applied, so what was
	// settled stays settled, unless seqs above a replay's up_to became
	// ordinary gaps again.
	from := max(l.settled.Load(), res.Watermark)
	if l.refreshUndelivered(res.Watermark) {
		from = res.Watermark
	}
	l.settled.Store(l.settle(res.Watermark, from, max(res.Head, res.MaxSeq, top)))
}

// settle returns the highest S ≥ from (from ≥ w, and settled) such that
// every seq ≤ S is applied, in gaps or undelivered, looking no further
// than top. Caller holds settleMu.
func (l *Link) settle(w, from, top uint64) uint64 {
	l.mu.Lock()
	none := len(l.gaps) == 0 && len(l.undelivered) == 0
	l.mu.Unlock()
	if none {
		return w
	}
	if l.missing == nil {
		// Without the store's list of gaps, only the run of excused seqs
		// right above the watermark is known settled.
		l.mu.Lock()
		defer l.mu.Unlock()
		return max(w, l.excusedEndLocked(w+1))
	}
	s := max(w, from)
	for s < top {
		gaps, err := l.missing.Missing(s, top, 1)
		if err != nil {
			l.log.Warn("gaps not read; resync goes from the watermark", "err", err)
			return w
		}
		if len(gaps) == 0 {
			return top
		}
		l.mu.Lock()
		e := l.excusedEndLocked(gaps[0][0])
		l.mu.Unlock()
		if e < gaps[0][1] {
			return e
		}
		s = gaps[0][1]
	}
	return s
}

// excusedEndLocked returns the highest e ≥ q-1 such that every seq in
// [q, e] is in gaps or undelivered (q-1: q is in neither). Caller holds mu.
func (l *Link) excusedEndLocked(q uint64) uint64 {
	e := q - 1
	for e < math.MaxUint64 {
		n := e + 1
		if l.gaps[n] != nil {
			e = n
			continue
		}
		i, ok := slices.BinarySearchFunc(l.undelivered, n, func(r SeqRange, q uint64) int {
			switch {
			case r.To < q:
				return -1
			case r.From > q:
				return 1
			}
			return 0
		})
		if !ok {
			break
		}
		e = l.undelivered[i].To
	}
	return e
}

// excusedEnd is excusedEndLocked taking mu.
func (l *Link) excusedEnd(q uint64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.excusedEndLocked(q)
}

// Seqs not delivered by replay. When a resync's replay_done arrives, the
// seqs the resync asked for (from_seq up to to_seq, or up to the highest
// seq seen when it went out) that are still missing were not delivered:
// central sent them in a form that cannot be read (a seq "5" or 5.0,
// counted as unappliable with no seq), or they lie above its up_to (a head
// beyond anything central can replay). Like the seqs of unappliable orders
// they stay gaps: alarmed (order_gap), counted in metrics, settled (no
// resync every gap_grace for them) and asked for again once per
// resync_timeout. An order that fills one removes it. Above up_to, only
// the run above the highest seq received is kept: once central issues
// orders there, a seq lost among them is an ordinary gap again.

// replayDoneMsg is a replay_done as commit hands it to control.
type replayDoneMsg struct {
	id   string
	upTo uint64
}

// SeqRange is a run of seqs a replay was asked for and did not deliver.
type SeqRange struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
	// Beyond: above the replay's up_to, announced by a head or seen in an
	// order, but central could not replay them.
	Beyond bool      `json:"beyond_replay,omitempty"`
	Since  time.Time `json:"since"` // first found not delivered
}

// maxUndelivered bounds the runs kept; past it the last run reaches to the
// end of what was asked.
const maxUndelivered = 64

// noteReplayDone records, at the replay_done of a resync that asked for
// from..end, the seqs in that range still missing, and recomputes settled.
func (l *Link) noteReplayDone(from, end, upTo uint64) {
	l.settleMu.Lock()
	defer l.settleMu.Unlock()
	w := l.watermark.Load()
	from = max(from, w+1)
	var parts [][2]uint64
	if end >= from {
		if l.missing == nil {
			parts = [][2]uint64{{from, end}}
		} else {
			var err error
			if parts, err = l.missing.Missing(from-1, end, maxUndelivered); err != nil {
				l.log.Warn("gaps not read after replay_done", "err", err)
				parts = nil
			}
			if n := len(parts); n == maxUndelivered {
				parts[n-1][1] = end
			}
		}
	}
	now := l.time.Now().UTC()
	l.mu.Lock()
	var out []SeqRange
	for _, r := range l.undelivered {
		// Outside the range asked for: kept as it was.
		if r.From < from {
			out = append(out, SeqRange{r.From, min(r.To, from-1), r.Beyond, r.Since})
		}
		if end < math.MaxUint64 && r.To > end {
			out = append(out, SeqRange{max(r.From, end+1), r.To, r.Beyond, r.Since})
		}
	}
	var added [][2]uint64
	for _, p := range parts {
		// Split at up_to: below it not delivered, above it beyond.
		segs := [][2]uint64{{p[0], min(p[1], upTo)}}
		if upTo < math.MaxUint64 {
			segs = append(segs, [2]uint64{max(p[0], upTo+1), p[1]})
		}
		for _, q := range segs {
			if q[0] > q[1] {
				continue
			}
			since := now
			for _, r := range l.undelivered {
				if r.From <= q[1] && q[0] <= r.To && r.Since.Before(since) {
					since = r.Since
				}
			}
			if since.Equal(now) {
				added = append(added, q)
			}
			out = append(out, l.cutGapsLocked(q[0], q[1], q[0] > upTo, since)...)
		}
	}
	l.undelivered = tidy(out)
	l.mu.Unlock()
	if len(added) > 0 {
		l.log.Warn("order seqs not delivered by central's replay; they stay gaps, asked for again every resync_timeout",
			"seqs", added, "up_to", upTo)
		l.audit("order_undelivered", map[string]any{"seqs": added, "up_to": upTo, "applied_seq": w})
	}
	l.settled.Store(l.settle(w, w, max(l.head.Load(), l.maxSeq.Load(), l.gapTop.Load())))
}

// refreshUndelivered drops from undelivered the seqs applied since (the
// watermark passed them, or the store holds them), and above up_to the
// seqs below the highest one received; it reports whether it dropped any
// of the latter (missing seqs no longer settled). Caller holds settleMu.
func (l *Link) refreshUndelivered(w uint64) (unsettled bool) {
	l.mu.Lock()
	rs := slices.Clone(l.undelivered)
	l.mu.Unlock()
	if len(rs) == 0 {
		return false
	}
	type part struct {
		r     SeqRange
		parts [][2]uint64
	}
	var ps []part
	for _, r := range rs {
		if r.To <= w {
			continue
		}
		r.From = max(r.From, w+1)
		p := part{r: r, parts: [][2]uint64{{r.From, r.To}}}
		if l.missing != nil {
			got, err := l.missing.Missing(r.From-1, r.To, maxUndelivered)
			if err == nil && len(got) < maxUndelivered {
				p.parts = got
				if n := len(got); r.Beyond && n > 0 {
					// Orders received above up_to: the seqs below the
					// highest of them are ordinary gaps.
					p.parts = nil
					if got[n-1][1] == r.To {
						p.parts = got[n-1:]
					}
					unsettled = unsettled || len(p.parts) != n
				}
			}
		}
		ps = append(ps, p)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []SeqRange
	for _, p := range ps {
		for _, q := range p.parts {
			out = append(out, l.cutGapsLocked(q[0], q[1], p.r.Beyond, p.r.Since)...)
		}
	}
	l.undelivered = tidy(out)
	return unsettled
}

// cutGapsLocked returns from..to without the seqs in gaps (alarmed as
// unappliable already). Caller holds mu.
func (l *Link) cutGapsLocked(from, to uint64, beyond bool, since time.Time) []SeqRange {
	var cut []uint64
	for q := range l.gaps {
		if q >= from && q <= to {
			cut = append(cut, q)
		}
	}
	slices.Sort(cut)
	var out []SeqRange
	for _, q := range cut {
		if q > from {
			out = append(out, SeqRange{from, q - 1, beyond, since})
		}
		from = q + 1
	}
	if len(cut) == 0 || (cut[len(cut)-1] < to) {
		out = append(out, SeqRange{from, to, beyond, since})
	}
	return out
}

// tidy sorts runs and bounds their number.
func tidy(rs []SeqRange) []SeqRange {
	slices.SortFunc(rs, func(a, b SeqRange) int { return cmp.Compare(a.From, b.From) })
	if len(rs) > maxUndelivered {
		rs[maxUndelivered-1].To = rs[len(rs)-1].To
		rs = rs[:maxUndelivered]
	}
	return rs
}

// undeliveredCount is the number of seqs in undelivered (saturating).
func undeliveredCount(rs []SeqRange) uint64 {
	var n uint64
	for _, r := range rs {
		d := r.To - r.From
		if n+d+1 < n || d == math.MaxUint64 {
			return math.MaxUint64
		}
		n += d + 1
	}
	return n
}
