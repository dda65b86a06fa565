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
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/tstime"
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

// Store is the order store. Its methods are safe for concurrent use: bbolt
// has one writer at a time and readers that never wait for it.
type Store struct {
	db   *bolt.DB
	time tstime.Clock // KeepWall's ticker
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
	// Time is the clock KeepWall's interval runs on; nil: the real one.
	Time tstime.Clock
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
		return &Store{db: db, time: tstime.Or(opts.Time)}, nil
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
	return &Store{db: db, time: tstime.Or(opts.Time)}, nil
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
	if from >= to || limit <= 0 {
		return nil, nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bSeqs).Cursor()
		next := from + 1 // ≤ to, so no overflow
		for k, _ := c.Seek(u64(next)); len(out) < limit; k, _ = c.Next() {
			// Without computing to+1 or have+1 past 2^64−1: seqs are any
			// integer ≥ 1 (§3).
			if k == nil || binary.BigEndian.Uint64(k) > to {
				out = append(out, [2]uint64{next, to})
				return nil
			}
			have := binary.BigEndian.Uint64(k)
			if have > next {
				out = append(out, [2]uint64{next, have - 1})
			}
			if have >= to {
				return nil
			}
			next = max(next, have+1)
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
