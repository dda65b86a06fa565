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
	Subjects int  // subjects removed, with their links
	Done     bool // nothing more to prune for this cutoff
}

// Prune removes, in one small write transaction of at most max keys, what
// has left the terminal: orders issued before cutoff (from the seq log,
// only below the watermark, where a replay is recognised as applied), and
// subjects whose last order is among those pruned, with their links.
// Call it repeatedly until Done; each call holds the writer only briefly,
// so ingest and scans go on.
func (s *Store) Prune(cutoff time.Time, max int) (PruneResult, error) {
	var res PruneResult
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, seqs := tx.Bucket(bMeta), tx.Bucket(bSeqs)
		w := getU64(meta, kWatermark)
		pruned := getU64(meta, kPrunedSeq)
		c := seqs.Cursor()
		var del [][]byte
		for k, v := c.First(); k != nil && len(del) < max/2; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			if seq > w || len(v) < 16 {
				break
			}
			var o struct {
				IssuedAt time.Time `json:"issued_at"`
			}
			// An order without a readable issue time is kept.
			if json.Unmarshal(v[16:], &o) != nil || o.IssuedAt.IsZero() || !o.IssuedAt.Before(cutoff) {
				break
			}
			del = append(del, append([]byte(nil), k...))
			pruned = max64(pruned, seq)
		}
		for _, k := range del {
			if err := seqs.Delete(k); err != nil {
				return err
			}
		}
		res.Orders = len(del)
		if err := meta.Put(kPrunedSeq, u64(pruned)); err != nil {
			return err
		}
		n, finished, err := pruneSubjects(tx, pruned, max-len(del))
		res.Subjects = n
		res.Done = len(del) < max/2 && finished
		return err
	})
	return res, err
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// pruneSubjects sweeps the subject bucket from where the last sweep
// stopped, removing subjects whose last order is at or below pruned.
func pruneSubjects(tx *bolt.Tx, pruned uint64, budget int) (removed int, finished bool, err error) {
	meta, subj := tx.Bucket(bMeta), tx.Bucket(bSubj)
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
		if derr != nil || st.LastSeq == 0 || st.LastSeq > pruned {
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

// unlinkAll removes every link of sub in both directions, keeping the
// other side's link counts right.
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
