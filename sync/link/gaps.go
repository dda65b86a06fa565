package link

import (
	"crypto/sha256"
	"encoding/hex"
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
	l.mu.Lock()
	if len(l.gaps) == 0 {
		l.mu.Unlock()
		l.settled.Store(res.Watermark)
		l.gapTop.Store(0)
		return
	}
	for _, o := range applied {
		delete(l.gaps, o.Seq)
	}
	var top uint64
	bad := make(map[uint64]bool, len(l.gaps))
	for q := range l.gaps {
		if q <= res.Watermark {
			delete(l.gaps, q)
			continue
		}
		bad[q] = true
		top = max(top, q)
	}
	l.mu.Unlock()
	l.gapTop.Store(top)
	l.settled.Store(l.settle(res.Watermark, max(res.Head, res.MaxSeq, top), bad))
}

// settle returns the highest S ≥ w such that every seq ≤ S is applied or
// in bad, looking no further than top.
func (l *Link) settle(w, top uint64, bad map[uint64]bool) uint64 {
	s := max(l.settled.Load(), w)
	if len(bad) == 0 {
		return w
	}
	if l.missing == nil {
		// Without the store's list of gaps, only the run of bad seqs
		// right above the watermark is known settled.
		s = w
		for bad[s+1] {
			s++
		}
		return s
	}
	for s < top {
		gaps, err := l.missing.Missing(s, top, 1)
		if err != nil {
			l.log.Warn("gaps not read; resync goes from the watermark", "err", err)
			return w
		}
		if len(gaps) == 0 {
			return top
		}
		q := gaps[0][0]
		for q <= gaps[0][1] && bad[q] {
			q++
		}
		if q <= gaps[0][1] {
			return q - 1
		}
		s = gaps[0][1]
	}
	return s
}

// gapRunEnd is the end of the run of gap seqs that starts at w+1 (w when
// w+1 is none).
func (l *Link) gapRunEnd(w uint64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.gaps[w+1] != nil {
		w++
	}
	return w
}
