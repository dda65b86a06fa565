package journal

import (
	"encoding/binary"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Reads see the bbolt file and, after it, the logged events not yet moved
// into it (see snapshot): an event is readable, and can be delivered, as
// soon as its Append returned, never before (it is in the log only once
// the log was synced).

// Pending returns up to max undelivered events, oldest first, their sizes
// summing to at most maxBytes (but always at least one).
func (j *Journal) Pending(max int, maxBytes int) ([]Entry, error) {
	return j.PendingAfter(0, max, maxBytes)
}

// PendingAfter is Pending from the first event whose journal seq is
// greater than after.
func (j *Journal) PendingAfter(after uint64, max int, maxBytes int) ([]Entry, error) {
	var out []Entry
	size := 0
	take := func(seq uint64, v []byte) bool {
		if len(out) >= max || (len(out) > 0 && size+len(v) > maxBytes) {
			return false
		}
		size += len(v)
		out = append(out, Entry{Seq: seq, Data: append([]byte(nil), v...)})
		return true
	}
	logged := j.snapshot()
	err := j.db.View(func(tx *bolt.Tx) error {
		p := tx.Bucket(bPending)
		c := p.Cursor()
		for k, v := c.Seek(key(after + 1)); k != nil; k, v = c.Next() {
			if !take(binary.BigEndian.Uint64(k), v) {
				return nil
			}
		}
		w := p.Sequence()
		for _, r := range logged {
			if r.seq > w && r.seq > after && !take(r.seq, r.data) {
				return nil
			}
		}
		return nil
	})
	return out, err
}

// ForEach calls fn for every event, delivered first then pending, in
// journal order, stopping at fn's first error.
func (j *Journal) ForEach(fn func(e Entry, delivered bool) error) error {
	logged := j.snapshot()
	return j.db.View(func(tx *bolt.Tx) error {
		for _, b := range []struct {
			name      []byte
			delivered bool
		}{{bDelivered, true}, {bPending, false}} {
			err := tx.Bucket(b.name).ForEach(func(k, v []byte) error {
				return fn(Entry{Seq: binary.BigEndian.Uint64(k), Data: v}, b.delivered)
			})
			if err != nil {
				return err
			}
		}
		w := tx.Bucket(bPending).Sequence()
		for _, r := range logged {
			if r.seq <= w {
				continue
			}
			if err := fn(Entry{Seq: r.seq, Data: r.data}, false); err != nil {
				return err
			}
		}
		return nil
	})
}

// OldestPending returns when the oldest undelivered event was appended,
// read from the file each time (so it is right after any delivery), and
// false when nothing is pending. An event journalled before the append
// time was kept falls back to its own "at" field.
func (j *Journal) OldestPending() (time.Time, bool, error) {
	var at time.Time
	var ok bool
	logged := j.snapshot()
	err := j.db.View(func(tx *bolt.Tx) error {
		p := tx.Bucket(bPending)
		k, v := p.Cursor().First()
		if k == nil {
			w := p.Sequence()
			for _, r := range logged {
				if r.seq > w {
					at, ok = time.Unix(0, r.at), true
					break
				}
			}
			return nil
		}
		ok = true
		if t := tx.Bucket(bPendingAt).Get(k); len(t) == 8 {
			at = time.Unix(0, int64(binary.BigEndian.Uint64(t)))
			return nil
		}
		var probe struct {
			At time.Time `json:"at"`
		}
		if json.Unmarshal(v, &probe) == nil {
			at = probe.At
		}
		return nil
	})
	return at, ok, err
}
