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
	"sync"
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
)

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
	ran  bool   // Run was called
	shut bool   // Close was called
	lost uint64 // records dropped because the buffer was full
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
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	l := &Log{db: db, log: log, in: make(chan pending, 65536), quit: make(chan struct{})}
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
// ran) and closes the file.
func (l *Log) Close() error {
	err := errClosed
	l.once.Do(func() {
		l.mu.Lock()
		l.shut = true
		l.mu.Unlock()
		l.stopRun()
		l.wg.Wait()
		l.commitQueued()
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

// Add queues a record; it never blocks. If the queue is full the record is
// counted as lost and logged: the audit must not stop the gateway.
func (l *Log) Add(kind string, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		raw, _ = json.Marshal(map[string]string{"marshal_error": err.Error()})
	}
	select {
	case l.in <- pending{at: time.Now().UTC(), kind: kind, data: raw}:
	default:
		l.mu.Lock()
		l.lost++
		l.mu.Unlock()
		l.log.Error("audit queue full: record lost", "kind", kind)
	}
}

// AddSync appends a record and waits until it is committed (by Run, or by
// Close).
func (l *Log) AddSync(ctx context.Context, kind string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	p := pending{at: time.Now().UTC(), kind: kind, data: raw, done: make(chan error, 1)}
	select {
	case l.in <- p:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
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

// Lost is the number of records dropped because the queue was full.
func (l *Log) Lost() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

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
}

// Verify recomputes the chain from the first record, checks every stored
// chain hash, and checks every checkpoint's size, head and signature with
// pub. It returns a *Problem naming the first bad record.
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
		var h [32]byte
		heads := map[uint64][32]byte{0: h}
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
			heads[i+1] = h
			rk, rv = rc.Next()
			ck, cv = cc.Next()
		}
		rep.Records = i
		rep.Head = hex.EncodeToString(h[:])
		return kb.ForEach(func(k, v []byte) error {
			if bad != nil {
				return nil
			}
			rep.Checkpoints++
			var c Checkpoint
			if err := json.Unmarshal(v, &c); err != nil {
				bad = &Problem{binary.BigEndian.Uint64(k), "checkpoint unreadable"}
				return nil
			}
			sig, err := hex.DecodeString(c.Sig)
			if err != nil || pub == nil || !ed25519.Verify(pub, c.signedBytes(), sig) {
				bad = &Problem{binary.BigEndian.Uint64(k), "checkpoint signature does not verify"}
				return nil
			}
			want, ok := heads[c.Size]
			if !ok {
				bad = &Problem{rep.Records, fmt.Sprintf("log truncated: a checkpoint covers %d records, the log holds %d", c.Size, rep.Records)}
				return nil
			}
			if hex.EncodeToString(want[:]) != c.Head {
				bad = &Problem{c.Size, "chain does not match the signed checkpoint (records before it were rewritten)"}
			}
			return nil
		})
	})
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	if bad != nil {
		return rep, bad
	}
	return rep, nil
}

// Export writes the records at or after since as JSON lines.
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
		return tx.Bucket(bRecords).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if r.At.Before(since) {
				return nil
			}
			n++
			_, err := fmt.Fprintf(w, "%s\n", v)
			return err
		})
	})
	return n, err
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
