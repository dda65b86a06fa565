// Package journal is the gateway's event outbox: every decision's event is
// committed here, with fsync, before the gate or the operator is told
// (PROTOCOL §5.4), and leaves only after central's broker acknowledged it.
//
// An append is made durable in a log of its own (LogPath), one sequential
// write and one fdatasync shared by every append waiting when the write
// starts; a mover then copies the logged events into the bbolt file in the
// background (see wal.go), where delivery bookkeeping, redelivery and
// export keep working as before. So a scan waits neither for a B-tree
// commit nor behind the outbox's bookkeeping, and the bbolt file is its
// own, so never behind an order commit either.
package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cargogate/cargogate/internal/tstime"
)

var (
	bPending   = []byte("pending")
	bDelivered = []byte("delivered")
	bState     = []byte("state")
	// bPendingAt holds, for every pending event, the time it was appended
	// (journal seq → u64 BE Unix nanoseconds), written in the same
	// transaction as the event and removed with it.
	bPendingAt = []byte("pending_at")
	// bDeliveredAt holds, for every delivered event, when it was delivered
	// (journal seq → u64 BE Unix nanoseconds), for Redeliver.
	bDeliveredAt = []byte("delivered_at")
)

// DefaultAlarmPercent is the outbox fill level, in percent of MaxEvents or
// MaxBytes, from which the journal reports an alarm.
const DefaultAlarmPercent = 80

// Options tune the journal.
type Options struct {
	LockTimeout time.Duration // default 1s
	// MaxEvents and MaxBytes bound the undelivered events; 0: no bound.
	// Append refuses an event beyond either bound with ErrFull.
	MaxEvents int
	MaxBytes  int64
	// AlarmPercent is the fill level (of MaxEvents or MaxBytes, whichever
	// is fuller) at which Health reports an alarm and the journal logs a
	// warning, so that operators hear of a stuck outbox well before it
	// refuses anything. Default 80; it only applies to a bounded outbox.
	AlarmPercent int
	// KeepDelivered keeps delivered events for export and audit.
	KeepDelivered bool
	// DeliveredPerCommit is the most events Delivered moves in one write
	// transaction. Appends (the scans) wait for the transaction in
	// progress, so a small one keeps them quick; the outbox drains with
	// more, smaller commits. Default 128; negative: all in one.
	DeliveredPerCommit int
	// LogBytes is the size the append log is made with, zero-filled;
	// it grows when the mover falls that far behind. Default 1 MiB, at
	// least 64 KiB.
	LogBytes int64
	// Log receives the alarm and refusal messages; nil: discard them.
	Log *slog.Logger
	// Time stamps appends and deliveries (the redelivery window and
	// retention go by them); nil: the real clock.
	Time tstime.Clock
}

// Journal is the outbox.
type Journal struct {
	db   *bolt.DB
	log  *wal   // owned by the committer (Open and Close when it is not running)
	seq  uint64 // the last journal seq given; owned by the committer
	opts Options
	reqs chan *appendReq
	done chan struct{} // closed by Close
	// stopped is closed when Run returns: appends not committed by then
	// fail with ErrClosed.
	stopped chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	mu      sync.Mutex
	ran     bool // Run was called
	closed  bool // Close was called
	count   int
	bytes   int64
	alarm   bool
	refused uint64 // appends refused with ErrFull
	failed  uint64 // appends whose commit failed (disk full, I/O)
	lastErr string // the last commit error, "" after a good commit
	notify  chan struct{}
	// unmoved are the logged events not yet in the bbolt file, in seq
	// order; moved is the pending bucket's sequence after the last
	// committed move: every seq up to it is in the file.
	unmoved []logRec
	movable int64 // bytes of the events in unmoved
	moved   uint64
	moveCh  chan struct{}
}

type appendReq struct {
	data []byte
	at   time.Time
	seq  uint64
	err  chan error
}

// Open opens or creates the journal at path. Appends are committed by Run,
// which the caller runs: an Append waits until Run has committed it.
func Open(path string, opts Options) (*Journal, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = time.Second
	}
	if opts.AlarmPercent <= 0 || opts.AlarmPercent > 100 {
		opts.AlarmPercent = DefaultAlarmPercent
	}
	if opts.DeliveredPerCommit == 0 {
		opts.DeliveredPerCommit = DefaultDeliveredPerCommit
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.Log = opts.Log.With("part", "journal")
	opts.Time = tstime.Or(opts.Time)
	if opts.LogBytes <= 0 {
		opts.LogBytes = DefaultLogBytes
	}
	_, statErr := os.Stat(path)
	_, logStatErr := os.Stat(LogPath(path))
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, FreelistType: bolt.FreelistMapType, InitialMmapSize: 256 << 20})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w (is another cargogate running with this data_dir?)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	j := &Journal{db: db, opts: opts, reqs: make(chan *appendReq, 1024), done: make(chan struct{}), stopped: make(chan struct{}),
		notify: make(chan struct{}, 1), moveCh: make(chan struct{}, 1)}
	// The log first: what it holds that the file does not yet have (the
	// appends acknowledged before a crash) is moved in before anything
	// else reads the file. A torn last record, an append never
	// acknowledged, is not read and is overwritten by the next append.
	log, recs, err := openWAL(LogPath(path), opts.LogBytes)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", LogPath(path), err)
	}
	j.log = log
	var made []string
	for _, m := range []struct {
		path string
		err  error
	}{{path, statErr}, {LogPath(path), logStatErr}} {
		if os.IsNotExist(m.err) {
			made = append(made, m.path)
		}
	}
	if err := giveToDirOwner(filepath.Dir(path), made...); err != nil {
		log.f.Close()
		db.Close()
		return nil, fmt.Errorf("open %s: give the new files to the directory's owner: %w", path, err)
	}
	if os.IsNotExist(statErr) {
		// A new bbolt file's name is made durable before any append is
		// acknowledged: once moved, the events are only in it. (The log
		// syncs the directory when it makes its own file.)
		if err := syncDir(filepath.Dir(path)); err != nil {
			log.f.Close()
			db.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bPending, bDelivered, bState, bPendingAt, bDeliveredAt} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		var err error
		if j.seq, err = moveInto(tx, recs); err != nil {
			return err
		}
		j.moved = j.seq
		return tx.Bucket(bPending).ForEach(func(k, v []byte) error {
			j.count++
			j.bytes += int64(len(v))
			return nil
		})
	})
	if err == nil {
		err = j.log.shrink()
	}
	if err != nil {
		log.f.Close()
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if j.count > 0 {
		j.signal()
	}
	j.mu.Lock()
	j.checkAlarm()
	j.mu.Unlock()
	return j, nil
}

// Run is the committer: it group-commits appends until ctx ends or Close is
// called, and returns nil. When ctx ends it first commits the appends queued
// at that moment; appends not committed when Run returns fail with
// ErrClosed. After Close, Run returns nil at once. Run may be called once.
func (j *Journal) Run(ctx context.Context) error {
	j.mu.Lock()
	if j.ran {
		j.mu.Unlock()
		return errRunTwice
	}
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.ran = true
	j.wg.Add(1)
	j.mu.Unlock()
	defer close(j.stopped)
	defer j.wg.Done()
	stop, moverDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(moverDone)
		j.moveLoop(stop)
	}()
	j.commitLoop(ctx)
	close(stop)
	<-moverDone
	return nil
}

// Close stops Run, if it runs, moves what the log holds into the bbolt
// file, clears the log and closes both. Appends in flight fail. It is safe
// whether or not Run ever ran.
func (j *Journal) Close() error {
	err := ErrClosed
	j.once.Do(func() {
		j.mu.Lock()
		j.closed = true
		j.mu.Unlock()
		close(j.done)
		j.wg.Wait()
		// Whatever fails here leaves the events in the log, moved at the
		// next Open.
		err = j.moveAll()
		if err == nil {
			err = j.log.clear()
		}
		if cerr := j.log.f.Close(); err == nil {
			err = cerr
		}
		if cerr := j.db.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// Append commits one event durably and returns its journal seq. It blocks
// until the group write holding it has been fdatasynced to the log. An
// event longer than 64 MiB is refused with ErrTooLarge.
func (j *Journal) Append(ctx context.Context, data []byte) (uint64, error) {
	if len(data) > maxRecord {
		return 0, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), maxRecord)
	}
	r := &appendReq{data: data, at: j.opts.Time.Now(), err: make(chan error, 1)}
	select {
	case j.reqs <- r:
	case <-j.done:
		return 0, ErrClosed
	case <-j.stopped:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case err := <-r.err:
		return r.seq, err
	case <-j.done:
		// The committer may be writing this append: its answer, once Run
		// returned, is the truth (an append answered ErrClosed but written
		// would be sent as an event of a scan the gate stopped). Without
		// Run (never called before Close), nothing was written.
		j.mu.Lock()
		ran := j.ran
		j.mu.Unlock()
		if !ran {
			return 0, ErrClosed
		}
		<-j.stopped
		select {
		case err := <-r.err:
			return r.seq, err
		default:
			return 0, ErrClosed
		}
	case <-j.stopped:
		// Run answers every append it committed before it returns.
		select {
		case err := <-r.err:
			return r.seq, err
		default:
			return 0, ErrClosed
		}
	}
}

func (j *Journal) commitLoop(ctx context.Context) {
	for {
		var batch []*appendReq
		select {
		case r := <-j.reqs:
			batch = append(batch, r)
		case <-j.done:
			return
		case <-ctx.Done():
			j.commitQueued()
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

// commitQueued commits the appends queued now, in batches of the usual size.
func (j *Journal) commitQueued() {
	for {
		var batch []*appendReq
	more:
		for len(batch) < 1000 {
			select {
			case r := <-j.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		if len(batch) == 0 {
			return
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
			j.mu.Lock()
			j.refused++
			n := j.refused
			j.mu.Unlock()
			j.opts.Log.Error("outbox full: event refused", "events", count, "bytes", bytes,
				"max_events", j.opts.MaxEvents, "max_bytes", j.opts.MaxBytes, "refused", n)
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
	j.keepUp()
	j.mu.Lock()
	moved := j.moved
	j.mu.Unlock()
	if j.log.last != 0 && j.log.last <= moved {
		j.log.recycle() // the file has every record written: start again
	}
	size := 0
	for _, r := range accepted {
		size += recHeader + len(r.data)
	}
	// One buffer for the group, kept (the records' events point into it)
	// until the mover has moved them.
	buf := make([]byte, 0, size)
	recs := make([]logRec, len(accepted))
	seq := j.seq
	for i, r := range accepted {
		seq++
		r.seq = seq
		start := len(buf)
		buf = appendRec(buf, seq, r.at.UnixNano(), r.data)
		recs[i] = logRec{seq: seq, at: r.at.UnixNano(), data: buf[start+recHeader:]}
	}
	err := j.log.write(buf, seq)
	if err == nil {
		j.seq = seq
	}
	j.mu.Lock()
	if err == nil {
		for _, r := range accepted {
			j.count++
			j.bytes += int64(len(r.data))
		}
		j.unmoved = append(j.unmoved, recs...)
		j.movable += int64(size - len(recs)*recHeader)
		j.lastErr = ""
		j.checkAlarm()
	} else {
		err = fmt.Errorf("journal: commit: %w", err)
		j.failed += uint64(len(accepted))
		j.lastErr = err.Error()
	}
	j.mu.Unlock()
	if err == nil {
		j.signal()
		j.wakeMover()
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

// DefaultDeliveredPerCommit is Options.DeliveredPerCommit's default.
const DefaultDeliveredPerCommit = 128

// Delivered removes events that central acknowledged, keeping a
// copy in the delivered bucket when configured. It commits them in
// transactions of at most DeliveredPerCommit events, so that the appends
// waiting for the file wait for a small one: a crash between two leaves
// the later events pending, and they are sent again (central drops the
// copies by event id).
func (j *Journal) Delivered(entries []Entry) error {
	for len(entries) > 0 {
		n := len(entries)
		if per := j.opts.DeliveredPerCommit; per > 0 {
			n = min(n, per)
		}
		if err := j.delivered(entries[:n]); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}

func (j *Journal) delivered(entries []Entry) error {
	var removed int
	var freed int64
	now := key(uint64(j.opts.Time.Now().UnixNano()))
	// Events delivered straight from the log are moved into the file in
	// the same transaction, so that their removal is not undone by a later
	// move.
	var top uint64
	for _, e := range entries {
		top = max(top, e.Seq)
	}
	logged := j.unmovedUpTo(top)
	var w uint64
	err := j.db.Update(func(tx *bolt.Tx) error {
		p, d, at, dat := tx.Bucket(bPending), tx.Bucket(bDelivered), tx.Bucket(bPendingAt), tx.Bucket(bDeliveredAt)
		removed, freed = 0, 0
		var err error
		if w, err = moveInto(tx, logged); err != nil {
			return err
		}
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
				if err := dat.Put(k, now); err != nil {
					return err
				}
			}
			if err := p.Delete(k); err != nil {
				return err
			}
			if err := at.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal: delivered: %w", err)
	}
	j.pruneMoved(w)
	j.mu.Lock()
	j.count -= removed
	j.bytes -= freed
	j.checkAlarm()
	j.mu.Unlock()
	return nil
}
