// Package audit is the gateway's tamper-evident record (有据可查): every order
// applied or rejected, every decision, every device fault, every config load
// and key change is appended to a hash chain in its own bbolt file, and the
// chain's head is signed in a checkpoint at least every minute and sent to
// central. Verify recomputes the chain and names the first record that was
// changed, deleted or cut off.
//
// Appends are asynchronous and group-committed: the audit never holds up a
// scan (the decision itself is already durable in the journal). A crash can
// lose the last unflushed records, never reorder or alter committed ones.
// Records the log cannot take (its queue full, a commit failing) are never
// lost quietly: they are counted (Lost), and a gap record is chained in
// their place, saying how many and of which kinds, so that Verify and an
// officer reading the export see where the record is incomplete.
package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bRecords     = []byte("records")     // index → record JSON
	bChain       = []byte("chain")       // index → chain hash after the record
	bCheckpoints = []byte("checkpoints") // size → signed checkpoint JSON
)

// Record kinds.
const (
	KindOrderApplied  = "order_applied"
	KindOrderRejected = "order_rejected"
	KindOrderConflict = "order_conflict"
	KindDecision      = "decision"
	KindDevice        = "device"
	KindConfig        = "config"
	KindKey           = "key"
	KindStart         = "start"
	// KindGap stands for records the log could not take: data is a Gap.
	KindGap = "gap"
)

// DefaultQueue is how many records may wait for the committer.
const DefaultQueue = 65536

// Gap is the data of a gap record: records lost between the record before
// it and the record after it.
type Gap struct {
	Lost   uint64            `json:"lost"`
	Reason string            `json:"reason"` // queue_full, commit_failed or closed; several joined by commas
	First  time.Time         `json:"first_at"`
	Last   time.Time         `json:"last_at"`
	Kinds  map[string]uint64 `json:"kinds"`
}

func (g *Gap) add(kind, reason string, at time.Time, n uint64) {
	if g.Lost == 0 {
		g.First, g.Reason, g.Kinds = at, reason, map[string]uint64{}
	} else if !slices.Contains(strings.Split(g.Reason, ","), reason) {
		g.Reason += "," + reason
	}
	g.Lost += n
	g.Last = at
	g.Kinds[kind] += n
}

// Record is one audited fact.
type Record struct {
	Index uint64          `json:"index"`
	At    time.Time       `json:"at"`
	Kind  string          `json:"kind"`
	Data  json.RawMessage `json:"data"`
}

// Checkpoint is a signed statement of the chain: its size and head hash.
type Checkpoint struct {
	Size uint64    `json:"size"`
	Head string    `json:"head"` // hex SHA-256 chain hash after record Size-1
	At   time.Time `json:"at"`
	Kid  string    `json:"kid"`
	Sig  string    `json:"sig,omitempty"` // hex Ed25519 over the JSON with Sig empty
}

func (c Checkpoint) signedBytes() []byte {
	c.Sig = ""
	b, _ := json.Marshal(c)
	return b
}

// Log is the audit log.
type Log struct {
	db  *bolt.DB
	log *slog.Logger
	in  chan pending

	mu   sync.Mutex
	next uint64
	head [32]byte
	wg   sync.WaitGroup
	quit chan struct{} // closed to stop Run
	stop sync.Once     // closes quit
	once sync.Once
	ran  bool // Run was called
	shut bool // Close was called

	// qmu orders the queue's producers with the gap they leave: a gap
	// record is queued before the next record that fits.
	qmu sync.Mutex
	gap Gap // records lost since the last gap record was queued
	// qclosed: Close has taken the queue; later records are counted lost.
	qclosed bool
	// closed is closed once Close committed the queue: an AddSync still
	// waiting then gets errClosed.
	closed chan struct{}
	lost   atomic.Uint64 // records lost in all, since Open
	// lastCP is the time of the last signed checkpoint (unix ns), 0: none.
	lastCP atomic.Int64
	// lastLog rate-limits the "record lost" log line.
	lastLog time.Time
}

type pending struct {
	at   time.Time
	kind string
	data []byte
	done chan error // nil: do not wait
}

// Open opens or creates the log at path; nil log: discard. Records are
// committed by Run, which the caller runs; Close commits what is left.
func Open(path string, log *slog.Logger) (*Log, error) {
	return open(path, log, DefaultQueue)
}

func open(path string, log *slog.Logger, queue int) (*Log, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	l := &Log{db: db, log: log, in: make(chan pending, queue), quit: make(chan struct{}), closed: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bRecords, bChain, bCheckpoints} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if k, v := tx.Bucket(bChain).Cursor().Last(); k != nil {
			l.next = binary.BigEndian.Uint64(k) + 1
			copy(l.head[:], v)
		}
		l.noteCheckpoint(tx.Bucket(bCheckpoints).Cursor().Last())
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	return l, nil
}

// Run is the committer: it group-commits queued records until ctx ends or
// Close is called, then commits what is queued and returns nil. After
// Close, Run returns nil at once. Run may be called once.
func (l *Log) Run(ctx context.Context) error {
	l.mu.Lock()
	if l.ran {
		l.mu.Unlock()
		return errRunTwice
	}
	if l.shut {
		l.mu.Unlock()
		return nil
	}
	l.ran = true
	l.wg.Add(1)
	l.mu.Unlock()
	defer context.AfterFunc(ctx, l.stopRun)()
	l.commitLoop()
	return nil
}

func (l *Log) stopRun() { l.stop.Do(func() { close(l.quit) }) }

// Close stops Run, commits what is still queued (whether or not Run ever
// ran) and the gap record of what was lost since the last one, and closes
// the file.
func (l *Log) Close() error {
	err := errClosed
	l.once.Do(func() {
		l.mu.Lock()
		l.shut = true
		l.mu.Unlock()
		l.stopRun()
		l.wg.Wait()
		// From here on a record cannot be queued (it is counted lost), so
		// the queue drained below is all there will be.
		l.qmu.Lock()
		l.qclosed = true
		l.qmu.Unlock()
		l.commitQueued()
		l.qmu.Lock()
		if l.gap.Lost > 0 {
			l.commit([]pending{l.gapRecordLocked()})
			l.gap = Gap{}
		}
		l.qmu.Unlock()
		close(l.closed)
		err = l.db.Close()
	})
	return err
}

// commitQueued commits the records queued now.
func (l *Log) commitQueued() {
	for {
		var batch []pending
	more:
		for len(batch) < 4096 {
			select {
			case p := <-l.in:
				batch = append(batch, p)
			default:
				break more
			}
		}
		if len(batch) == 0 {
			return
		}
		l.commit(batch)
	}
}

// Add queues a record; it never blocks: the audit must not stop the
// gateway. If the queue is full the record is lost, counted (Lost) and
// logged, and a gap record saying so is chained before the next record
// that fits. A record added after Close is counted lost (reason closed).
func (l *Log) Add(kind string, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		raw, _ = json.Marshal(map[string]string{"marshal_error": err.Error()})
	}
	p := pending{at: time.Now().UTC(), kind: kind, data: raw}
	l.qmu.Lock()
	defer l.qmu.Unlock()
	if l.qclosed {
		l.lostLocked(p, "closed", 1)
		return
	}
	if l.gap.Lost > 0 {
		select {
		case l.in <- l.gapRecordLocked():
			l.gap = Gap{}
		default:
			l.lostLocked(p, "queue_full", 1)
			return
		}
	}
	select {
	case l.in <- p:
	default:
		l.lostLocked(p, "queue_full", 1)
	}
}

// gapRecordLocked makes the gap record of what was lost; the caller
// clears l.gap once it is queued. l.qmu is held.
func (l *Log) gapRecordLocked() pending {
	raw, _ := json.Marshal(l.gap)
	return pending{at: time.Now().UTC(), kind: KindGap, data: raw}
}

// lostLocked counts n records like p as lost. l.qmu is held.
func (l *Log) lostLocked(p pending, reason string, n uint64) {
	l.gap.add(p.kind, reason, p.at, n)
	total := l.lost.Add(n)
	if now := time.Now(); now.Sub(l.lastLog) >= time.Second {
		l.lastLog = now
		l.log.Error("audit record lost: a gap record will say how many", "reason", reason, "kind", p.kind, "lost_total", total)
	}
}

// AddSync appends a record and waits until it is committed (by Run, or by
// Close). On a closed log it returns an error.
func (l *Log) AddSync(ctx context.Context, kind string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	p := pending{at: time.Now().UTC(), kind: kind, data: raw, done: make(chan error, 1)}
	l.qmu.Lock()
	if l.qclosed {
		l.qmu.Unlock()
		return errClosed
	}
	if l.gap.Lost > 0 {
		select {
		case l.in <- l.gapRecordLocked():
			l.gap = Gap{}
		default: // the gap record goes before a later record
		}
	}
	l.qmu.Unlock()
	select {
	case l.in <- p:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closed:
		return errClosed
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closed:
		select {
		case err := <-p.done: // committed by Close
			return err
		default:
			return errClosed
		}
	}
}

func (l *Log) commitLoop() {
	defer l.wg.Done()
	for {
		var batch []pending
		select {
		case p := <-l.in:
			batch = append(batch, p)
		case <-l.quit:
			// Flush what is queued, then stop.
			for {
				select {
				case p := <-l.in:
					batch = append(batch, p)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				l.commit(batch)
			}
			return
		}
	more:
		for len(batch) < 4096 {
			select {
			case p := <-l.in:
				batch = append(batch, p)
			default:
				break more
			}
		}
		l.commit(batch)
	}
}

func chainNext(prev [32]byte, rec []byte) [32]byte {
	leaf := sha256.Sum256(rec)
	h := sha256.New()
	h.Write(prev[:])
	h.Write(leaf[:])
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func key(i uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return b[:]
}

func (l *Log) commit(batch []pending) {
	l.mu.Lock()
	next, head := l.next, l.head
	l.mu.Unlock()
	err := l.db.Update(func(tx *bolt.Tx) error {
		rb, cb := tx.Bucket(bRecords), tx.Bucket(bChain)
		n, h := next, head
		for _, p := range batch {
			raw, err := json.Marshal(Record{Index: n, At: p.at, Kind: p.kind, Data: p.data})
			if err != nil {
				return err
			}
			h = chainNext(h, raw)
			if err := rb.Put(key(n), raw); err != nil {
				return err
			}
			// bbolt keeps the value slice until commit: give it its own copy.
			if err := cb.Put(key(n), append([]byte(nil), h[:]...)); err != nil {
				return err
			}
			n++
		}
		next, head = n, h
		return nil
	})
	if err == nil {
		l.mu.Lock()
		l.next, l.head = next, head
		l.mu.Unlock()
	} else {
		l.log.Error("audit commit failed: records lost", "records", len(batch), "err", err)
		l.qmu.Lock()
		for _, p := range batch {
			if p.kind == KindGap {
				// The lost records it stood for are lost again: fold them in.
				var g Gap
				if json.Unmarshal(p.data, &g) == nil {
					for k, n := range g.Kinds {
						l.gap.add(k, g.Reason, g.Last, n)
					}
				}
				continue
			}
			if p.done == nil { // AddSync callers get the error instead
				l.lostLocked(p, "commit_failed", 1)
			}
		}
		l.qmu.Unlock()
	}
	for _, p := range batch {
		if p.done != nil {
			p.done <- err
		}
	}
}

// Head returns the chain's size and head hash as committed.
func (l *Log) Head() (uint64, [32]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next, l.head
}

// Lost is the number of records lost (queue full, commit failed) since
// Open; each is accounted for in a gap record.
func (l *Log) Lost() uint64 { return l.lost.Load() }

// Checkpoint signs the chain's head now and stores the checkpoint.
func (l *Log) Checkpoint(kid string, key ed25519.PrivateKey, now time.Time) (Checkpoint, error) {
	size, head := l.Head()
	c := Checkpoint{Size: size, Head: hex.EncodeToString(head[:]), At: now.UTC(), Kid: kid}
	c.Sig = hex.EncodeToString(ed25519.Sign(key, c.signedBytes()))
	raw, _ := json.Marshal(c)
	err := l.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bCheckpoints).Put(key64(size), raw) })
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	l.lastCP.Store(c.At.UnixNano())
	return c, nil
}

// noteCheckpoint takes the time of a stored checkpoint as the last one.
func (l *Log) noteCheckpoint(k, raw []byte) {
	var c Checkpoint
	if k != nil && json.Unmarshal(raw, &c) == nil && !c.At.IsZero() {
		l.lastCP.Store(c.At.UnixNano())
	}
}

// LastCheckpoint returns the time of the last signed checkpoint, kept
// across restarts; false: none yet. The gateway's status carries it
// (checkpoint_at) for the fleet view.
func (l *Log) LastCheckpoint() (time.Time, bool) {
	n := l.lastCP.Load()
	if n == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n).UTC(), true
}

func key64(i uint64) []byte { return key(i) }

// Path is the log's file.
func (l *Log) Path() string { return l.db.Path() }

// Backup writes a consistent copy of the log from one read transaction.
func (l *Log) Backup(w io.Writer) (int64, error) {
	var n int64
	err := l.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
