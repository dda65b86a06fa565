// Package journal is the gateway's event outbox: every decision's event is
// committed here, with fsync, before the gate or the operator is told
// (PROTOCOL §5.4), and leaves only after central's broker acknowledged it.
//
// It is a bbolt file of its own, so a scan never waits behind a bulk order
// commit, and appends are group-committed: every scan waiting when a commit
// starts shares its fsync.
package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bPending   = []byte("pending")
	bDelivered = []byte("delivered")
	bState     = []byte("state")
)

// ErrFull is returned by Append when the outbox holds its configured limit.
var ErrFull = errors.New("journal: outbox full")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("journal: closed")

// Entry is one journalled event.
type Entry struct {
	Seq  uint64 // position in the journal, ascending in decision order
	Data []byte // the event's JSON
}

// Options tune the journal.
type Options struct {
	LockTimeout time.Duration // default 1s
	// MaxEvents and MaxBytes bound the undelivered events; 0: no bound.
	MaxEvents int
	MaxBytes  int64
	// KeepDelivered keeps delivered events for export and audit.
	KeepDelivered bool
}

// Journal is the outbox.
type Journal struct {
	db   *bolt.DB
	opts Options
	reqs chan *appendReq
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	mu       sync.Mutex
	count    int
	bytes    int64
	oldestAt time.Time
	notify   chan struct{}
}

type appendReq struct {
	data []byte
	at   time.Time
	seq  uint64
	err  chan error
}

// Open opens or creates the journal at path and starts its committer.
func Open(path string, opts Options) (*Journal, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, FreelistType: bolt.FreelistMapType, InitialMmapSize: 256 << 20})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: in use by another process (is another cargogate running with this data_dir?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	j := &Journal{db: db, opts: opts, reqs: make(chan *appendReq, 1024), done: make(chan struct{}), notify: make(chan struct{}, 1)}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bPending, bDelivered, bState} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		p := tx.Bucket(bPending)
		j.count = p.Stats().KeyN
		return p.ForEach(func(k, v []byte) error {
			j.bytes += int64(len(v))
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if j.count > 0 {
		j.oldestAt = time.Now()
		j.signal()
	}
	j.wg.Add(1)
	go j.commitLoop()
	return j, nil
}

// Close stops the committer and closes the file. Appends in flight fail.
func (j *Journal) Close() error {
	err := ErrClosed
	j.once.Do(func() {
		close(j.done)
		j.wg.Wait()
		err = j.db.Close()
	})
	return err
}

// Append commits one event durably and returns its journal seq. It blocks
// until the group commit holding it has been fsynced.
func (j *Journal) Append(ctx context.Context, data []byte) (uint64, error) {
	r := &appendReq{data: data, at: time.Now(), err: make(chan error, 1)}
	select {
	case j.reqs <- r:
	case <-j.done:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case err := <-r.err:
		return r.seq, err
	case <-j.done:
		return 0, ErrClosed
	}
}

func (j *Journal) commitLoop() {
	defer j.wg.Done()
	for {
		var batch []*appendReq
		select {
		case r := <-j.reqs:
			batch = append(batch, r)
		case <-j.done:
			return
		}
	more:
		for len(batch) < 1000 {
			select {
			case r := <-j.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		j.commit(batch)
	}
}

func (j *Journal) commit(batch []*appendReq) {
	j.mu.Lock()
	count, bytes := j.count, j.bytes
	j.mu.Unlock()
	var accepted []*appendReq
	for _, r := range batch {
		if (j.opts.MaxEvents > 0 && count+1 > j.opts.MaxEvents) || (j.opts.MaxBytes > 0 && bytes+int64(len(r.data)) > j.opts.MaxBytes) {
			r.err <- ErrFull
			continue
		}
		count++
		bytes += int64(len(r.data))
		accepted = append(accepted, r)
	}
	if len(accepted) == 0 {
		return
	}
	err := j.db.Update(func(tx *bolt.Tx) error {
		p := tx.Bucket(bPending)
		for _, r := range accepted {
			seq, err := p.NextSequence()
			if err != nil {
				return err
			}
			r.seq = seq
			if err := p.Put(key(seq), r.data); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		j.mu.Lock()
		if j.count == 0 {
			j.oldestAt = accepted[0].at
		}
		for _, r := range accepted {
			j.count++
			j.bytes += int64(len(r.data))
		}
		j.mu.Unlock()
		j.signal()
	} else {
		err = fmt.Errorf("journal: commit: %w", err)
	}
	for _, r := range accepted {
		r.err <- err
	}
}

func (j *Journal) signal() {
	select {
	case j.notify <- struct{}{}:
	default:
	}
}

// Notify is signalled after events were appended (coalesced).
func (j *Journal) Notify() <-chan struct{} { return j.notify }

func key(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return b[:]
}

// Pending returns up to max undelivered events, oldest first, their sizes
// summing to at most maxBytes (but always at least one).
func (j *Journal) Pending(max int, maxBytes int) ([]Entry, error) {
	var out []Entry
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bPending).Cursor()
		size := 0
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			if len(out) > 0 && size+len(v) > maxBytes {
				break
			}
			size += len(v)
			out = append(out, Entry{Seq: binary.BigEndian.Uint64(k), Data: append([]byte(nil), v...)})
		}
		return nil
	})
	return out, err
}

// Delivered removes events that central's broker acknowledged, keeping a
// copy in the delivered bucket when configured.
func (j *Journal) Delivered(entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	var removed int
	var freed int64
	err := j.db.Update(func(tx *bolt.Tx) error {
		p, d := tx.Bucket(bPending), tx.Bucket(bDelivered)
		removed, freed = 0, 0
		for _, e := range entries {
			k := key(e.Seq)
			v := p.Get(k)
			if v == nil {
				continue
			}
			removed++
			freed += int64(len(v))
			if j.opts.KeepDelivered {
				if err := d.Put(k, v); err != nil {
					return err
				}
			}
			if err := p.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal: delivered: %w", err)
	}
	j.mu.Lock()
	j.count -= removed
	j.bytes -= freed
	if j.count > 0 {
		j.oldestAt = time.Now()
	} else {
		j.oldestAt = time.Time{}
	}
	j.mu.Unlock()
	return nil
}

// Depth is the number and bytes of undelivered events.
func (j *Journal) Depth() (events int, bytes int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.count, j.bytes
}

// ForEach calls fn for every event, delivered first then pending, in
// journal order, stopping at fn's first error.
func (j *Journal) ForEach(fn func(e Entry, delivered bool) error) error {
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
		return nil
	})
}

// GetState and PutState keep small named records (station state such as an
// open transit) in the journal's file, committed with fsync.
func (j *Journal) GetState(name string) ([]byte, error) {
	var out []byte
	err := j.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bState).Get([]byte(name)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// PutState stores a named record; nil deletes it.
func (j *Journal) PutState(name string, v []byte) error {
	return j.db.Update(func(tx *bolt.Tx) error {
		if v == nil {
			return tx.Bucket(bState).Delete([]byte(name))
		}
		return tx.Bucket(bState).Put([]byte(name), v)
	})
}
