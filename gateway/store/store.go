// Package store keeps the orders a gateway has applied, combined per subject
// (PROTOCOL §4), in bbolt: the subject states, the links both ways, the seq
// log and the applied watermark, all written in one transaction per batch.
//
// Layout, chosen for ingest at scale: the hot bucket "subj" holds one small
// binary state per subject (§4 needs nothing else to decide), full orders go
// to the append-ordered "seqs" log, and a batch writes its keys in sorted
// order, each touched subject once.
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

var (
	bMeta = []byte("meta")
	bSeqs = []byte("seqs")
	bSubj = []byte("subj")
	bUp   = []byte("up")
	bDown = []byte("down")

	kWatermark = []byte("watermark")
	kHead      = []byte("head")
	kFloor     = []byte("time_floor")
	kWall      = []byte("wall_seen") // the latest wall clock reading persisted
	kSchema    = []byte("schema")
	kPrunedSeq = []byte("pruned_seq") // the highest seq pruned from the seq log
	kPrunePos  = []byte("prune_pos")  // where the subject sweep goes on
	kSweepFrom = []byte("sweep_from") // kPrunedSeq when the current sweep began
)

// SchemaVersion is the layout this binary writes. A store written by a
// newer binary is refused; an older one is migrated once, each step in
// one transaction, so a crash during migration leaves the old version.
const SchemaVersion = 1

// ErrNewerSchema is returned by Open for a store written by a newer
// cargogate.
var ErrNewerSchema = errors.New("store written by a newer cargogate")

// ErrLocked is returned by Open when another process holds the store.
var ErrLocked = errors.New("store is in use by another process")

// Store is the order store. Its methods are safe for concurrent use: bbolt
// has one writer at a time and readers that never wait for it.
type Store struct {
	db *bolt.DB
}

// Options tune Open. The zero value is the production default.
type Options struct {
	// LockTimeout is how long Open waits for the file lock. Default 1s.
	LockTimeout time.Duration
	// InitialMmapSize avoids remaps, which block readers. Default 1 GiB.
	InitialMmapSize int
	// NoSync skips fsync: benchmarks of the B-tree only, never production.
	NoSync bool
	// ReadOnly opens an existing store for reading (operator commands on a
	// stopped gateway). A running gateway holds the lock, so this fails
	// with ErrLocked then.
	ReadOnly bool
}

// Open opens or creates the store at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = time.Second
	}
	if opts.InitialMmapSize == 0 {
		opts.InitialMmapSize = 1 << 30
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         opts.LockTimeout,
		InitialMmapSize: opts.InitialMmapSize,
		FreelistType:    bolt.FreelistMapType,
		NoSync:          opts.NoSync,
		ReadOnly:        opts.ReadOnly,
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w (is another cargogate running with this data_dir?)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := checkSchema(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if opts.ReadOnly {
		return &Store{db: db}, nil
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bMeta, bSeqs, bSubj, bUp, bDown} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: init: %w", path, err)
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// schemaOf reads a store's schema version: 0 for a store from before
// versioning (or an empty one).
func schemaOf(tx *bolt.Tx) uint64 {
	if m := tx.Bucket(bMeta); m != nil {
		return getU64(m, kSchema)
	}
	return 0
}

func checkSchema(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		if v := schemaOf(tx); v > SchemaVersion {
			return fmt.Errorf("%w: schema version %d, this cargogate reads up to %d; run the newer cargogate or restore a backup made by this version",
				ErrNewerSchema, v, SchemaVersion)
		}
		return nil
	})
}

// migrations[v] takes a store from schema v to v+1 inside one write
// transaction.
var migrations = map[uint64]func(tx *bolt.Tx) error{
	// 0 → 1: stores from before versioning have the same layout; the
	// version is only recorded.
	0: func(tx *bolt.Tx) error { return nil },
}

func migrate(db *bolt.DB) error {
	for {
		var done bool
		err := db.Update(func(tx *bolt.Tx) error {
			v := schemaOf(tx)
			if v >= SchemaVersion {
				done = true
				return nil
			}
			step, ok := migrations[v]
			if !ok {
				return fmt.Errorf("no migration from schema version %d", v)
			}
			if err := step(tx); err != nil {
				return fmt.Errorf("migrate schema %d → %d: %w", v, v+1, err)
			}
			return tx.Bucket(bMeta).Put(kSchema, u64(v+1))
		})
		if err != nil || done {
			return err
		}
	}
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Path is the store's file.
func (s *Store) Path() string { return s.db.Path() }

// Batch is what one commit applies.
type Batch struct {
	Orders []customs.Order
	// Raw, when not nil, holds each order's JSON as received, index for
	// index with Orders; the seq log stores it as it is instead of
	// marshalling the order again. Raw[i] must decode to Orders[i].
	Raw [][]byte
	// Head, if above the stored head, is stored with the batch.
	Head uint64
	// Floor, if after the stored time floor, is stored with the batch.
	Floor time.Time
	// Wall, the latest wall clock reading (clock.Now), if after the stored
	// one, is stored with the batch.
	Wall time.Time
}

// Conflict is an order whose seq was applied before with other content.
type Conflict struct {
	Seq uint64
	// Kept and Ignored are the two orders' JSON.
	Kept, Ignored []byte
}

// Result tells what a commit did.
type Result struct {
	Applied    int // orders new to the store
	Duplicates int // orders already applied with the same content
	Conflicts  []Conflict
	Watermark  uint64 // after the commit
	MaxSeq     uint64 // highest seq in the store after the commit
	Head       uint64
}

// fingerprint covers the fields whose difference makes a conflict (§3).
// The bytes hashed are fixed: fingerprints are stored in the seq log and
// compared across versions (fingerprintRef in the tests is the reference).
// It is built with appends, not fmt, because Apply calls it for every order.
func fingerprint(o *customs.Order) [16]byte {
	var stack [256]byte
	b := stack[:0]
	b = append(b, o.Action...)
	b = append(b, 0)
	b = append(b, o.Subject.Kind...)
	b = append(b, 0)
	b = append(b, o.Subject.ID...)
	b = append(b, 0)
	b = append(b, o.HoldID...)
	b = append(b, 0)
	if !o.ExpiresAt.IsZero() {
		b = strconv.AppendInt(b, o.ExpiresAt.Unix(), 10)
		b = append(b, '.')
		ns := o.ExpiresAt.Nanosecond()
		var d [9]byte
		for i := 8; i >= 0; i-- {
			d[i] = byte('0' + ns%10)
			ns /= 10
		}
		b = append(b, d[:]...)
	}
	b = append(b, 0)
	// Children and seals are sets: the same ones in another order are the
	// same order.
	if len(o.Children) > 0 {
		kids := make([]string, 0, len(o.Children))
		for _, c := range o.Children {
			kids = append(kids, string(c.Kind)+":"+c.ID)
		}
		slices.Sort(kids)
		for _, k := range kids {
			b = append(b, k...)
			b = append(b, ',')
		}
	}
	b = append(b, 0)
	if len(o.Seals) > 0 {
		seals := slices.Clone(o.Seals)
		slices.Sort(seals)
		for _, s := range seals {
			b = append(b, s...)
			b = append(b, ',')
		}
	}
	sum := sha256.Sum256(b)
	var fp [16]byte
	copy(fp[:], sum[:16])
	return fp
}

// Apply commits a batch of validated orders in one write transaction with
// fsync, advancing the watermark in the same transaction (§5.2). Applying
// an order again is a no-op; a different order under a seq already applied
// is kept out and reported as a conflict.
func (s *Store) Apply(b Batch) (Result, error) {
	var res Result
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		res, err = apply(tx, b)
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("apply %d orders: %w", len(b.Orders), err)
	}
	return res, nil
}

type pendingLink struct {
	up, down []byte // keys
	val      rules.LinkState
}

func apply(tx *bolt.Tx, b Batch) (Result, error) {
	var res Result
	meta, seqs, subj := tx.Bucket(bMeta), tx.Bucket(bSeqs), tx.Bucket(bSubj)
	up, down := tx.Bucket(bUp), tx.Bucket(bDown)

	// Orders in seq order, so each seq's first occurrence in the batch wins
	// in the same way as across batches.
	if b.Raw != nil && len(b.Raw) != len(b.Orders) {
		return res, fmt.Errorf("batch: %d raw orders for %d orders", len(b.Raw), len(b.Orders))
	}
	type ref struct {
		o   *customs.Order
		raw []byte
	}
	orders := make([]ref, 0, len(b.Orders))
	for i := range b.Orders {
		r := ref{o: &b.Orders[i]}
		if b.Raw != nil {
			r.raw = b.Raw[i]
		}
		orders = append(orders, r)
	}
	slices.SortStableFunc(orders, func(x, y ref) int {
		switch {
		case x.o.Seq < y.o.Seq:
			return -1
		case x.o.Seq > y.o.Seq:
			return 1
		}
		return 0
	})
	// The seq log only ever grows at its end: full pages halve its size
	// and the pages a commit writes.
	seqs.FillPercent = 1.0
	w0 := getU64(meta, kWatermark)

	states := map[string]*rules.State{}
	getState := func(sub customs.Subject) (*rules.State, error) {
		k := string(subjectKey(sub))
		if st, ok := states[k]; ok {
			return st, nil
		}
		st := &rules.State{}
		if v := subj.Get([]byte(k)); v != nil {
			var err error
			if st, err = decodeState(v); err != nil {
				return nil, fmt.Errorf("subject %s: %w", sub, err)
			}
		}
		states[k] = st
		return st, nil
	}
	links := map[string]*pendingLink{}
	type seqPut struct {
		key, val []byte
	}
	var seqPuts []seqPut
	type seen struct {
		fp  [16]byte
		raw []byte
	}
	inBatch := map[uint64]seen{}

	for _, r := range orders {
		o, raw := r.o, r.raw
		fp := fingerprint(o)
		if raw == nil {
			var err error
			if raw, err = json.Marshal(o); err != nil {
				return res, err
			}
		}
		prev, dup := inBatch[o.Seq]
		prevFP, prevRaw := prev.fp, prev.raw
		if !dup && o.Seq <= w0 && seqs.Get(u64(o.Seq)) == nil {
			// Below the watermark every seq was applied: one missing from
			// the seq log was pruned by retention. A replay of it must not
			// bring back a subject that left.
			res.Duplicates++
			continue
		}
		if !dup {
			if v := seqs.Get(u64(o.Seq)); v != nil && len(v) >= 16 {
				dup = true
				copy(prevFP[:], v[:16])
				prevRaw = v[16:]
			}
		}
		if dup {
			if prevFP == fp {
				res.Duplicates++
			} else {
				res.Conflicts = append(res.Conflicts, Conflict{Seq: o.Seq, Kept: slices.Clone(prevRaw), Ignored: raw})
			}
			continue
		}
		inBatch[o.Seq] = seen{fp, raw}
		seqPuts = append(seqPuts, seqPut{u64(o.Seq), append(fp[:], raw...)})
		res.Applied++

		st, err := getState(o.Subject)
		if err != nil {
			return res, err
		}
		st.Apply(o)
		if o.Action != customs.Link && o.Action != customs.Unlink {
			continue
		}
		for _, c := range o.Children {
			dk := pairKey(o.Subject, c)
			pl, ok := links[string(dk)]
			if !ok {
				pl = &pendingLink{down: dk, up: pairKey(c, o.Subject)}
				if v := down.Get(dk); v != nil {
					if pl.val, err = decodeLink(v); err != nil {
						return res, fmt.Errorf("link %s/%s: %w", o.Subject, c, err)
					}
				}
				links[string(dk)] = pl
			}
			was := pl.val.Linked
			if pl.val.ApplyLink(o.Seq, o.Action == customs.Link) {
				if was {
					st.Children--
				} else {
					st.Children++
				}
			}
			// The child is touched too: its LastSeq records the link, and
			// its parent count lets a decision skip the look upwards for
			// the common child of one container.
			cst, err := getState(c)
			if err != nil {
				return res, err
			}
			if o.Seq > cst.LastSeq {
				cst.LastSeq = o.Seq
			}
			if pl.val.Linked != was {
				if was {
					cst.Parents--
				} else {
					cst.Parents++
				}
			}
		}
	}

	// Writes in key order: bbolt dirties fewer pages that way.
	for _, p := range seqPuts {
		if err := seqs.Put(p.key, p.val); err != nil {
			return res, err
		}
	}
	keys := make([]string, 0, len(states))
	for k := range states {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := subj.Put([]byte(k), encodeState(states[k])); err != nil {
			return res, err
		}
	}
	lkeys := make([]string, 0, len(links))
	for k := range links {
		lkeys = append(lkeys, k)
	}
	slices.Sort(lkeys)
	for _, k := range lkeys {
		if err := down.Put(links[k].down, encodeLink(links[k].val)); err != nil {
			return res, err
		}
	}
	slices.SortFunc(lkeys, func(x, y string) int { return bytes.Compare(links[x].up, links[y].up) })
	for _, k := range lkeys {
		if err := up.Put(links[k].up, encodeLink(links[k].val)); err != nil {
			return res, err
		}
	}

	// Watermark: the highest W with every seq ≤ W applied.
	w := getU64(meta, kWatermark)
	c := seqs.Cursor()
	for k, _ := c.Seek(u64(w + 1)); k != nil && binary.BigEndian.Uint64(k) == w+1; k, _ = c.Next() {
		w++
	}
	if err := meta.Put(kWatermark, u64(w)); err != nil {
		return res, err
	}
	res.Watermark = w
	if k, _ := c.Last(); k != nil {
		res.MaxSeq = binary.BigEndian.Uint64(k)
	}
	head := getU64(meta, kHead)
	if b.Head > head {
		head = b.Head
		if err := meta.Put(kHead, u64(head)); err != nil {
			return res, err
		}
	}
	res.Head = head
	if !b.Floor.IsZero() {
		if f := getTime(meta, kFloor); b.Floor.After(f) {
			if err := meta.Put(kFloor, u64(uint64(b.Floor.UnixNano()))); err != nil {
				return res, err
			}
		}
	}
	if err := raiseTime(meta, kWall, b.Wall); err != nil {
		return res, err
	}
	return res, nil
}

// maxStoredTime bounds the times raiseTime stores: Unix nanoseconds in a
// u64 hold up to 2262, and a clock reading past 2200 is no real time.
var maxStoredTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// raiseTime stores t under k if it is after the time stored there.
func raiseTime(meta *bolt.Bucket, k []byte, t time.Time) error {
	if t.Unix() <= 0 || !t.Before(maxStoredTime) || !t.After(getTime(meta, k)) {
		return nil
	}
	return meta.Put(k, u64(uint64(t.UnixNano())))
}

// SaveWall persists t, the latest wall clock reading (clock.Now), if it is
// after the one stored: a restart then starts the clock no earlier, so a
// wall clock set back while the gateway was down revives nothing. The
// gateway calls it every minute and at shutdown; each batch stores it too
// (Batch.Wall).
func (s *Store) SaveWall(t time.Time) error {
	var later bool
	s.db.View(func(tx *bolt.Tx) error {
		later = t.After(getTime(tx.Bucket(bMeta), kWall))
		return nil
	})
	if !later {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error { return raiseTime(tx.Bucket(bMeta), kWall, t) })
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func getTime(b *bolt.Bucket, k []byte) time.Time {
	n := getU64(b, k)
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n)).UTC()
}

// Progress is the store's view of where it stands against central.
type Progress struct {
	Watermark uint64    // every seq ≤ Watermark is applied
	MaxSeq    uint64    // the highest seq applied
	Head      uint64    // the highest head stored
	Floor     time.Time // the newest central time stored
	Wall      time.Time // the latest wall clock reading stored
}

// Progress reads the watermark, highest seq, head and time floor.
func (s *Store) Progress() (Progress, error) {
	var p Progress
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		p.Watermark = getU64(meta, kWatermark)
		p.Head = getU64(meta, kHead)
		p.Floor = getTime(meta, kFloor)
		p.Wall = getTime(meta, kWall)
		if k, _ := tx.Bucket(bSeqs).Cursor().Last(); k != nil {
			p.MaxSeq = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return p, err
}

// Missing lists up to limit seqs in (from, to] not yet applied, as ranges.
func (s *Store) Missing(from, to uint64, limit int) ([][2]uint64, error) {
	var out [][2]uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bSeqs).Cursor()
		next := from + 1
		for k, _ := c.Seek(u64(next)); next <= to && len(out) < limit; k, _ = c.Next() {
			have := to + 1
			if k != nil {
				have = binary.BigEndian.Uint64(k)
			}
			if have > next {
				out = append(out, [2]uint64{next, min(have-1, to)})
			}
			next = have + 1
			if k == nil {
				break
			}
		}
		return nil
	})
	return out, err
}

// Order returns the order applied under seq.
func (s *Store) Order(seq uint64) (customs.Order, bool, error) {
	var o customs.Order
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bSeqs).Get(u64(seq))
		if len(v) < 16 {
			return nil
		}
		found = true
		return json.Unmarshal(v[16:], &o)
	})
	return o, found, err
}

// View runs fn with a read-only view of the store. Keep fn short: a long
// read transaction holds pages the writer cannot reuse.
func (s *Store) View(fn func(v rules.View) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(newTxView(tx)) })
}

// Decide decides a scan of subj at now from the store. Any error decides
// STOP (error).
func (s *Store) Decide(subj customs.Subject, now time.Time) rules.Decision {
	var d rules.Decision
	err := s.View(func(v rules.View) error {
		d = rules.Decide(v, subj, now)
		return nil
	})
	if err != nil {
		return rules.Decision{Reason: customs.ReasonError, Chain: []rules.Step{{Subject: subj, What: "error: " + err.Error()}}}
	}
	return d
}

// txView reads one transaction. Its buckets are looked up once: a ULD's
// decision reads thousands of states, and each tx.Bucket is a lookup of
// its own.
type txView struct{ subj, up, down *bolt.Bucket }

func newTxView(tx *bolt.Tx) txView {
	return txView{subj: tx.Bucket(bSubj), up: tx.Bucket(bUp), down: tx.Bucket(bDown)}
}

var _ rules.View = txView{}

func (v txView) State(sub customs.Subject) (*rules.State, error) {
	var kb [64]byte
	val := v.subj.Get(appendSubjectKey(kb[:0], sub))
	if val == nil {
		return nil, nil
	}
	st, err := decodeState(val)
	if err != nil {
		return nil, fmt.Errorf("subject %s: %w", sub, err)
	}
	return st, nil
}

func (v txView) related(b *bolt.Bucket, sub customs.Subject) ([]customs.Subject, error) {
	var kb [64]byte
	prefix := append(appendSubjectKey(kb[:0], sub), 0)
	c := b.Cursor()
	var out []customs.Subject
	for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
		l, err := decodeLink(val)
		if err != nil {
			return nil, fmt.Errorf("link of %s: %w", sub, err)
		}
		if !l.Linked {
			continue
		}
		o, err := keySubject(k[len(prefix):])
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func (v txView) Parents(sub customs.Subject) ([]customs.Subject, error) {
	return v.related(v.up, sub)
}

func (v txView) Children(sub customs.Subject) ([]customs.Subject, error) {
	return v.related(v.down, sub)
}

// Stats are the store's counts, for status and metrics.
type Stats struct {
	Subjects  int
	Orders    int
	Links     int
	SizeBytes int64
	// SubjectBytes is what the subject bucket's B-tree pages hold in use
	// (branch and leaf), headers included.
	SubjectBytes int64
}

// Stats counts the buckets' keys.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.db.View(func(tx *bolt.Tx) error {
		ss := tx.Bucket(bSubj).Stats()
		st.Subjects = ss.KeyN
		st.SubjectBytes = int64(ss.BranchInuse + ss.LeafInuse)
		st.Orders = tx.Bucket(bSeqs).Stats().KeyN
		st.Links = tx.Bucket(bDown).Stats().KeyN
		st.SizeBytes = tx.Size()
		return nil
	})
	return st, err
}

// Backup writes a consistent copy of the store from one read transaction,
// while the gateway runs.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
