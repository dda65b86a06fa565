package central

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cargogate/cargogate/gateway/customs"
)

// The ledger's buckets.
var (
	bucketMeta     = []byte("meta")      // "site" → site name
	bucketOrders   = []byte("orders")    // 8-byte big-endian seq → order JSON
	bucketEvents   = []byte("events")    // event id → storedEvent JSON
	bucketEventLog = []byte("event_log") // 8-byte receive counter → gateway "\x00" id
	bucketIssued   = []byte("issued")    // last seq of a commit → 8-byte Unix ns taken before it
	keySite        = []byte("site")
)

// ledger is central's durable store. Every commit is fsynced (bbolt's
// default). Writers are serialized by bbolt; the head and counters are cached.
type ledger struct {
	db      *bolt.DB
	headSeq atomic.Uint64
	nEvents atomic.Uint64

	// issued lists every commit's last seq with a time taken before the
	// commit began, ascending: no gateway can have held an order before its
	// time (see issuedBy).
	issuedMu sync.RWMutex
	issued   []issueMark
}

type issueMark struct {
	last uint64
	at   time.Time
}

// storedEvent is an event as central keeps it.
type storedEvent struct {
	Gateway    string        `json:"gateway"`
	ReceivedAt time.Time     `json:"received_at"`
	Event      customs.Event `json:"event"`
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

// openLedger opens the file, checks that it belongs to site, and feeds every
// order to idx in seq order.
func openLedger(path, site string, idx *index) (*ledger, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	l := &ledger{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketOrders, bucketEvents, bucketEventLog, bucketIssued} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch got := meta.Get(keySite); {
		case got == nil:
			if err := meta.Put(keySite, []byte(site)); err != nil {
				return err
			}
		case string(got) != site:
			return fmt.Errorf("belongs to site %q, not %q", got, site)
		}
		var want uint64 = 1
		err := tx.Bucket(bucketOrders).ForEach(func(k, v []byte) error {
			seq := binary.BigEndian.Uint64(k)
			if seq != want {
				return fmt.Errorf("seq %d follows %d: the ledger has a gap", seq, want-1)
			}
			want++
			var o customs.Order
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("order seq %d: %w", seq, err)
			}
			idx.add(o)
			return nil
		})
		if err != nil {
			return err
		}
		l.headSeq.Store(want - 1)
		l.nEvents.Store(uint64(tx.Bucket(bucketEvents).Stats().KeyN))
		ib := tx.Bucket(bucketIssued)
		if err := ib.ForEach(func(k, v []byte) error {
			l.issued = append(l.issued, issueMark{last: binary.BigEndian.Uint64(k), at: time.Unix(0, int64(binary.BigEndian.Uint64(v)))})
			return nil
		}); err != nil {
			return err
		}
		// A ledger written before commit times were kept: its orders
		// count as issued at the beginning of time.
		if head := want - 1; head > 0 && (len(l.issued) == 0 || l.issued[len(l.issued)-1].last < head) {
			m := issueMark{last: head, at: time.Unix(0, 0)}
			if err := ib.Put(seqKey(head), seqKey(uint64(m.at.UnixNano()))); err != nil {
				return err
			}
			l.issued = append(l.issued, m)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	return l, nil
}

func (l *ledger) close() error { return l.db.Close() }

func (l *ledger) head() uint64 { return l.headSeq.Load() }

func (l *ledger) eventCount() uint64 { return l.nEvents.Load() }

// append numbers orders from head+1 on, stores them and commits, noting
// the commit with at, a time taken before it began. It returns the JSON of
// each order as stored. The caller serializes appends.
func (l *ledger) append(orders []customs.Order, at time.Time) ([]json.RawMessage, error) {
	raws := make([]json.RawMessage, len(orders))
	var last uint64
	err := l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOrders)
		last = 0
		if k, _ := b.Cursor().Last(); k != nil {
			last = binary.BigEndian.Uint64(k)
		}
		for i := range orders {
			last++
			orders[i].Seq = last
			raw, err := json.Marshal(&orders[i])
			if err != nil {
				return fmt.Errorf("order %d: %w", i, err)
			}
			if err := b.Put(seqKey(last), raw); err != nil {
				return err
			}
			raws[i] = raw
		}
		return tx.Bucket(bucketIssued).Put(seqKey(last), seqKey(uint64(at.UnixNano())))
	})
	if err != nil {
		for i := range orders {
			orders[i].Seq = 0
		}
		return nil, fmt.Errorf("ledger: commit: %w", err)
	}
	l.issuedMu.Lock()
	l.issued = append(l.issued, issueMark{last: last, at: at})
	l.issuedMu.Unlock()
	l.headSeq.Store(last)
	return raws, nil
}

// issuedBy returns the highest seq committed by a commit that began at or
// before t: an upper bound of what anyone could have had from central at
// t. It assumes central's clock does not step back between commits.
func (l *ledger) issuedBy(t time.Time) uint64 {
	l.issuedMu.RLock()
	defer l.issuedMu.RUnlock()
	i := sort.Search(len(l.issued), func(i int) bool { return l.issued[i].at.After(t) })
	if i == 0 {
		return 0
	}
	return l.issued[i-1].last
}

// orderRange returns the stored JSON of the orders from..to (inclusive), at
// most max of them, in ascending seq. Each call is one short read
// transaction, so a long replay does not hold the file's mmap.
func (l *ledger) orderRange(from, to uint64, max int) ([]json.RawMessage, error) {
	var raws []json.RawMessage
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOrders).Cursor()
		for k, v := c.Seek(seqKey(from)); k != nil && len(raws) < max; k, v = c.Next() {
			if binary.BigEndian.Uint64(k) > to {
				break
			}
			raws = append(raws, slices.Clone(v))
		}
		return nil
	})
	return raws, err
}

// ordersBySeq returns the stored JSON of the given seqs, in the given order.
func (l *ledger) ordersBySeq(seqs []uint64) ([]json.RawMessage, error) {
	raws := make([]json.RawMessage, 0, len(seqs))
	err := l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOrders)
		for _, s := range seqs {
			v := b.Get(seqKey(s))
			if v == nil {
				return fmt.Errorf("order seq %d: not in the ledger", s)
			}
			raws = append(raws, slices.Clone(v))
		}
		return nil
	})
	return raws, err
}

// addEvents stores the events not stored yet, in one committed transaction,
// and returns how many were new and how many were duplicates.
func (l *ledger) addEvents(gateway string, evs []customs.Event, now time.Time) (added, dups int, err error) {
	err = l.db.Update(func(tx *bolt.Tx) error {
		added, dups = 0, 0
		eb, lb := tx.Bucket(bucketEvents), tx.Bucket(bucketEventLog)
		for _, ev := range evs {
			id := []byte(ev.ID)
			if eb.Get(id) != nil {
				dups++
				continue
			}
			v, err := json.Marshal(storedEvent{Gateway: gateway, ReceivedAt: now.UTC(), Event: ev})
			if err != nil {
				return err
			}
			if err := eb.Put(id, v); err != nil {
				return err
			}
			n, err := lb.NextSequence()
			if err != nil {
				return err
			}
			if err := lb.Put(seqKey(n), append([]byte(gateway+"\x00"), id...)); err != nil {
				return err
			}
			added++
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("ledger: events: %w", err)
	}
	l.nEvents.Add(uint64(added))
	return added, dups, nil
}

// events returns the events of gateway ("" for all) in the order received.
func (l *ledger) events(gateway string) ([]customs.Event, error) {
	evs := []customs.Event{}
	err := l.db.View(func(tx *bolt.Tx) error {
		eb := tx.Bucket(bucketEvents)
		return tx.Bucket(bucketEventLog).ForEach(func(_, v []byte) error {
			gw, id, ok := cutByte(v, 0)
			if !ok || (gateway != "" && string(gw) != gateway) {
				return nil
			}
			var se storedEvent
			if err := json.Unmarshal(eb.Get(id), &se); err != nil {
				return fmt.Errorf("event %q: %w", id, err)
			}
			evs = append(evs, se.Event)
			return nil
		})
	})
	return evs, err
}

func cutByte(b []byte, sep byte) (before, after []byte, ok bool) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

// maxDepth is how far links are followed (§4).
const maxDepth = 4

// index maps subjects to the seqs of their orders and keeps every link ever
// made, both ways. It is rebuilt from the ledger at start. Links are never
// removed: a lookup answers with every order on every container a subject was
// ever in, and the gateway combines link/unlink by seq itself.
type index struct {
	mu        sync.RWMutex
	bySubject map[customs.Subject][]uint64
	parents   map[customs.Subject]map[customs.Subject]struct{}
	children  map[customs.Subject]map[customs.Subject]struct{}
}

func newIndex() *index {
	return &index{
		bySubject: map[customs.Subject][]uint64{},
		parents:   map[customs.Subject]map[customs.Subject]struct{}{},
		children:  map[customs.Subject]map[customs.Subject]struct{}{},
	}
}

// add indexes one order; orders arrive in ascending seq.
func (x *index) add(o customs.Order) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.bySubject[o.Subject] = append(x.bySubject[o.Subject], o.Seq)
	if o.Action != customs.Link {
		return
	}
	for _, ch := range o.Children {
		addEdge(x.children, o.Subject, ch)
		addEdge(x.parents, ch, o.Subject)
	}
}

func addEdge(m map[customs.Subject]map[customs.Subject]struct{}, from, to customs.Subject) {
	set := m[from]
	if set == nil {
		set = map[customs.Subject]struct{}{}
		m[from] = set
	}
	set[to] = struct{}{}
}

// related returns the seqs, ascending, of every order on s, on the
// containers s was ever linked into (transitively, maxDepth levels) and on
// what was ever linked into s (maxDepth levels). The contents are included
// because a container's decision depends on its children's holds (§4 rule
// 2): a gateway that learned only the container's orders could pass a bag
// holding a held parcel.
func (x *index) related(s customs.Subject) []uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	seen := map[customs.Subject]bool{s: true}
	for _, edges := range []map[customs.Subject]map[customs.Subject]struct{}{x.parents, x.children} {
		level := []customs.Subject{s}
		for depth := 0; depth < maxDepth && len(level) > 0; depth++ {
			var next []customs.Subject
			for _, n := range level {
				for m := range edges[n] {
					if !seen[m] {
						seen[m] = true
						next = append(next, m)
					}
				}
			}
			level = next
		}
	}
	return x.seqsOf(seen)
}

func (x *index) seqsOf(subjects map[customs.Subject]bool) []uint64 {
	var seqs []uint64
	for subj := range subjects {
		seqs = append(seqs, x.bySubject[subj]...)
	}
	slices.Sort(seqs)
	return slices.Compact(seqs)
}

// family is related(s) and, for every subject ever linked into s
// (maxDepth levels), the containers it was ever linked into: what the
// audit's strict reading looks at (an item with more than one container is
// decided with its full ancestry).
func (x *index) family(s customs.Subject) []uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	walk := func(from []customs.Subject, edges map[customs.Subject]map[customs.Subject]struct{}, seen map[customs.Subject]bool) {
		level := from
		for depth := 0; depth < maxDepth && len(level) > 0; depth++ {
			var next []customs.Subject
			for _, n := range level {
				for m := range edges[n] {
					if !seen[m] {
						seen[m] = true
						next = append(next, m)
					}
				}
			}
			level = next
		}
	}
	down := map[customs.Subject]bool{s: true}
	walk([]customs.Subject{s}, x.children, down)
	seen := map[customs.Subject]bool{}
	for n := range down {
		seen[n] = true
	}
	for n := range down {
		up := map[customs.Subject]bool{n: true}
		walk([]customs.Subject{n}, x.parents, up)
		for m := range up {
			seen[m] = true
		}
	}
	return x.seqsOf(seen)
}
