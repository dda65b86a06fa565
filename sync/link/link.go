// Package link is the gateway's link to central customs over MQTT
// (PROTOCOL §1–§5): it ingests signed orders and acks them only after they
// are committed with fsync, tracks head and the watermark, fills every gap by
// resync, answers lookups, publishes the retained status with an offline
// will, and delivers the event outbox on a second connection whose lost
// packets fail their tokens.
package link

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/oklog/ulid/v2"
	"golang.org/x/sync/errgroup"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/sync/envelope"
)

// Store is what the link needs of the order store.
type Store interface {
	Apply(b store.Batch) (store.Result, error)
	Progress() (store.Progress, error)
}

// Outbox is what the link needs of the event journal.
type Outbox interface {
	Pending(max, maxBytes int) ([]journal.Entry, error)
	Delivered(entries []journal.Entry) error
	Depth() (events int, bytes int64)
	Notify() <-chan struct{}
}

// Clock is the time floor: the link raises it with central's timestamps.
// Now, the latest wall reading, is stored with each batch so that it
// outlasts a restart.
type Clock interface {
	Observe(t time.Time) bool
	Floor() time.Time
	Now() time.Time
}

// Options configure a Link.
type Options struct {
	Site, Gateway string
	Broker        string // tcp://host:port or ssl://host:port
	Username      string
	Password      string
	TLS           *tls.Config
	Keys          envelope.Keyring // trusted central keys
	Signer        envelope.Signer  // the gateway's own key, kid {site}/{gateway}
	Version       string
	GapGrace      time.Duration // default 2s
	ResyncTimeout time.Duration // default 30s
	// MaxBatch is the most orders one commit takes. Default 20000.
	MaxBatch int
	// RedeliverWindow: after the events connection comes back, the events
	// delivered in this window before it was lost are sent again at once,
	// and those delivered in this window after it came back are sent again
	// when it has passed (see deliver). 0: 30s; negative: never.
	RedeliverWindow time.Duration
	Log             *slog.Logger // nil: discard
	// Audit, if set, records every commit of orders, every rejected
	// message and every conflict in the audit log. It must not block.
	Audit func(kind string, data any)
}

// Counters are the link's running counts.
type Counters struct {
	Messages   atomic.Uint64 // order-path messages received
	Applied    atomic.Uint64 // orders new to the store
	Duplicates atomic.Uint64
	Conflicts  atomic.Uint64
	Rejected   atomic.Uint64 // messages rejected (§2)
	Commits    atomic.Uint64
	Resyncs    atomic.Uint64
	EventsSent atomic.Uint64
	// Unappliable counts orders that could not be applied at all
	// (amendment 2); FieldsDropped the fields set aside in orders applied.
	Unappliable   atomic.Uint64
	FieldsDropped atomic.Uint64
}

// Link is the central link.
type Link struct {
	opts   Options
	store  Store
	outbox Outbox
	clock  Clock
	log    *slog.Logger

	C Counters

	client    mqtt.Client
	in        chan mqtt.Message
	connected chan struct{}
	committed chan store.Result
	doneReq   chan string // replay_done request ids
	statusDue chan struct{}

	online    atomic.Bool
	pubOnline atomic.Bool
	watermark atomic.Uint64
	head      atomic.Uint64
	maxSeq    atomic.Uint64
	since     atomic.Int64 // unix nanos of the last online/offline change
	gapSince  atomic.Int64 // unix nanos since a gap is open, 0: none (control)
	resyncAt  atomic.Int64 // unix nanos of the outstanding resync, 0: none (control)
	// redeliverAt is when the deliveries since redeliverSince are sent
	// again, 0: none due (deliver).
	redeliverAt    atomic.Int64
	redeliverSince atomic.Int64
	// timeouts are gap_grace and resync_timeout in force (SetTimeouts);
	// control copies them into opts at each round.
	timeouts atomic.Pointer[timeouts]

	mu          sync.Mutex
	lookups     map[string]chan struct{}
	rejectedBy  map[string]uint64
	lastReject  string
	outstanding string
	// gaps are the seqs received only in orders that cannot be applied
	// (amendment 2): they stay gaps, alarmed, until an order applied under
	// the seq or the watermark passes them. Written by commit only.
	gaps map[uint64]*GapSeq
	// settled: every seq ≤ settled is applied or in gaps; gapTop is the
	// highest seq in gaps (0: none). Both set by commit.
	settled atomic.Uint64
	gapTop  atomic.Uint64
	// seqs and missing are the store's optional abilities (store.Store
	// has both), nil when it lacks them.
	seqs    seqReader
	missing gapLister

	keysMu sync.RWMutex // guards opts.Keys, swapped by SetKeys
}

// New makes a link. Run starts it.
func New(opts Options, st Store, ob Outbox, clk Clock) (*Link, error) {
	if !customs.NameRE.MatchString(opts.Site) || !customs.NameRE.MatchString(opts.Gateway) {
		return nil, fmt.Errorf("link: bad site or gateway name")
	}
	if opts.GapGrace == 0 {
		opts.GapGrace = 2 * time.Second
	}
	if opts.ResyncTimeout == 0 {
		opts.ResyncTimeout = 30 * time.Second
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 20000
	}
	if opts.RedeliverWindow == 0 {
		opts.RedeliverWindow = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	p, err := st.Progress()
	if err != nil {
		return nil, fmt.Errorf("link: read progress: %w", err)
	}
	seqs, _ := st.(seqReader)
	missing, _ := st.(gapLister)
	st = &watchedStore{Store: st} // for store_writable in Snapshot
	l := &Link{opts: opts, store: st, outbox: ob, clock: clk, log: opts.Log.With("part", "link"),
		gaps: map[uint64]*GapSeq{}, seqs: seqs, missing: missing,
		in: make(chan mqtt.Message, 4096), connected: make(chan struct{}, 1), committed: make(chan store.Result, 64),
		doneReq: make(chan string, 16), statusDue: make(chan struct{}, 1),
		lookups: map[string]chan struct{}{}, rejectedBy: map[string]uint64{}}
	l.watermark.Store(p.Watermark)
	l.settled.Store(p.Watermark)
	l.head.Store(p.Head)
	l.maxSeq.Store(p.MaxSeq)
	l.since.Store(time.Now().UnixNano())
	l.SetTimeouts(opts.GapGrace, opts.ResyncTimeout)
	return l, nil
}

func (l *Link) topic(leaf string) string {
	return customs.GatewayTopic(l.opts.Site, l.opts.Gateway, leaf)
}

// Online reports whether the order connection is up.
func (l *Link) Online() bool { return l.online.Load() }

// Watermark is the applied watermark.
func (l *Link) Watermark() uint64 { return l.watermark.Load() }

// Snapshot is the link's state for status pages and metrics.
type Snapshot struct {
	Online       bool              `json:"online"`
	PubOnline    bool              `json:"events_online"`
	Since        time.Time         `json:"since"`
	Watermark    uint64            `json:"applied_seq"`
	Head         uint64            `json:"head_seq"`
	MaxSeq       uint64            `json:"max_seq"`
	Lag          uint64            `json:"lag"`
	Outbox       int               `json:"outbox"`
	OutboxBytes  int64             `json:"outbox_bytes"`
	Rejected     uint64            `json:"rejected"`
	RejectedBy   map[string]uint64 `json:"rejected_by"`
	LastReject   string            `json:"last_reject,omitempty"`
	Applied      uint64            `json:"orders_applied"`
	Duplicates   uint64            `json:"orders_duplicate"`
	Conflicts    uint64            `json:"orders_conflict"`
	Resyncs      uint64            `json:"resyncs"`
	Resyncing    bool              `json:"resyncing"`
	EventsSent   uint64            `json:"events_sent"`
	BrokerClient string            `json:"client_id"`
	// GapSince is when the open gap (Lag > 0) was first seen; ResyncSent
	// when the outstanding resync went out.
	GapSince   *time.Time `json:"gap_since,omitempty"`
	ResyncSent *time.Time `json:"resync_sent,omitempty"`
	// StoreWritable is false while the order store fails to commit (disk
	// full, I/O error): orders are then not acknowledged.
	StoreWritable bool   `json:"store_writable"`
	StoreError    string `json:"store_error,omitempty"`
	// OutboxWritable is false while the outbox fails to commit.
	OutboxWritable bool            `json:"outbox_writable"`
	OutboxHealth   *journal.Health `json:"outbox_health,omitempty"`
	// OutboxOldest is the age in seconds of the oldest undelivered event.
	OutboxOldest float64 `json:"outbox_oldest_s"`
	// Ready: both stores commit. Deciding goes on when not ready, but
	// orders are not taken and scans may be decided STOP (error).
	Ready  bool     `json:"ready"`
	Alarms []string `json:"alarms,omitempty"`
	// RedeliverDue: events delivered since the events connection came back
	// will be sent again (see Options.RedeliverWindow).
	RedeliverDue bool `json:"redeliver_due"`
	// Unappliable counts orders that could not be applied (amendment 2),
	// FieldsDropped the out-of-form fields set aside in orders applied.
	Unappliable   uint64 `json:"orders_unappliable"`
	FieldsDropped uint64 `json:"order_fields_dropped"`
	// Gaps are the seqs held open by orders that cannot be applied, lowest
	// first, at most maxGapsShown of GapCount.
	Gaps     []GapSeq `json:"unappliable_seqs,omitempty"`
	GapCount int      `json:"unappliable_open"`
}

// GapSeq is a seq received only in orders that cannot be applied: it stays
// a gap (amendment 2), so the watermark stops below it.
type GapSeq struct {
	Seq   uint64    `json:"seq"`
	Since time.Time `json:"since"` // first received
	Error string    `json:"error"` // why the last copy could not be applied
	Seen  int       `json:"seen"`  // copies received
}

const maxGapsShown = 20

// Snapshot returns the link's state.
func (l *Link) Snapshot() Snapshot {
	s := Snapshot{Online: l.online.Load(), PubOnline: l.pubOnline.Load(), Since: time.Unix(0, l.since.Load()).UTC(),
		Watermark: l.watermark.Load(), Head: l.head.Load(), MaxSeq: l.maxSeq.Load(),
		Rejected: l.C.Rejected.Load(), Applied: l.C.Applied.Load(), Duplicates: l.C.Duplicates.Load(),
		Conflicts: l.C.Conflicts.Load(), Resyncs: l.C.Resyncs.Load(), EventsSent: l.C.EventsSent.Load(),
		BrokerClient: l.clientID()}
	top := max(s.Head, s.MaxSeq, l.gapTop.Load())
	if top > s.Watermark {
		s.Lag = top - s.Watermark
	}
	s.Outbox, s.OutboxBytes = l.outbox.Depth()
	l.mu.Lock()
	s.RejectedBy = make(map[string]uint64, len(l.rejectedBy))
	for k, v := range l.rejectedBy {
		s.RejectedBy[k] = v
	}
	s.LastReject = l.lastReject
	s.Resyncing = l.outstanding != ""
	s.GapCount = len(l.gaps)
	for _, g := range l.gaps {
		s.Gaps = append(s.Gaps, *g)
	}
	l.mu.Unlock()
	slices.SortFunc(s.Gaps, func(a, b GapSeq) int { return cmp.Compare(a.Seq, b.Seq) })
	if len(s.Gaps) > maxGapsShown {
		s.Gaps = s.Gaps[:maxGapsShown]
	}
	s.Unappliable, s.FieldsDropped = l.C.Unappliable.Load(), l.C.FieldsDropped.Load()
	if n := l.gapSince.Load(); n != 0 {
		t := time.Unix(0, n).UTC()
		s.GapSince = &t
	}
	if n := l.resyncAt.Load(); n != 0 && s.Resyncing {
		t := time.Unix(0, n).UTC()
		s.ResyncSent = &t
	}
	l.health(&s)
	s.RedeliverDue = l.redeliverAt.Load() != 0
	return s
}

func (l *Link) clientID() string { return "cargogate-" + l.opts.Site + "-" + l.opts.Gateway }

// Run connects and serves until ctx is done. The broker being down is not
// an error: the link keeps trying, and the gateway keeps deciding.
func (l *Link) Run(ctx context.Context) error {
	will, err := l.statusDoc("offline")
	if err != nil {
		return err
	}
	o := mqtt.NewClientOptions().AddBroker(l.opts.Broker).SetClientID(l.clientID()).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).SetMaxReconnectInterval(5*time.Second).
		SetConnectTimeout(5*time.Second).SetKeepAlive(10*time.Second).SetPingTimeout(5*time.Second).
		SetOrderMatters(true).SetAutoAckDisabled(true).
		SetBinaryWill(l.topic(customs.LeafStatus), will, 1, true).
		SetDefaultPublishHandler(l.handoff).
		SetOnConnectHandler(func(c mqtt.Client) {
			// Runs in its own goroutine (paho client.go); subscribing here
			// restores the subscriptions a lost session dropped.
			l.subscribe(c)
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			l.setOnline(false)
			l.log.Warn("link to broker lost; deciding offline", "err", err)
		})
	if l.opts.Username != "" {
		o.SetUsername(l.opts.Username).SetPassword(l.opts.Password)
	}
	if l.opts.TLS != nil {
		o.SetTLSConfig(l.opts.TLS)
	}
	l.client = mqtt.NewClient(o)
	l.client.Connect() // with ConnectRetry, retries in the background

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return l.ingest(ctx) })
	g.Go(func() error { return l.control(ctx) })
	g.Go(func() error { return l.deliver(ctx) })
	<-ctx.Done()
	err = g.Wait()
	if l.client.IsConnectionOpen() {
		// A clean stop publishes the offline status itself (the will is
		// only for a connection that dies).
		if doc, derr := l.statusDoc("offline"); derr == nil {
			l.client.Publish(l.topic(customs.LeafStatus), 1, true, doc).WaitTimeout(time.Second)
		}
	}
	l.client.Disconnect(250)
	l.setOnline(false)
	return err
}

func (l *Link) subscribe(c mqtt.Client) {
	subs := map[string]byte{
		customs.OrdersTopic(l.opts.Site): 1,
		customs.HeadTopic(l.opts.Site):   1,
		l.topic(customs.LeafReplay):      1,
		l.topic(customs.LeafLookupReply): 1,
	}
	t := c.SubscribeMultiple(subs, l.handoff)
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		l.log.Error("subscribe failed; reconnecting", "err", t.Error())
		// Without subscriptions the link would sit deaf: drop the
		// connection. Disconnect ends paho's automatic reconnection, so
		// control() connects again (see its watch on IsConnected).
		go c.Disconnect(0)
		return
	}
	l.setOnline(true)
	l.log.Info("link to broker up", "broker", l.opts.Broker, "client_id", l.clientID())
	select {
	case l.connected <- struct{}{}:
	default:
	}
}

func (l *Link) setOnline(v bool) {
	if l.online.Swap(v) != v {
		l.since.Store(time.Now().UnixNano())
		l.kickStatus()
	}
}

// handoff is the only thing paho's router runs: it never blocks on anything
// but the pipeline's buffer.
func (l *Link) handoff(_ mqtt.Client, m mqtt.Message) { l.in <- m }

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
	reject    string // reason label when rejected
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

// ingest verifies messages on every core, then commits them in arrival
// order in batches, acking each message only after its batch is durable.
func (l *Link) ingest(ctx context.Context) error {
	work := make(chan *item, 4096)
	ordered := make(chan *item, 8192)
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				l.verify(it)
				close(it.done)
			}
		}()
	}
	defer wg.Wait()
	defer close(work)
	// Payload bytes taken in and not yet acked are bounded, so a queue of
	// large messages (1,000 orders ≈ 200 KB each, a broker window of
	// 20,000) waits in the broker, not in the heap; paho's router then
	// blocks on l.in, which is the backpressure.
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
	go func() { batchDone <- l.batcher(ctx, ordered, release) }()
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
		case m := <-l.in:
			it := &item{msg: m, done: make(chan struct{}), size: int64(len(m.Payload()))}
			held.Add(it.size)
			work <- it
			ordered <- it
		}
	}
}

// ingestBudget bounds the payload bytes between the handoff and the ack.
// 16 MiB holds 80 messages of 1,000 orders (four full batches) or 30,000
// messages of one order, so batches still fill up to MaxBatch.
const ingestBudget = 16 << 20

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
	// once. Where that fails, the documents are read one field set at a
	// time as before, so the outcome (and the rejection reason) is the same.
	var doc anyDoc
	decoded := json.Unmarshal(payload, &doc) == nil
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
	topic := it.msg.Topic()
	var allowed string
	known := true
	switch topic {
	case customs.OrdersTopic(l.opts.Site), l.topic(customs.LeafLookupReply):
		allowed = customs.TypeOrders
	case customs.HeadTopic(l.opts.Site):
		allowed = customs.TypeHead
	default:
		known = false
	}
	switch {
	case topic == l.topic(customs.LeafReplay):
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
		it.orders = make([]customs.Order, 0, len(typed)+len(raws))
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
	}
}

// anyDoc has the fields of every document the order path takes (orders,
// head, replay_done), each under the same name and type as in its own
// document, so a payload that decodes into anyDoc decodes the same way
// into its own type.
type anyDoc struct {
	Type      string          `json:"type"`
	Site      string          `json:"site"`
	RequestID string          `json:"request_id"`
	Orders    []customs.Order `json:"orders"`
	Seq       uint64          `json:"seq"`
	At        time.Time       `json:"at"`
	UpTo      uint64          `json:"up_to"`
}

// batcher commits verified messages in arrival order.
func (l *Link) batcher(ctx context.Context, ordered <-chan *item, release func(n int64)) error {
	var batch []*item
	for {
		it, ok := <-ordered
		if !ok {
			return nil
		}
		batch = append(batch[:0], it)
		<-it.done
		n := len(it.orders)
	greedy:
		for n < l.opts.MaxBatch {
			select {
			case it, ok := <-ordered:
				if !ok {
					break greedy
				}
				<-it.done
				batch = append(batch, it)
				n += len(it.orders)
			default:
				break greedy
			}
		}
		err := l.commit(batch)
		var size int64
		for _, it := range batch {
			size += it.size
		}
		release(size)
		if err != nil {
			// Not acked: the broker keeps the messages and redelivers them
			// on the next connection. Drop the connection so it does.
			l.log.Error("commit failed; orders not acknowledged, reconnecting", "err", err)
			if l.client == nil { // Ingest without a broker (feed.go)
				continue
			}
			l.client.Disconnect(0)
			l.setOnline(false)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			l.client.Connect()
		}
	}
}

func (l *Link) commit(batch []*item) error {
	var b store.Batch
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
		if it.reject != "" || it.requestID == "" {
			continue
		}
		if it.typ == customs.TypeReplayDone {
			select {
			case l.doneReq <- it.requestID:
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

// control runs resync (§5.3) and the status publisher. Resync:
//
//   - at every (re)connection, resync(W+1, 0), retried on every tick until
//     it is sent, replacing any outstanding one;
//   - a gap (head or a seq beyond W) open for gap_grace, or a message
//     rejected gap_grace ago (its seqs are unknown), with no resync
//     outstanding: resync(W+1, highest seq seen), or (W+1, 0) for a
//     rejection;
//   - at most one outstanding; repeated as resync(S+1, 0) after
//     resync_timeout without its replay_done.
//
// S is settled: every seq ≤ S is applied or was received only in orders
// that cannot be applied (amendment 2). Without such orders S = W. Gaps
// are measured from S, so a seq that can never be applied neither blocks
// the filling of later gaps nor triggers a resync every gap_grace: the
// resync that asks for it again, resync(W+1, end of its run), goes out at
// most once per resync_timeout.
func (l *Link) control(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var (
		sentAt     time.Time
		gapSince   time.Time
		lastStatus time.Time
		statusWant bool
		lastSent   customs.Status
		// onConnect: a (re)connection's resync is still to be sent.
		onConnect bool
		// rejected is the rejection count last seen; rejectedAt when a new
		// rejection was first seen and not yet covered by a resync.
		rejected   = l.C.Rejected.Load()
		rejectedAt time.Time
		// reconnectAt: when control last connected a client paho gave up.
		reconnectAt time.Time
		// badAt: when the unappliable seq at W+1 was last asked for (or
		// first seen); zero while W+1 is no such seq.
		badAt time.Time
	)
	defer l.gapSince.Store(0)
	defer l.resyncAt.Store(0)
	send := func(from, to uint64) bool {
		id := ulid.Make().String()
		doc := customs.Resync{Type: customs.TypeResync, Site: l.opts.Site, Gateway: l.opts.Gateway,
			RequestID: id, FromSeq: from, ToSeq: to}
		if err := l.publish(ctx, l.topic(customs.LeafResync), doc, false); err != nil {
			l.log.Warn("resync not sent; trying again", "err", err)
			return false
		}
		l.mu.Lock()
		l.outstanding = id
		l.mu.Unlock()
		sentAt = time.Now()
		l.resyncAt.Store(sentAt.UnixNano())
		l.C.Resyncs.Add(1)
		l.log.Info("resync sent", "from_seq", from, "to_seq", to, "request_id", id)
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.connected:
			// Every (re)connection: from W+1 up to central's head (§5.3);
			// sent below, and again on each tick until it went out.
			onConnect = true
			statusWant = true
		case id := <-l.doneReq:
			l.mu.Lock()
			match := id == l.outstanding
			if match {
				l.outstanding = ""
			}
			l.mu.Unlock()
			if match {
				l.log.Info("replay done", "request_id", id, "applied_seq", l.watermark.Load())
				gapSince = time.Time{}
			}
		case <-l.committed:
		case <-l.statusDue:
			statusWant = true
		case <-tick.C:
		}
		now := time.Now()
		l.opts.GapGrace, l.opts.ResyncTimeout = l.Timeouts()
		if !l.online.Load() && !l.client.IsConnected() && now.Sub(reconnectAt) >= time.Second {
			// The client is neither connected nor trying: a Disconnect (after
			// a failed subscribe or commit) ends paho's automatic
			// reconnection, and a Connect racing it can fail. The fault
			// suite found the link deaf for good this way; connect again,
			// at most once a second.
			reconnectAt = now
			l.log.Warn("order connection given up by the MQTT client; connecting again")
			l.client.Connect()
		}
		if r := l.C.Rejected.Load(); r != rejected {
			rejected = r
			if rejectedAt.IsZero() {
				rejectedAt = now
			}
		}
		w := l.watermark.Load()
		set := max(l.settled.Load(), w)
		top := max(l.head.Load(), l.maxSeq.Load(), l.gapTop.Load())
		if top > w {
			if l.gapSince.Load() == 0 {
				l.gapSince.Store(now.UnixNano())
			}
		} else {
			l.gapSince.Store(0)
		}
		if top > set {
			if gapSince.IsZero() {
				gapSince = now
			}
		} else {
			gapSince = time.Time{}
		}
		switch {
		case set == w:
			badAt = time.Time{}
		case badAt.IsZero():
			badAt = now // central just sent it: ask again after resync_timeout
		}
		if l.online.Load() {
			l.mu.Lock()
			outstanding := l.outstanding != ""
			l.mu.Unlock()
			switch {
			case onConnect:
				if send(w+1, 0) {
					onConnect, rejectedAt = false, time.Time{}
					if set > w {
						badAt = now
					}
				}
			case outstanding && now.Sub(sentAt) > l.opts.ResyncTimeout:
				l.log.Warn("no replay_done in time; asking again", "timeout", l.opts.ResyncTimeout)
				if send(set+1, 0) {
					rejectedAt = time.Time{}
				}
			case outstanding:
			case !gapSince.IsZero() && now.Sub(gapSince) >= l.opts.GapGrace:
				l.log.Info("gap open longer than gap_grace", "applied_seq", w, "settled_seq", set, "top_seq", top, "gap_grace", l.opts.GapGrace)
				send(set+1, top)
				gapSince = now
			case !rejectedAt.IsZero() && now.Sub(rejectedAt) >= l.opts.GapGrace:
				// A rejected message may have held orders we now lack: ask
				// for everything above what is settled.
				if send(set+1, 0) {
					rejectedAt = time.Time{}
				}
			case set > w && now.Sub(badAt) >= l.opts.ResyncTimeout:
				// The seq at W+1 came only in orders that cannot be
				// applied: ask for it (and its run) again, once per
				// resync_timeout.
				end := l.gapRunEnd(w)
				l.log.Warn("order seq cannot be applied; asking central for it again", "from_seq", w+1, "to_seq", end)
				if send(w+1, max(end, w+1)) {
					badAt = now
				}
			}
			st := l.status("online")
			changed := st.AppliedSeq != lastSent.AppliedSeq || st.HeadSeq != lastSent.HeadSeq || st.Outbox != lastSent.Outbox || lastSent.State != "online"
			if (statusWant || changed) && now.Sub(lastStatus) >= 200*time.Millisecond || now.Sub(lastStatus) >= 30*time.Second {
				if err := l.publish(ctx, l.topic(customs.LeafStatus), st, true); err == nil {
					lastStatus, lastSent, statusWant = now, st, false
				}
			}
		} else {
			lastSent = customs.Status{}
		}
	}
}

func (l *Link) kickStatus() {
	select {
	case l.statusDue <- struct{}{}:
	default:
	}
}

func (l *Link) status(state string) customs.Status {
	n, _ := l.outbox.Depth()
	return customs.Status{Type: customs.TypeStatus, Site: l.opts.Site, Gateway: l.opts.Gateway, State: state,
		AppliedSeq: l.watermark.Load(), HeadSeq: l.head.Load(), Outbox: n, Version: l.opts.Version, At: time.Now().UTC()}
}

func (l *Link) statusDoc(state string) ([]byte, error) {
	return l.opts.Signer.Seal(l.status(state))
}

// publish signs doc and publishes it on the order connection, waiting for
// the token outside any paho callback.
func (l *Link) publish(ctx context.Context, topic string, doc any, retained bool) error {
	data, err := l.opts.Signer.Seal(doc)
	if err != nil {
		return err
	}
	t := l.client.Publish(topic, 1, retained, data)
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return errors.New("publish timed out")
	}
}

// Lookup asks central for every order on s and its containers (§3) and
// returns once the reply is committed, or when ctx ends.
func (l *Link) Lookup(ctx context.Context, s customs.Subject) error {
	if !l.Online() {
		return ErrOffline
	}
	id := ulid.Make().String()
	ch := make(chan struct{})
	l.mu.Lock()
	l.lookups[id] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.lookups, id)
		l.mu.Unlock()
	}()
	doc := customs.Lookup{Type: customs.TypeLookup, Site: l.opts.Site, Gateway: l.opts.Gateway, RequestID: id, Subject: s}
	if err := l.publish(ctx, l.topic(customs.LeafLookup), doc, false); err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// eventsDoc is customs.Events with the events kept as the journal's bytes.
type eventsDoc struct {
	Type    string            `json:"type"`
	Site    string            `json:"site"`
	Gateway string            `json:"gateway"`
	Events  []json.RawMessage `json:"events"`
}

// deliver publishes the outbox on its own connection: clean session, no
// automatic reconnect, so a lost connection fails the token instead of
// completing it on a re-send, and an event leaves the outbox only after a
// PUBACK that really happened (§5.4).
//
// A PUBACK is the broker's, not central's: a broker that dies (or restarts
// without persistence) loses central's session and what it had routed to
// it, and until central has subscribed again the new broker routes events
// to no one. So after the connection comes back, deliver sends again, with
// the same ids, the events delivered in RedeliverWindow before it was lost,
// and, RedeliverWindow later, those delivered since it came back. Central
// drops the copies by id; events still leave in decision order.
func (l *Link) deliver(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	var lostAt time.Time // when the last events connection ended
	for ctx.Err() == nil {
		lost := make(chan struct{})
		o := mqtt.NewClientOptions().AddBroker(l.opts.Broker).SetClientID(l.clientID() + "-pub").
			SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
			SetConnectTimeout(5 * time.Second).SetKeepAlive(10 * time.Second).SetPingTimeout(5 * time.Second).
			SetConnectionLostHandler(func(mqtt.Client, error) { close(lost) })
		if l.opts.Username != "" {
			o.SetUsername(l.opts.Username).SetPassword(l.opts.Password)
		}
		if l.opts.TLS != nil {
			o.SetTLSConfig(l.opts.TLS)
		}
		c := mqtt.NewClient(o)
		t := c.Connect()
		t.WaitTimeout(6 * time.Second)
		if t.Error() != nil || !c.IsConnected() {
			l.log.Debug("events connection failed", "err", t.Error())
			sleep(ctx, jitter(backoff))
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if !lostAt.IsZero() {
			l.redeliver(lostAt.Add(-l.opts.RedeliverWindow), "events connection back")
			if l.opts.RedeliverWindow > 0 {
				now := time.Now()
				l.redeliverSince.Store(now.UnixNano())
				l.redeliverAt.Store(now.Add(l.opts.RedeliverWindow).UnixNano())
			}
		}
		l.pubOnline.Store(true)
		err := l.drain(ctx, c, lost)
		l.pubOnline.Store(false)
		lostAt = time.Now()
		c.Disconnect(100)
		if err != nil && ctx.Err() == nil {
			l.log.Warn("events connection dropped; events stay in the outbox", "err", err)
			sleep(ctx, jitter(backoff))
		}
	}
	return nil
}

// Redeliverer is the optional ability of an Outbox to put delivered events
// back (journal.Journal has it).
type Redeliverer interface {
	Redeliver(since time.Time) (int, error)
}

var _ Redeliverer = (*journal.Journal)(nil)

// redeliver puts the events delivered since back into the outbox.
func (l *Link) redeliver(since time.Time, why string) {
	rd, ok := l.outbox.(Redeliverer)
	if !ok || l.opts.RedeliverWindow <= 0 {
		return
	}
	n, err := rd.Redeliver(since)
	if err != nil {
		l.log.Error("events not put back for redelivery", "err", err)
		return
	}
	if n > 0 {
		l.log.Info("sending delivered events again; central drops the copies it has", "events", n, "since", since, "why", why)
	}
}

func (l *Link) drain(ctx context.Context, c mqtt.Client, lost <-chan struct{}) error {
	topic := l.topic(customs.LeafEvents)
	for {
		if due := l.redeliverAt.Load(); due != 0 && time.Now().UnixNano() >= due {
			l.redeliver(time.Unix(0, l.redeliverSince.Load()), "window after reconnection passed")
			l.redeliverAt.Store(0)
		}
		entries, err := l.outbox.Pending(customs.MaxEvents, 600<<10)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-lost:
				return errors.New("connection lost")
			case <-l.outbox.Notify():
			case <-time.After(time.Second):
			}
			continue
		}
		doc := eventsDoc{Type: customs.TypeEvents, Site: l.opts.Site, Gateway: l.opts.Gateway}
		for _, e := range entries {
			doc.Events = append(doc.Events, json.RawMessage(e.Data))
		}
		data, err := l.opts.Signer.Seal(doc)
		if err != nil {
			return err
		}
		t := c.Publish(topic, 1, false, data)
		select {
		case <-t.Done():
		case <-lost:
			return errors.New("connection lost before PUBACK")
		case <-ctx.Done():
			return nil
		case <-time.After(30 * time.Second):
			return errors.New("no PUBACK in 30s")
		}
		if err := t.Error(); err != nil {
			return err
		}
		if err := l.outbox.Delivered(entries); err != nil {
			return err
		}
		l.C.EventsSent.Add(uint64(len(entries)))
		l.kickStatus()
	}
}

func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// SetKeys replaces the trusted central keys (config reload). A key no
// longer listed is no longer trusted from the next message on.
func (l *Link) SetKeys(k envelope.Keyring) {
	l.keysMu.Lock()
	l.opts.Keys = k
	l.keysMu.Unlock()
}

func (l *Link) keyring() envelope.Keyring {
	l.keysMu.RLock()
	defer l.keysMu.RUnlock()
	return l.opts.Keys
}

// audit records a fact in the gateway's audit log, if one is wired.
func (l *Link) audit(kind string, data any) {
	if l.opts.Audit != nil {
		l.opts.Audit(kind, data)
	}
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
