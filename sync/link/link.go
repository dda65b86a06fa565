// Package link is the gateway's link to central customs over MQTT
// (PROTOCOL §1–§5). Run composes three parts, each with its own Run: on
// the order connection, ingest verifies signed orders and acks them only
// after they are committed with fsync (ingest.go), and control fills every
// gap by resync and publishes the retained status with an offline will
// (control.go); the event outbox is delivered on a second connection by
// sync/outbox. The parts share only the link's state they name (the
// watermark, head and gap atomics, the connection); the link also answers
// lookups (lookup.go).
//
// The link consumes the order store, the event journal and the clock
// through the interfaces below, written against gateway/persist's types:
// it imports neither gateway/store nor gateway/journal, nor bbolt.
package link

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/sync/errgroup"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/persist"
	"github.com/cargogate/cargogate/internal/failover"
	"github.com/cargogate/cargogate/internal/liveness"
	"github.com/cargogate/cargogate/internal/tstime"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/outbox"
)

// Store is what the link needs of the order store (*store.Store).
type Store interface {
	Apply(b persist.Batch) (persist.Result, error)
	Progress() (persist.Progress, error)
}

// Outbox is what the link needs of the event journal (*journal.Journal):
// what sync/outbox delivers from, and its depth for the status.
type Outbox interface {
	outbox.Source
	Depth() (events int, bytes int64)
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
	Broker        string // tcp://host:port or ssl://host:port; a list of one
	// Brokers, if set, are the brokers both connections try in turn, with
	// capped, jittered delays (internal/failover); Broker is then unused.
	// They share Username, Password and TLS.
	Brokers       []string
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
	// MaxBatchBytes bounds what one commit writes, estimated as one 4 KiB
	// page per order (a random id dirties a leaf of its own) plus the
	// message bytes (the seq log keeps every order): bbolt holds every
	// dirty page in the heap until the commit and writes them in one
	// burst that the journal's fsync waits behind. A message is never
	// split, so a commit takes at least one. Default 16 MiB (about 3,800
	// orders); negative: no bound but MaxBatch.
	MaxBatchBytes int64
	// AckTimeout: an event sent but not acknowledged by central's
	// events_ack within it is sent again under the same id (see
	// sync/outbox). 0: 30s.
	AckTimeout time.Duration
	Log        *slog.Logger // nil: discard
	// Time is the clock the loops wait and measure on (gap_grace,
	// resync_timeout, the status cadence, redelivery); nil: the real one.
	Time tstime.Clock
	// Audit, if set, records every commit of orders, every rejected
	// message and every conflict in the audit log. It must not block.
	Audit func(kind string, data any)
	// Checkpoint, if set, returns the time of the gateway's last signed
	// audit checkpoint (false: none yet); the status carries it as
	// checkpoint_at for the fleet view.
	Checkpoint func() (time.Time, bool)
	// Liveness, if set, has the control loop's heartbeat ("link"), ticked
	// on each turn (at least every 100 ms): the systemd watchdog is fed
	// only while it turns.
	Liveness *liveness.Registry
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
	time   tstime.Clock
	log    *slog.Logger

	// conn is the order connection as control and publish use it: the
	// MQTT client under Run, a fake in the tests of the control loop.
	conn conn

	C Counters

	client    mqtt.Client
	in        chan mqtt.Message
	connected chan struct{}
	committed chan persist.Result
	doneReq   chan replayDoneMsg // replay_done request ids and up_to
	statusDue chan struct{}

	out *outbox.Deliverer // the events connection

	// orders and events are the two connections' broker lists and their
	// place in them.
	orders, events *failover.Brokers

	online    atomic.Bool
	watermark atomic.Uint64
	head      atomic.Uint64
	maxSeq    atomic.Uint64
	since     atomic.Int64 // unix nanos of the last online/offline change
	gapSince  atomic.Int64 // unix nanos since a gap is open, 0: none (control)
	resyncAt  atomic.Int64 // unix nanos of the outstanding resync, 0: none (control)
	// timeouts are gap_grace and resync_timeout in force (SetTimeouts);
	// control copies them into opts at each round.
	timeouts atomic.Pointer[timeouts]

	mu          sync.Mutex
	lookups     map[string]chan struct{}
	rejectedBy  map[string]uint64
	lastReject  string
	outstanding string
	// outFrom and outEnd are the range the outstanding resync asked for:
	// to_seq, or for to_seq 0 the highest seq seen when it went out.
	outFrom, outEnd uint64
	// gaps are the seqs received only in orders that cannot be applied
	// (amendment 2): they stay gaps, alarmed, until an order applied under
	// the seq or the watermark passes them. Written by commit only.
	gaps map[uint64]*GapSeq
	// settled: every seq ≤ settled is applied or in gaps; gapTop is the
	// highest seq in gaps (0: none). Both set by commit.
	settled atomic.Uint64
	gapTop  atomic.Uint64
	// undelivered are the runs of seqs a replay was asked for and did not
	// deliver (gaps.go), sorted, disjoint, apart from the seqs in gaps.
	// Guarded by mu; written under settleMu, by control at replay_done and
	// by commit.
	undelivered []SeqRange
	// settleMu serializes the recomputation of undelivered and settled.
	settleMu sync.Mutex
	// seqs and missing are the store's optional abilities (store.Store
	// has both), nil when it lacks them.
	seqs    seqReader
	missing gapLister

	keysMu sync.RWMutex // guards opts.Keys, swapped by SetKeys

	routesOnce sync.Once
	rt         routes // the topics verify tells apart (ingest.go)
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
	if opts.MaxBatchBytes == 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.Time = tstime.Or(opts.Time)
	p, err := st.Progress()
	if err != nil {
		return nil, fmt.Errorf("link: read progress: %w", err)
	}
	seqs, _ := st.(seqReader)
	missing, _ := st.(gapLister)
	urls := opts.Brokers
	if len(urls) == 0 && opts.Broker != "" {
		urls = []string{opts.Broker}
	}
	log := opts.Log.With("part", "link")
	// Without a broker (tests of the parts) the link is made, and Run
	// fails.
	orders, err := failover.New(urls, failover.Options{Conn: "orders", Log: log})
	if err != nil && len(urls) > 0 {
		return nil, fmt.Errorf("link: %w", err)
	}
	events, _ := failover.New(urls, failover.Options{Conn: "events", Log: log})
	if events != nil {
		// central's events_ack comes on the order connection.
		events.Follow(orders)
	}
	st = &watchedStore{Store: st, time: opts.Time} // for store_writable in Snapshot
	l := &Link{opts: opts, store: st, outbox: ob, clock: clk, time: opts.Time, log: log, orders: orders, events: events,
		gaps: map[uint64]*GapSeq{}, seqs: seqs, missing: missing,
		in: make(chan mqtt.Message, handoffDepth), connected: make(chan struct{}, 1), committed: make(chan persist.Result, 64),
		doneReq: make(chan replayDoneMsg, 16), statusDue: make(chan struct{}, 1),
		lookups: map[string]chan struct{}{}, rejectedBy: map[string]uint64{}}
	l.watermark.Store(p.Watermark)
	l.settled.Store(p.Watermark)
	l.head.Store(p.Head)
	l.maxSeq.Store(p.MaxSeq)
	l.since.Store(l.time.Now().UnixNano())
	l.SetTimeouts(opts.GapGrace, opts.ResyncTimeout)
	l.out = outbox.New(outbox.Options{Site: opts.Site, Gateway: opts.Gateway, Signer: opts.Signer,
		Connect:    func() *mqtt.ClientOptions { return l.events.Apply(l.clientOptions(l.clientID() + "-pub")) },
		Paced:      true, // l.events waits before each dial
		AckTimeout: opts.AckTimeout, Log: l.log, Time: opts.Time,
		Delivered: func(n int) {
			l.C.EventsSent.Add(uint64(n))
			l.kickStatus()
		}}, ob)
	return l, nil
}

func (l *Link) topic(leaf string) string {
	return customs.GatewayTopic(l.opts.Site, l.opts.Gateway, leaf)
}

// Online reports whether the order connection is up.
func (l *Link) Online() bool { return l.online.Load() }

// Watermark is the applied watermark.
func (l *Link) Watermark() uint64 { return l.watermark.Load() }

// Run connects and serves until ctx is done. The broker being down is not
// an error: the link keeps trying, and the gateway keeps deciding.
func (l *Link) Run(ctx context.Context) error {
	if l.orders == nil {
		return errNoBroker
	}
	will, err := l.statusDoc("offline")
	if err != nil {
		return err
	}
	l.client = mqtt.NewClient(l.orderOptions(will))
	l.conn = l.client
	l.client.Connect() // with ConnectRetry, retries in the background

	// The three parts, each with its own Run: the order pipeline
	// (ingest.go), resync and status (control.go), and the event outbox on
	// its own connection (sync/outbox).
	in, ctl := l.newIngest(), l.newControl()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return in.Run(ctx) })
	g.Go(func() error { return ctl.Run(ctx) })
	g.Go(func() error { return l.out.Run(ctx) })
	<-ctx.Done()
	l.orders.Close() // a connection attempt does not wait out its delay
	l.events.Close()
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

// handoffDepth is how many received messages wait for the ingest loop,
// which moves them on at once while the payload bytes it holds are within
// ingestBudget. Beyond that the MQTT client's handler blocks here, and
// what waits beyond these few messages waits in the broker, not in the
// heap (4,096 messages of 1,000 orders were 800 MB).
const handoffDepth = 8
