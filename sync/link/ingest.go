package link

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/persist"
	"github.com/cargogate/cargogate/internal/tstime"
	"github.com/cargogate/cargogate/sync/envelope"
)

// item is one received message on its way through the order pipeline.
type item struct {
	msg  mqtt.Message
	done chan struct{}
	size int64 // payload bytes, held against ingestBudget until acked

	typ       string
	orders    []customs.Order
	requestID string
	head      uint64
	upTo      uint64
	at        time.Time
	ackIDs    []string // events_ack: the event ids central holds
	reject    string   // reason label when rejected
	rejectErr error
	// bad are the orders of the message that cannot be applied, drops the
	// fields set aside in orders applied (amendment 2).
	bad   []badOrder
	drops []orderDrops
}

type badOrder struct {
	seq   uint64 // 0: unknown
	err   error
	order string // its JSON, cut
}

type orderDrops struct {
	seq     uint64
	dropped []customs.Dropped
}

// ingest is the link's order pipeline part: it verifies messages on every
// core, then commits them in arrival order in batches, acking each message
// only after its batch is durable. It holds the handoff it reads from and
// the link's verify and commit (which own the shared state), nothing more.
type ingest struct {
	in            <-chan mqtt.Message
	verify        func(*item)
	commit        func([]*item) error
	maxBatch      int
	maxBatchBytes int64
	log           *slog.Logger
	time          tstime.Clock
	// client is the order connection, dropped and connected again after a
	// failed commit so the broker redelivers; nil without a broker
	// (Ingest, feed.go). offline marks the link offline when it is dropped.
	client  mqtt.Client
	offline func()
}

// newIngest makes the ingest part over the link, on l.client (nil: none).
func (l *Link) newIngest() *ingest {
	return &ingest{in: l.in, verify: l.verify, commit: l.commit,
		maxBatch: l.opts.MaxBatch, maxBatchBytes: l.opts.MaxBatchBytes, log: l.log, time: l.time,
		client: l.client, offline: func() { l.setOnline(false) }}
}

// Run runs the pipeline until ctx ends.
func (g *ingest) Run(ctx context.Context) error {
	work := make(chan *item, 4096)
	ordered := make(chan *item, 8192)
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				g.verify(it)
				close(it.done)
				// A yield point between messages: a goroutine waiting for
				// a P (the station's, back from a serial read or the
				// journal's fsync) gets one within a verification (~50
				// µs), not at the next preemption (10 ms), while the
				// verifiers still keep every core busy.
				runtime.Gosched()
			}
		}()
	}
	defer wg.Wait()
	defer close(work)
	// Payload bytes taken in and not yet acked are bounded, so a queue of
	// large messages (1,000 orders ≈ 200 KB each, a broker window of
	// 20,000) waits in the broker, not in the heap; paho's router then
	// blocks on l.in (handoffDepth), which is the backpressure.
	var held atomic.Int64
	freed := make(chan struct{}, 1)
	release := func(n int64) {
		held.Add(-n)
		select {
		case freed <- struct{}{}:
		default:
		}
	}
	batchDone := make(chan error, 1)
	go func() { batchDone <- g.batcher(ctx, ordered, release) }()
	for {
		for held.Load() >= ingestBudget {
			select {
			case <-ctx.Done():
			case <-freed:
				continue
			}
			break
		}
		select {
		case <-ctx.Done():
			close(ordered)
			<-batchDone
			return nil
		case m := <-g.in:
			it := &item{msg: m, done: make(chan struct{}), size: int64(len(m.Payload()))}
			held.Add(it.size)
			work <- it
			ordered <- it
		}
	}
}

// ingestBudget bounds the payload bytes between the handoff and the ack
// (their decoded orders take about as much again). 4 MiB holds 20
// messages of 1,000 orders (five commits of the default MaxBatchBytes) or
// 7,000 messages of one order, so commits still fill up to their bound;
// at 8 MiB payloads and decoded orders were a third of the heap's peak
// while catching up (a heap profile of cargobench's target 2).
const ingestBudget = 4 << 20

func (l *Link) reject(it *item, reason string, err error) {
	it.reject, it.rejectErr = reason, err
}

// verify checks one message (§2) and decodes it. It never touches state.
func (l *Link) verify(it *item) {
	payload, kid, err := l.keyring().Open(it.msg.Payload())
	if err != nil {
		l.reject(it, envelope.Reason(err), err)
		return
	}
	_ = kid
	// One decode for the common case: every document type's fields at
	// once, without reflection for documents as central writes them
	// (customs.ReadDoc), by json.Unmarshal otherwise. Where that fails,
	// the documents are read one field set at a time as before, so the
	// outcome (and the rejection reason) is the same.
	var doc customs.AnyDoc
	decoded := customs.ReadDoc(payload, &doc) || json.Unmarshal(payload, &doc) == nil
	probe := customs.Probe{Type: doc.Type, Site: doc.Site}
	if !decoded {
		if probe, err = customs.ReadProbe(payload); err != nil {
			l.reject(it, "malformed", err)
			return
		}
	}
	if probe.Site != l.opts.Site {
		l.reject(it, "wrong_site", fmt.Errorf("site %q is not %q", probe.Site, l.opts.Site))
		return
	}
	rt := l.routes()
	topic := it.msg.Topic()
	var allowed string
	known := true
	switch topic {
	case rt.orders, rt.lookupReply:
		allowed = customs.TypeOrders
	case rt.head:
		allowed = customs.TypeHead
	case rt.eventsAck:
		allowed = customs.TypeEventsAck
	default:
		known = false
	}
	switch {
	case topic == rt.replay:
		known = probe.Type == customs.TypeOrders || probe.Type == customs.TypeReplayDone
	case known && probe.Type != allowed:
		known = false
	}
	if !known {
		l.reject(it, "wrong_type", fmt.Errorf("type %q not meant for topic %s", probe.Type, topic))
		return
	}
	it.typ = probe.Type
	switch probe.Type {
	case customs.TypeOrders:
		// Amendment 2: past the envelope, site, type, size and count,
		// each order stands on its own. A document whose orders all decode
		// typed is normalized order by order; one that does not (a field
		// of the wrong type somewhere) is read again order by order,
		// leniently, so the bad order alone is set aside.
		typed, requestID := doc.Orders, doc.RequestID
		var raws []json.RawMessage
		if !decoded {
			var rd struct {
				RequestID string            `json:"request_id"`
				Orders    []json.RawMessage `json:"orders"`
			}
			if err := json.Unmarshal(payload, &rd); err != nil {
				l.reject(it, "malformed", err)
				return
			}
			typed, raws, requestID = nil, rd.Orders, rd.RequestID
		}
		if n := len(typed) + len(raws); n > customs.MaxOrders {
			l.reject(it, "too_many_orders", fmt.Errorf("%d orders", n))
			return
		}
		it.requestID = requestID
		// The orders kept are written over the decoded ones in place: the
		// i-th kept is never after the i-th read. (A decode's slack, up
		// to a quarter of a large message, is not held until the commit.)
		if cap(typed) > len(typed)+len(typed)/8+1 {
			typed = slices.Clone(typed)
		}
		it.orders = typed[:0:len(typed)]
		if raws != nil {
			it.orders = make([]customs.Order, 0, len(raws))
		}
		// take keeps one order read; i is its index, for the audit's copy of
		// an order that cannot be applied.
		take := func(o customs.Order, drops []customs.Dropped, err error, i int) {
			if err != nil {
				var raw string
				if raws != nil {
					raw = string(raws[i])
				} else {
					b, _ := json.Marshal(&typed[i])
					raw = string(b)
				}
				it.bad = append(it.bad, badOrder{seq: o.Seq, err: err, order: cutString(raw, maxAuditOrder)})
				return
			}
			if len(drops) > 0 {
				it.drops = append(it.drops, orderDrops{seq: o.Seq, dropped: drops})
			}
			if o.IssuedAt.After(it.at) {
				it.at = o.IssuedAt
			}
			it.orders = append(it.orders, o)
		}
		for i := range typed {
			o := typed[i]
			drops, err := o.Normalize()
			take(o, drops, err, i)
		}
		for i, r := range raws {
			o, drops, err := customs.DecodeOrder(r)
			take(o, drops, err, i)
		}
	case customs.TypeHead:
		doc := customs.Head{Type: doc.Type, Site: doc.Site, Seq: doc.Seq, At: doc.At}
		if !decoded {
			if err := json.Unmarshal(payload, &doc); err != nil {
				l.reject(it, "malformed", err)
				return
			}
		}
		it.head, it.at = doc.Seq, doc.At
	case customs.TypeReplayDone:
		doc := customs.ReplayDone{Type: doc.Type, Site: doc.Site, RequestID: doc.RequestID, UpTo: doc.UpTo}
		if !decoded {
			if err := json.Unmarshal(payload, &doc); err != nil {
				l.reject(it, "malformed", err)
				return
			}
		}
		it.requestID, it.upTo = doc.RequestID, doc.UpTo
	case customs.TypeEventsAck:
		var ack customs.EventsAck
		if err := json.Unmarshal(payload, &ack); err != nil {
			l.reject(it, "malformed", err)
			return
		}
		if ack.Gateway != l.opts.Gateway {
			l.reject(it, "wrong_gateway", fmt.Errorf("gateway %q is not %q", ack.Gateway, l.opts.Gateway))
			return
		}
		if len(ack.IDs) > customs.MaxEvents {
			l.reject(it, "too_many_ids", fmt.Errorf("%d ids, at most %d", len(ack.IDs), customs.MaxEvents))
			return
		}
		it.ackIDs = ack.IDs
	}
}

// routes are the topics verify tells apart, made once.
type routes struct{ orders, lookupReply, head, eventsAck, replay string }

func (l *Link) routes() *routes {
	l.routesOnce.Do(func() {
		l.rt = routes{orders: customs.OrdersTopic(l.opts.Site), lookupReply: l.topic(customs.LeafLookupReply),
			head: customs.HeadTopic(l.opts.Site), eventsAck: l.topic(customs.LeafEventsAck), replay: l.topic(customs.LeafReplay)}
	})
	return &l.rt
}

// batcher commits verified messages in arrival order.
func (g *ingest) batcher(ctx context.Context, ordered <-chan *item, release func(n int64)) error {
	var batch []*item
	var carry *item
	for {
		it, ok := carry, carry != nil
		if carry == nil {
			it, ok = <-ordered
		}
		if !ok {
			return nil
		}
		batch = append(batch[:0], it)
		<-it.done
		n, est := len(it.orders), it.writeEstimate()
		// The next message is taken only if the commit stays within both
		// bounds; one that would pass a bound starts the next commit.
		var next *item
	greedy:
		for n < g.maxBatch {
			select {
			case it, ok := <-ordered:
				if !ok {
					break greedy
				}
				<-it.done
				if g.maxBatchBytes > 0 && est+it.writeEstimate() > g.maxBatchBytes {
					next = it
					break greedy
				}
				batch = append(batch, it)
				n += len(it.orders)
				est += it.writeEstimate()
			default:
				break greedy
			}
		}
		carry = next
		err := g.commit(batch)
		var size int64
		for _, it := range batch {
			size += it.size
		}
		release(size)
		if err != nil {
			// Not acked: the broker keeps the messages and redelivers them
			// on the next connection. Drop the connection so it does.
			g.log.Error("commit failed; orders not acknowledged, reconnecting", "err", err)
			if g.client == nil { // Ingest without a broker (feed.go)
				continue
			}
			g.client.Disconnect(0)
			g.offline()
			if !tstime.After(g.time, time.Second, ctx.Done()) {
				return nil
			}
			g.client.Connect()
		}
	}
}

// DefaultMaxBatchBytes is Options.MaxBatchBytes's default.
const DefaultMaxBatchBytes = 16 << 20

// pageEstimate is what one order is counted to dirty in the store: a leaf
// page of the subject bucket of its own, the worst case (random ids).
const pageEstimate = 4096

// writeEstimate is what committing it is counted to write.
func (it *item) writeEstimate() int64 {
	return int64(len(it.orders))*pageEstimate + it.size
}

func (l *Link) commit(batch []*item) error {
	var b persist.Batch
	var newest time.Time
	n := 0
	for _, it := range batch {
		n += len(it.orders)
	}
	b.Orders = make([]customs.Order, 0, n)
	for _, it := range batch {
		l.C.Messages.Add(1)
		if it.reject != "" {
			continue
		}
		b.Orders = append(b.Orders, it.orders...)
		b.Head = max(b.Head, it.head)
		if it.at.After(newest) {
			newest = it.at
		}
	}
	if !newest.IsZero() && l.clock != nil && l.clock.Observe(newest) {
		b.Floor = l.clock.Floor()
	}
	if l.clock != nil {
		b.Wall = l.clock.Now()
	}
	res, err := l.store.Apply(b)
	if err != nil {
		return err
	}
	l.C.Commits.Add(1)
	l.C.Applied.Add(uint64(res.Applied))
	l.C.Duplicates.Add(uint64(res.Duplicates))
	l.C.Conflicts.Add(uint64(len(res.Conflicts)))
	for _, c := range res.Conflicts {
		l.log.Warn("order conflict: same seq, other content; kept the first", "seq", c.Seq, "kept", string(c.Kept), "ignored", string(c.Ignored))
		l.audit("order_conflict", map[string]any{"seq": c.Seq, "kept": json.RawMessage(c.Kept), "ignored": json.RawMessage(c.Ignored)})
	}
	l.noteOrders(batch, b.Orders, res)
	if len(b.Orders) > 0 {
		// One record per commit: the seqs it held (their content is in the
		// store's seq log under the same seqs) and what became of them.
		l.audit("order_applied", map[string]any{"seqs": seqRanges(b.Orders), "applied": res.Applied,
			"duplicates": res.Duplicates, "conflicts": len(res.Conflicts), "applied_seq": res.Watermark})
	}
	for _, it := range batch {
		if it.reject != "" {
			l.C.Rejected.Add(1)
			l.mu.Lock()
			l.rejectedBy[it.reject]++
			l.lastReject = fmt.Sprintf("%s on %s: %v", it.reject, it.msg.Topic(), it.rejectErr)
			l.mu.Unlock()
			l.log.Warn("message rejected", "reason", it.reject, "topic", it.msg.Topic(), "err", it.rejectErr)
			sum := sha256.Sum256(it.msg.Payload())
			l.audit("order_rejected", map[string]any{"reason": it.reject, "topic": it.msg.Topic(),
				"error": fmt.Sprint(it.rejectErr), "bytes": len(it.msg.Payload()), "sha256": hex.EncodeToString(sum[:])})
		}
		it.msg.Ack()
	}
	l.watermark.Store(res.Watermark)
	l.head.Store(res.Head)
	l.maxSeq.Store(res.MaxSeq)
	for _, it := range batch {
		if it.reject == "" && it.typ == customs.TypeEventsAck {
			l.out.Acked(it.ackIDs)
			continue
		}
		if it.reject != "" || it.requestID == "" {
			continue
		}
		if it.typ == customs.TypeReplayDone {
			select {
			case l.doneReq <- replayDoneMsg{id: it.requestID, upTo: it.upTo}:
			default:
			}
			continue
		}
		l.mu.Lock()
		if ch, ok := l.lookups[it.requestID]; ok {
			close(ch)
			delete(l.lookups, it.requestID)
		}
		l.mu.Unlock()
	}
	select {
	case l.committed <- res:
	default:
	}
	l.kickStatus()
	return nil
}

// seqRanges compresses the seqs of a batch into sorted [first, last] runs.
func seqRanges(orders []customs.Order) [][2]uint64 {
	seqs := make([]uint64, 0, len(orders))
	for _, o := range orders {
		seqs = append(seqs, o.Seq)
	}
	slices.Sort(seqs)
	var out [][2]uint64
	for _, q := range seqs {
		if n := len(out); n > 0 && q <= out[n-1][1]+1 {
			out[n-1][1] = max(out[n-1][1], q)
			continue
		}
		out = append(out, [2]uint64{q, q})
	}
	return out
}
