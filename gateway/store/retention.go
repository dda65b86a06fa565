package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

// PruneResult tells what one Prune call removed.
type PruneResult struct {
	Orders   int  // seq log entries removed
	Subjects int  // subjects removed, with their inactive links
	Done     bool // nothing more to prune for this cutoff
}

// Prune removes, in one small write transaction of at most max keys, what
// has left the terminal. Call it repeatedly until Done; each call holds the
// writer only briefly, so ingest and scans go on.
//
// Time. Prune judges at the conservative time at = min(wall, time floor),
// the floor being the newest timestamp central signed (stored with each
// batch): a wall clock jumped forward prunes nothing more, and with no
// central time yet nothing is pruned. Orders issued before at − keep go.
//
// The seq log. Orders go from its start, only below the watermark, where
// a replay of a pruned seq is counted as already applied (every seq up to
// the watermark was). An order without a readable issued_at goes with the
// next order that has one (central numbers orders as it issues them), so
// it never stops the sweep; one with no later timed order waits.
//
// Subjects. A subject goes only if its state decides nothing and every
// order of it is pruned (last seq ≤ the pruned seq): no cancel, no active
// hold, no release or revoke of its own (live, expired or revoked: its own
// record governs it before any container's, so it must stay should central
// ever link it into a released container), and no active link as container
// or as child. Its unheld holds and unlinked links go with it. This is safe
// because such a subject is, for every decision now and later, the same as
// a subject never seen:
//   - no scan reaches it through a link (it has no active one), its own
//     decision is STOP unknown either way, and if it is linked later it
//     inherits exactly as a subject never seen does;
//   - no order of its past can come back: a seq at or below the watermark
//     is never applied again (a duplicate or a conflict while in the seq
//     log, a duplicate once pruned), and its orders are all at or below
//     the pruned seq ≤ watermark. A later order has a higher seq than any
//     it had, so it overrides each removed hold slot or link record
//     exactly as it would on a fresh state.
//
// Removing a subject that can still decide would be a fail-open for the
// same reason: a replay of its hold or cancel is taken for a duplicate and
// never comes back.
//
// A transit removed this way has no seals any more: its arrival would show
// the seals not matching, the safe side.
func (s *Store) Prune(wall time.Time, keep time.Duration, max int) (PruneResult, error) {
	var res PruneResult
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, seqs := tx.Bucket(bMeta), tx.Bucket(bSeqs)
		at := wall
		if floor := getTime(meta, kFloor); floor.Before(at) {
			at = floor
		}
		if at.IsZero() {
			// No central time yet: nothing can be judged old.
			res.Done = true
			return nil
		}
		cutoff := at.Add(-keep)
		w := getU64(meta, kWatermark)
		pruned := getU64(meta, kPrunedSeq)
		limit := max / 2
		if limit < 1 {
			limit = 1
		}
		del, ordersDone := prunableOrders(seqs, w, cutoff, limit)
		for _, k := range del {
			if err := seqs.Delete(k); err != nil {
				return err
			}
			pruned = max64(pruned, binary.BigEndian.Uint64(k))
		}
		res.Orders = len(del)
		if err := meta.Put(kPrunedSeq, u64(pruned)); err != nil {
			return err
		}
		n, finished, err := pruneSubjects(tx, pruned, max-len(del))
		res.Subjects = n
		res.Done = ordersDone && finished
		return err
	})
	return res, err
}

// prunableOrders returns the keys of up to limit orders at the start of the
// seq log that were issued before cutoff, and whether no more are.
func prunableOrders(seqs *bolt.Bucket, w uint64, cutoff time.Time, limit int) (del [][]byte, done bool) {
	var pending [][]byte // without issue time: they go with the next timed order
	full := false        // pending reached the limit: only look for that order
	c := seqs.Cursor()
	for k, v := c.First(); ; k, v = c.Next() {
		if k == nil || binary.BigEndian.Uint64(k) > w {
			return del, true
		}
		t, ok := issuedAt(v)
		if !ok {
			if len(del)+len(pending) < limit {
				pending = append(pending, append([]byte(nil), k...))
			} else {
				full = true
			}
			continue
		}
		if !t.Before(cutoff) {
			return del, true
		}
		del = append(del, pending...)
		pending = nil
		if full || len(del) >= limit {
			return del, false
		}
		del = append(del, append([]byte(nil), k...))
		if len(del) >= limit {
			return del, false
		}
	}
}

// issuedAt reads a seq log entry's issue time.
func issuedAt(v []byte) (time.Time, bool) {
	if len(v) < 16 {
		return time.Time{}, false
	}
	var o struct {
		IssuedAt time.Time `json:"issued_at"`
	}
	if json.Unmarshal(v[16:], &o) != nil || o.IssuedAt.IsZero() {
		return time.Time{}, false
	}
	return o.IssuedAt, true
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// pruneSubjects sweeps the subject bucket from where the last sweep
// stopped, removing the subjects that decide nothing (see Prune).
func pruneSubjects(tx *bolt.Tx, pruned uint64, budget int) (removed int, finished bool, err error) {
	meta, subj := tx.Bucket(bMeta), tx.Bucket(bSubj)
	up, down := tx.Bucket(bUp), tx.Bucket(bDown)
	if pruned == 0 || budget <= 0 {
		return 0, budget > 0, nil
	}
	pos := append([]byte(nil), meta.Get(kPrunePos)...)
	if len(pos) == 0 {
		// A new sweep: it is complete only if no order was pruned while
		// it ran (a subject passed over may have become prunable).
		if err := meta.Put(kSweepFrom, u64(pruned)); err != nil {
			return 0, false, err
		}
	}
	c := subj.Cursor()
	k, v := c.Seek(pos)
	if k != nil && bytes.Equal(k, pos) {
		k, v = c.Next()
	}
	var gone [][]byte
	seen := 0
	for ; k != nil && seen < budget; k, v = c.Next() {
		seen++
		pos = append(pos[:0], k...)
		st, derr := decodeState(v)
		if derr != nil || !decidesNothing(st, pruned) || linkedAny(up, k) || linkedAny(down, k) {
			continue
		}
		gone = append(gone, append([]byte(nil), k...))
	}
	finished = k == nil
	if finished {
		pos = nil
	}
	for _, key := range gone {
		sub, err := keySubject(key)
		if err != nil {
			continue
		}
		if err := unlinkAll(tx, sub); err != nil {
			return removed, false, err
		}
		if err := subj.Delete(key); err != nil {
			return removed, false, err
		}
		removed++
	}
	if pos == nil {
		return removed, getU64(meta, kSweepFrom) == pruned, meta.Delete(kPrunePos)
	}
	return removed, finished, meta.Put(kPrunePos, pos)
}

// decidesNothing reports whether a subject's own state can no longer change
// any decision, now or later, and all its orders are at or below pruned.
// Its links are checked apart (linkedAny).
//
// A subject with a release or revoke of its own never qualifies, expired
// or not: that record governs the subject for ever (§4: its own
// release/revoke before any ancestor's), so if central later links it into
// a released container it must still stop. Removed, it would inherit the
// container's release and pass.
func decidesNothing(st *rules.State, pruned uint64) bool {
	if st.LastSeq == 0 || st.LastSeq > pruned || st.Cancelled() || st.Children > 0 || st.Parents > 0 {
		return false
	}
	if _, held := st.ActiveHold(); held {
		return false
	}
	return st.RelFlag == rules.RelNone
}

// linkedAny reports whether key has an active link in b (up: as child,
// down: as container). A link that cannot be read counts as active.
func linkedAny(b *bolt.Bucket, key []byte) bool {
	prefix := append(append(make([]byte, 0, len(key)+1), key...), 0)
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		l, err := decodeLink(v)
		if err != nil || l.Linked {
			return true
		}
	}
	return false
}

// unlinkAll removes every link of sub in both directions, keeping the
// other side's link counts right. Prune calls it only for subjects with no
// active link, so only inactive link records go.
func unlinkAll(tx *bolt.Tx, sub customs.Subject) error {
	up, down, subj := tx.Bucket(bUp), tx.Bucket(bDown), tx.Bucket(bSubj)
	prefix := append(subjectKey(sub), 0)
	for _, dir := range []struct {
		own, other *bolt.Bucket
		parentSide bool // the other subject is sub's parent
	}{{up, down, true}, {down, up, false}} {
		var keys [][]byte
		c := dir.own.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			l, err := decodeLink(dir.own.Get(k))
			if err != nil {
				return err
			}
			otherKey := k[len(prefix):]
			if l.Linked {
				if v := subj.Get(otherKey); v != nil {
					st, err := decodeState(v)
					if err != nil {
						return err
					}
					adjust(st, dir.parentSide)
					if err := subj.Put(append([]byte(nil), otherKey...), encodeState(st)); err != nil {
						return err
					}
				}
			}
			mirror := append(append(append([]byte(nil), otherKey...), 0), prefix[:len(prefix)-1]...)
			if err := dir.other.Delete(mirror); err != nil {
				return err
			}
			if err := dir.own.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// adjust drops one active link from the other side's count.
func adjust(st *rules.State, otherIsParent bool) {
	if otherIsParent {
		if st.Children > 0 {
			st.Children--
		}
	} else if st.Parents > 0 {
		st.Parents--
	}
}
