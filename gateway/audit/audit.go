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
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	return c, nil
}

func key64(i uint64) []byte { return key(i) }

// Problem is the first inconsistency Verify found.
type Problem struct {
	Index  uint64 // the first bad record (or checkpoint size)
	Reason string
}

func (p *Problem) Error() string { return fmt.Sprintf("audit record %d: %s", p.Index, p.Reason) }

// Report is what Verify checked.
type Report struct {
	Records     uint64
	Checkpoints int
	Head        string
	// Lost is the number of records the gap records stand for; Gaps lists
	// the first MaxGapsListed of them.
	Lost     uint64     `json:",omitempty"`
	GapCount int        `json:",omitempty"`
	Gaps     []GapIndex `json:",omitempty"`
}

// GapIndex is a gap record found by Verify.
type GapIndex struct {
	Index uint64 // the gap record's index
	Gap
}

// testHookVerified, when set, runs once the chain is walked.
var testHookVerified func()

// MaxGapsListed bounds Report.Gaps (they are all counted).
const MaxGapsListed = 100

// Verify recomputes the chain from the first record, checks every stored
// chain hash, and checks every checkpoint's size, head and signature with
// pub. It returns a *Problem naming the first bad record. Its memory does
// not grow with the log: the chain and the checkpoints (kept by size) are
// walked side by side. It holds a read transaction for the whole walk: on
// a running gateway, verify a snapshot (VerifyFile) instead.
func (l *Log) Verify(pub ed25519.PublicKey) (Report, error) {
	return verify(l.db, pub)
}

// VerifyFile verifies a log file that no process holds open.
func VerifyFile(path string, pub ed25519.PublicKey) (Report, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return Report{}, lockedErr(fmt.Errorf("audit: open %s: %w", path, err))
	}
	defer db.Close()
	return verify(db, pub)
}

func verify(db *bolt.DB, pub ed25519.PublicKey) (Report, error) {
	var rep Report
	var bad *Problem
	err := db.View(func(tx *bolt.Tx) error {
		rb, cb, kb := tx.Bucket(bRecords), tx.Bucket(bChain), tx.Bucket(bCheckpoints)
		if rb == nil || cb == nil || kb == nil {
			return errors.New("not an audit log")
		}
		// Checkpoints are keyed by size (big-endian), so they come in the
		// order the chain reaches them.
		kc := kb.Cursor()
		kk, kv := kc.First()
		// checkHead checks the checkpoints of size n against the chain's
		// head h after n records.
		checkHead := func(n uint64, h [32]byte) bool {
			for kk != nil && binary.BigEndian.Uint64(kk) <= n {
				size := binary.BigEndian.Uint64(kk)
				rep.Checkpoints++
				var c Checkpoint
				if err := json.Unmarshal(kv, &c); err != nil {
					bad = &Problem{size, "checkpoint unreadable"}
					return false
				}
				sig, err := hex.DecodeString(c.Sig)
				if err != nil || pub == nil || !ed25519.Verify(pub, c.signedBytes(), sig) {
					bad = &Problem{size, "checkpoint signature does not verify"}
					return false
				}
				if c.Size != size || size != n {
					bad = &Problem{size, "checkpoint filed under another size"}
					return false
				}
				if hex.EncodeToString(h[:]) != c.Head {
					bad = &Problem{c.Size, "chain does not match the signed checkpoint (records before it were rewritten)"}
					return false
				}
				kk, kv = kc.Next()
			}
			return true
		}
		var h [32]byte
		if !checkHead(0, h) {
			return nil
		}
		rc, cc := rb.Cursor(), cb.Cursor()
		rk, rv := rc.First()
		ck, cv := cc.First()
		var i uint64
		for ; rk != nil || ck != nil; i++ {
			switch {
			case rk == nil || binary.BigEndian.Uint64(rk) != i:
				bad = &Problem{i, "deleted (its chain entry remains)"}
				if ck == nil || binary.BigEndian.Uint64(ck) != i {
					bad.Reason = "deleted"
				}
				return nil
			case ck == nil || binary.BigEndian.Uint64(ck) != i:
				bad = &Problem{i, "chain entry deleted"}
				return nil
			}
			var r Record
			if err := json.Unmarshal(rv, &r); err != nil || r.Index != i {
				bad = &Problem{i, "unreadable or renumbered"}
				return nil
			}
			h = chainNext(h, rv)
			if !bytes.Equal(h[:], cv) {
				bad = &Problem{i, "content changed (chain hash does not match)"}
				return nil
			}
			if r.Kind == KindGap {
				var g Gap
				json.Unmarshal(r.Data, &g)
				rep.Lost += g.Lost
				rep.GapCount++
				if len(rep.Gaps) < MaxGapsListed {
					rep.Gaps = append(rep.Gaps, GapIndex{Index: i, Gap: g})
				}
			}
			if !checkHead(i+1, h) {
				return nil
			}
			rk, rv = rc.Next()
			ck, cv = cc.Next()
		}
		rep.Records = i
		rep.Head = hex.EncodeToString(h[:])
		if testHookVerified != nil {
			testHookVerified()
		}
		if kk != nil {
			rep.Checkpoints++
			var c Checkpoint
			json.Unmarshal(kv, &c)
			bad = &Problem{rep.Records, fmt.Sprintf("log truncated: a checkpoint covers %d records, the log holds %d", binary.BigEndian.Uint64(kk), rep.Records)}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	if bad != nil {
		return rep, bad
	}
	return rep, nil
}

// ExportLine is one line of an export: a record exactly as it was
// chained, and the chain hash after it. Prev, on the first line only, is
// the chain hash before it, so that each line can be checked from the one
// before: chain = SHA-256(prev chain ‖ SHA-256(record bytes)). The chain
// hash of record Size-1 is the head of a checkpoint of that size.
type ExportLine struct {
	Prev   string          `json:"prev,omitempty"`
	Chain  string          `json:"chain"`
	Record json.RawMessage `json:"record"`
}

// Trailer is the last line of a complete export. An export without it was
// cut short.
type Trailer struct {
	Records uint64 `json:"records"`  // lines exported
	LogSize uint64 `json:"log_size"` // records in the log
	Head    string `json:"head"`     // chain hash after the log's last record
}

// Export writes the records at or after since as JSON lines (ExportLine),
// then a {"trailer": Trailer} line. It reads from one transaction, at the
// pace of w: on a running gateway, export to a file first.
func (l *Log) Export(w io.Writer, since time.Time) (int, error) { return export(l.db, w, since) }

// ExportFile exports from a log file that no process holds open.
func ExportFile(path string, w io.Writer, since time.Time) (int, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return 0, lockedErr(fmt.Errorf("audit: open %s: %w", path, err))
	}
	defer db.Close()
	return export(db, w, since)
}

func export(db *bolt.DB, w io.Writer, since time.Time) (int, error) {
	n := 0
	err := db.View(func(tx *bolt.Tx) error {
		rb, cb := tx.Bucket(bRecords), tx.Bucket(bChain)
		if rb == nil || cb == nil {
			return errors.New("not an audit log")
		}
		prev := make([]byte, 32)
		var size uint64
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false) // the record's bytes exactly as chained
		c := rb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			size = binary.BigEndian.Uint64(k) + 1
			chain := cb.Get(k)
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %d: %w", size-1, err)
			}
			if !r.At.Before(since) {
				line := ExportLine{Chain: hex.EncodeToString(chain), Record: v}
				if n == 0 {
					line.Prev = hex.EncodeToString(prev)
				}
				if err := enc.Encode(line); err != nil {
					return err
				}
				n++
			}
			prev = append(prev[:0], chain...)
		}
		return enc.Encode(map[string]Trailer{"trailer": {Records: uint64(n), LogSize: size, Head: hex.EncodeToString(prev)}})
	})
	if err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}

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
