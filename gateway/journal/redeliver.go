package journal

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Redeliver puts the events delivered at or after since back into the
// outbox, under their own journal seqs, so that Pending returns them again
// in decision order among the others; it returns how many. It needs
// KeepDelivered.
//
// It is for a broker that acknowledged events and then lost them before
// central had them (a broker restarted without persistence loses central's
// session, and with it what was routed to it): the link calls it after a
// reconnection, and central drops the copies it already has by id.
func (j *Journal) Redeliver(since time.Time) (int, error) {
	if !j.opts.KeepDelivered {
		return 0, nil
	}
	var n int
	var size int64
	err := j.db.Update(func(tx *bolt.Tx) error {
		p, d, at, dat := tx.Bucket(bPending), tx.Bucket(bDelivered), tx.Bucket(bPendingAt), tx.Bucket(bDeliveredAt)
		n, size = 0, 0
		floor := uint64(since.UnixNano())
		// Delivery follows journal order, so the recent deliveries are the
		// last keys; walk back until one is older than since.
		var keys [][]byte
		c := dat.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if len(v) == 8 && binary.BigEndian.Uint64(v) < floor {
				break
			}
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			v := d.Get(k)
			if v == nil {
				continue
			}
			if err := p.Put(k, append([]byte(nil), v...)); err != nil {
				return err
			}
			if err := at.Put(k, dat.Get(k)); err != nil {
				return err
			}
			if err := d.Delete(k); err != nil {
				return err
			}
			if err := dat.Delete(k); err != nil {
				return err
			}
			n++
			size += int64(len(v))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("journal: redeliver: %w", err)
	}
	if n > 0 {
		j.mu.Lock()
		j.count += n
		j.bytes += size
		j.checkAlarm()
		j.mu.Unlock()
		j.signal()
	}
	return n, nil
}

// PruneDelivered removes up to max delivered events that were delivered
// before the given time (or, for events delivered before delivery times were
// kept, whose own "at" is before it), oldest first, in one transaction, and
// returns how many. Pending events are never touched. Callers run it in
// small batches until it returns less than max.
func (j *Journal) PruneDelivered(before time.Time, max int) (int, error) {
	var n int
	err := j.db.Update(func(tx *bolt.Tx) error {
		d, dat := tx.Bucket(bDelivered), tx.Bucket(bDeliveredAt)
		n = 0
		limit := before.UnixNano()
		var keys [][]byte
		c := d.Cursor()
		for k, v := c.First(); k != nil && len(keys) < max; k, v = c.Next() {
			var at int64
			if t := dat.Get(k); len(t) == 8 {
				at = int64(binary.BigEndian.Uint64(t))
			} else {
				var probe struct {
					At time.Time `json:"at"`
				}
				if json.Unmarshal(v, &probe) != nil || probe.At.IsZero() {
					continue // no time known: kept
				}
				at = probe.At.UnixNano()
			}
			if at >= limit {
				break // delivered in journal order: the rest are newer
			}
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := d.Delete(k); err != nil {
				return err
			}
			if err := dat.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("journal: prune: %w", err)
	}
	return n, nil
}
