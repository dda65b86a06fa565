package journal

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// moveDelay (a variable for the tests) is how long the mover lets appends
// gather after the first one before it copies them into the bbolt file: one
// bbolt commit for every moveDelay of scanning, off the scans' path. It is
// real time, not Options.Time: it only batches (reads see the log too),
// and a test clock that stands still must not leave the log growing.
var moveDelay = 100 * time.Millisecond

// movePerCommit is the most records the mover copies in one transaction.
const movePerCommit = 10000

// maxMovable bounds the bytes of logged events waiting for the mover (held
// in memory). Beyond it the committer moves them itself before its next
// write: only a flood of appends (tens of thousands a second, far above
// any station's rate) gets there, and then appends wait for bbolt commits
// rather than the heap growing without bound.
const maxMovable = 2 << 20

// keepUp is the committer's check of maxMovable.
func (j *Journal) keepUp() {
	j.mu.Lock()
	over := j.movable > maxMovable
	j.mu.Unlock()
	if over {
		j.moveAll()
	}
}

// moveLoop is the mover: woken by appends, it copies the logged records
// into the bbolt file until stop is closed, and once more then.
func (j *Journal) moveLoop(stop <-chan struct{}) {
	for {
		select {
		case <-j.moveCh:
		case <-stop:
			j.moveAll()
			return
		}
		t := time.NewTimer(moveDelay)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
		}
		j.moveAll()
	}
}

// moveAll copies every logged record not yet in the bbolt file into it. A
// failure is logged and left for the next try (the records stay in the
// log, which grows meanwhile).
func (j *Journal) moveAll() error {
	for {
		j.mu.Lock()
		recs := j.unmoved
		j.mu.Unlock()
		if len(recs) == 0 {
			return nil
		}
		recs = recs[:min(len(recs), movePerCommit)]
		var w uint64
		err := j.db.Update(func(tx *bolt.Tx) error {
			var err error
			w, err = moveInto(tx, recs)
			return err
		})
		if err != nil {
			j.opts.Log.Error("journal: moving logged events into the file failed; they stay in the log", "err", err)
			return err
		}
		j.pruneMoved(w)
	}
}

// moveInto puts the records above the pending bucket's sequence into the
// pending buckets and raises the sequence to the last of them, so that
// moving a record twice (a crash after the commit, before the log was
// recycled) changes nothing. It returns the new sequence: every seq up to
// it is in the file (or was delivered since).
func moveInto(tx *bolt.Tx, recs []logRec) (uint64, error) {
	p, at := tx.Bucket(bPending), tx.Bucket(bPendingAt)
	w := p.Sequence()
	top := w
	for _, r := range recs {
		if r.seq <= top {
			continue
		}
		if err := p.Put(key(r.seq), r.data); err != nil {
			return 0, err
		}
		if err := at.Put(key(r.seq), key(uint64(r.at))); err != nil {
			return 0, err
		}
		top = r.seq
	}
	if top != w {
		if err := p.SetSequence(top); err != nil {
			return 0, err
		}
	}
	return top, nil
}

// pruneMoved drops from memory the records up to w, which a committed
// transaction holds.
func (j *Journal) pruneMoved(w uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if w <= j.moved {
		return
	}
	j.moved = w
	i := 0
	for i < len(j.unmoved) && j.unmoved[i].seq <= w {
		j.movable -= int64(len(j.unmoved[i].data))
		i++
	}
	j.unmoved = j.unmoved[i:]
	if len(j.unmoved) == 0 {
		j.unmoved = nil
	}
}

// unmovedUpTo returns the logged records not yet moved whose seq is at most
// upTo.
func (j *Journal) unmovedUpTo(upTo uint64) []logRec {
	j.mu.Lock()
	defer j.mu.Unlock()
	i := 0
	for i < len(j.unmoved) && j.unmoved[i].seq <= upTo {
		i++
	}
	return j.unmoved[:i]
}

// snapshot returns the logged records not yet moved. Taken before a read
// transaction, it holds every record the transaction might not: a record
// dropped from it was committed before the transaction began. Records
// with a seq at or below the transaction's pending sequence are in the
// transaction and are skipped.
func (j *Journal) snapshot() []logRec {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.unmoved
}

func (j *Journal) wakeMover() {
	select {
	case j.moveCh <- struct{}{}:
	default:
	}
}
