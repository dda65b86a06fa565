package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

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

// yieldEvery is how many orders apply reads between yield points.
const yieldEvery = 64

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

	for i, r := range orders {
		if i%yieldEvery == yieldEvery-1 {
			// A yield point: a large batch is tens of ms of CPU, and a
			// goroutine waiting for a P (a scan) gets one here rather
			// than at the next preemption (10 ms).
			runtime.Gosched()
		}
		o, raw := r.o, r.raw
		fp := fingerprint(o)
		var val []byte // the seq log's value: fingerprint, then the order
		if raw == nil {
			var err error
			if val, err = orderJSON(fp[:], o); err != nil {
				return res, err
			}
			raw = val[len(fp):]
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
		if val == nil {
			val = append(fp[:], raw...)
		}
		seqPuts = append(seqPuts, seqPut{u64(o.Seq), val})
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
	for i, k := range keys {
		if i%(4*yieldEvery) == 4*yieldEvery-1 {
			runtime.Gosched()
		}
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
	// Both only rise, and only with times that nanoseconds since 1970 hold
	// (a time before 1678 would wrap and read back decades ahead).
	if err := raiseTime(meta, kFloor, b.Floor); err != nil {
		return res, err
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
