// Package outbox delivers the gateway's event outbox to central (PROTOCOL
// §5.4) on its own MQTT connection: clean session, no automatic reconnect,
// so that a lost connection fails the token instead of completing it on a
// re-send. An event leaves the outbox only when central's events_ack names
// it (PROTOCOL amendment 3): a PUBACK ends one send, not the delivery.
//
// It consumes the event journal through Source, written against
// gateway/persist's types, so it depends neither on gateway/journal nor on
// bbolt. sync/link runs it beside the order connection and owns the
// connection's MQTT options.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/persist"
	"github.com/cargogate/cargogate/internal/backoff"
	"github.com/cargogate/cargogate/internal/tstime"
	"github.com/cargogate/cargogate/sync/envelope"
)

// Source is what delivery needs of the event journal.
type Source interface {
	// Pending returns the oldest events not yet acknowledged by central,
	// at most max of them and about maxBytes of JSON.
	Pending(max, maxBytes int) ([]persist.Entry, error)
	// Delivered takes events out of the outbox once central's events_ack
	// names them.
	Delivered(entries []persist.Entry) error
	// Notify is signalled when events are appended.
	Notify() <-chan struct{}
}

// Afterer is the optional ability of a Source to list the pending events
// after a journal seq (journal.Journal has it); without it Pending is
// filtered, which is enough for small outboxes.
type Afterer interface {
	PendingAfter(after uint64, max, maxBytes int) ([]persist.Entry, error)
}

// DefaultAckTimeout is Options.AckTimeout's default (PROTOCOL §5.4).
const DefaultAckTimeout = 30 * time.Second

// The window's defaults: at most this many events, and about this many
// bytes of them, sent and not yet acknowledged by central. Sixteen full
// messages: a central that acknowledges within the time sixteen messages
// take to publish never holds the drain back.
const (
	DefaultWindow      = 16 * customs.MaxEvents
	DefaultWindowBytes = 8 << 20
)

// maxDocBytes is about the most bytes of events one events document carries.
const maxDocBytes = 600 << 10

// Options configure a Deliverer.
type Options struct {
	Site, Gateway string
	Signer        envelope.Signer // the gateway's own key: every events document is signed
	// Connect returns the MQTT options of the events connection (broker,
	// client id, credentials, TLS, timeouts); the Deliverer adds the clean
	// session, the lost-connection handler and turns reconnection off.
	Connect func() *mqtt.ClientOptions
	// Paced: the options Connect returns wait before each dial themselves
	// (internal/failover, which also rotates the brokers), so the
	// Deliverer does not wait again between attempts. They are the
	// Deliverer's own capped, jittered delays otherwise.
	Paced bool
	// AckTimeout: an event sent but not named by central's events_ack
	// within it is sent again, under the same id. 0: DefaultAckTimeout.
	AckTimeout time.Duration
	// Window and WindowBytes bound the events sent ahead of central's
	// events_ack: at most Window events and about WindowBytes of their
	// JSON are sent and not yet acknowledged; the next are sent as acks
	// free room. After the ack timeout only these are sent again. So what
	// the Deliverer keeps of the events in flight is bounded whatever the
	// outbox's size. 0: DefaultWindow, DefaultWindowBytes.
	Window, WindowBytes int
	// Delivered, if set, is called with the number of events that left the
	// outbox after each events_ack.
	Delivered func(n int)
	Log       *slog.Logger // nil: discard
	// Time is the clock the ack timeout and the waits run on; nil: the
	// real one.
	Time tstime.Clock
}

// inFlight is what is kept of one event sent and not yet acknowledged
// by central, by its id: enough to take it out of the outbox and to free
// its room in the window.
type inFlight struct {
	seq  uint64 // journal seq
	size int    // bytes of its JSON
}

// flight is one events document sent: the journal seqs it carried, when,
// and how many of its events central has not acknowledged yet.
type flight struct {
	first, last uint64
	at          int64 // UnixNano
	left        int
}

// Deliverer delivers the outbox. Run starts it.
type Deliverer struct {
	opts Options
	src  Source
	log  *slog.Logger

	online     atomic.Bool
	ackTimeout atomic.Int64

	mu            sync.Mutex
	cursor        uint64              // the highest journal seq sent in this round
	unack         map[string]inFlight // id → the event sent, not acknowledged; at most the window
	inflightBytes int                 // the sum of their sizes
	queue         []flight            // the documents sent with events not acknowledged, oldest first
	oldest        atomic.Int64        // send time of the oldest unacknowledged event, 0: none
	freed         chan struct{}       // signalled when an events_ack frees room in the window
	again         atomic.Bool         // send the outbox again from its oldest event
}

// New makes a Deliverer of src.
func New(opts Options, src Source) *Deliverer {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.Time = tstime.Or(opts.Time)
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.WindowBytes <= 0 {
		opts.WindowBytes = DefaultWindowBytes
	}
	d := &Deliverer{opts: opts, src: src, log: opts.Log, unack: map[string]inFlight{}, freed: make(chan struct{}, 1)}
	d.SetAckTimeout(opts.AckTimeout)
	return d
}

// SetAckTimeout changes the ack timeout in place (0: DefaultAckTimeout).
func (d *Deliverer) SetAckTimeout(t time.Duration) {
	if t <= 0 {
		t = DefaultAckTimeout
	}
	d.ackTimeout.Store(int64(t))
}

// Online reports whether the events connection is up.
func (d *Deliverer) Online() bool { return d.online.Load() }

// RedeliverDue reports whether events were sent and are still waiting for
// central's events_ack.
func (d *Deliverer) RedeliverDue() bool { return d.oldest.Load() != 0 }

// OldestUnacked returns when the oldest event sent and not yet
// acknowledged by central was sent; false: none.
func (d *Deliverer) OldestUnacked() (time.Time, bool) {
	n := d.oldest.Load()
	if n == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// Acked takes the events central names in an events_ack out of the
// outbox. Ids it does not know (sent before a restart, or acknowledged
// twice) are ignored: their events are sent again and acknowledged then.
func (d *Deliverer) Acked(ids []string) {
	d.mu.Lock()
	var entries []persist.Entry
	for _, id := range ids {
		f, ok := d.unack[id]
		if !ok {
			continue
		}
		entries = append(entries, persist.Entry{Seq: f.seq})
		delete(d.unack, id)
		d.inflightBytes -= f.size
		// The document that carried it: documents hold ascending,
		// disjoint seq ranges.
		if i := sort.Search(len(d.queue), func(i int) bool { return d.queue[i].last >= f.seq }); i < len(d.queue) && d.queue[i].first <= f.seq {
			d.queue[i].left--
		}
	}
	d.trimLocked()
	d.mu.Unlock()
	if len(entries) == 0 {
		return
	}
	select {
	case d.freed <- struct{}{}:
	default:
	}
	if err := d.src.Delivered(entries); err != nil {
		// Their room in the window is free and their ids forgotten: the
		// next round starts again from the oldest pending event.
		d.again.Store(true)
		d.log.Error("acknowledged events not taken out of the outbox; they are sent again", "err", err)
		return
	}
	if d.opts.Delivered != nil {
		d.opts.Delivered(len(entries))
	}
}

// trimLocked drops the acknowledged events from the front of the queue and
// publishes the oldest send time.
func (d *Deliverer) trimLocked() {
	i := 0
	for i < len(d.queue) && d.queue[i].left <= 0 {
		i++
	}
	d.queue = d.queue[i:]
	if len(d.queue) == 0 {
		d.queue = nil
		d.oldest.Store(0)
		return
	}
	d.oldest.Store(d.queue[0].at)
}

// restart forgets what was sent: the next round sends the pending events
// again, oldest first, under the same ids, as the window allows — the
// events of the window first, since every event before them was
// acknowledged.
func (d *Deliverer) restart() {
	d.mu.Lock()
	d.cursor = 0
	clear(d.unack)
	d.inflightBytes = 0
	d.queue = nil
	d.oldest.Store(0)
	d.mu.Unlock()
}

// timedOut reports whether the oldest unacknowledged event waited longer
// than the ack timeout.
func (d *Deliverer) timedOut() bool {
	n := d.oldest.Load()
	return n != 0 && d.opts.Time.Now().UnixNano()-n >= d.ackTimeout.Load()
}

// next returns the pending events not sent in this round, as many as the
// window has room for (none when it is full).
func (d *Deliverer) next() ([]persist.Entry, error) {
	d.mu.Lock()
	after := d.cursor
	room := min(customs.MaxEvents, d.opts.Window-len(d.unack))
	roomBytes := min(maxDocBytes, d.opts.WindowBytes-d.inflightBytes)
	d.mu.Unlock()
	if room <= 0 || roomBytes <= 0 {
		return nil, nil
	}
	if a, ok := d.src.(Afterer); ok {
		return a.PendingAfter(after, room, roomBytes)
	}
	all, err := d.src.Pending(room, roomBytes)
	var out []persist.Entry
	for _, e := range all {
		if e.Seq > after {
			out = append(out, e)
		}
	}
	return out, err
}

// sentNow records entries as sent now.
func (d *Deliverer) sentNow(entries []persist.Entry) {
	if len(entries) == 0 {
		return
	}
	now := d.opts.Time.Now().UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	f := flight{first: entries[0].Seq, last: entries[len(entries)-1].Seq, at: now}
	for _, e := range entries {
		var ev struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(e.Data, &ev)
		d.cursor = max(d.cursor, e.Seq)
		if ev.ID == "" {
			continue // central cannot name it; sent again after the timeout
		}
		if _, ok := d.unack[ev.ID]; !ok {
			d.unack[ev.ID] = inFlight{seq: e.Seq, size: len(e.Data)}
			d.inflightBytes += len(e.Data)
			f.left++
		}
	}
	if f.left > 0 {
		d.queue = append(d.queue, f)
	}
	d.trimLocked()
}

// eventsDoc is customs.Events with the events kept as the journal's bytes.
type eventsDoc struct {
	Type    string            `json:"type"`
	Site    string            `json:"site"`
	Gateway string            `json:"gateway"`
	Events  []json.RawMessage `json:"events"`
}

// Run connects and delivers until ctx is done; the broker being down is not
// an error.
//
// A PUBACK is the broker's, not central's: a broker that dies (or restarts
// without persistence) may lose what it acknowledged. So a PUBACK ends one
// send only; an event leaves the outbox when central's events_ack names it
// (Acked), and one not acknowledged within the ack timeout is sent again,
// with the same id, as is every pending event after the connection comes
// back. At most the window (Options.Window, WindowBytes) is sent ahead of
// central's acks. Central drops the copies by id; events are sent in
// decision order.
func (d *Deliverer) Run(ctx context.Context) error {
	// 100ms doubling to 5s, jittered ×0.5–1.5 (capped at 5s).
	bo := backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.5, Time: d.opts.Time}
	wait := func() {
		if !d.opts.Paced {
			bo.Wait(ctx)
		}
	}
	for ctx.Err() == nil {
		lost := make(chan struct{})
		o := d.opts.Connect().SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false)
		prev := o.OnConnectionLost // the failover's, if any
		o.SetConnectionLostHandler(func(c mqtt.Client, err error) {
			if prev != nil {
				prev(c, err)
			}
			close(lost)
		})
		c := mqtt.NewClient(o)
		t := c.Connect()
		if !d.connected(ctx, t) || !c.IsConnected() {
			if ctx.Err() != nil {
				// Still trying the brokers: abandon the attempt.
				go c.Disconnect(0)
				return nil
			}
			d.log.Debug("events connection failed", "err", t.Error())
			wait()
			continue
		}
		bo.Reset()
		d.online.Store(true)
		err := d.drain(ctx, c, lost)
		d.online.Store(false)
		c.Disconnect(100)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("events connection dropped; events stay in the outbox", "err", err)
			wait()
		}
	}
	return nil
}

// connected waits for the connection attempt t: false if it failed or
// ctx ended first. An unpaced attempt is one dial (at most 6s); a paced
// one may try several brokers, each after its delay, and is waited for
// whole, so that no attempt is left running beside the next.
func (d *Deliverer) connected(ctx context.Context, t mqtt.Token) bool {
	if !d.opts.Paced {
		t.WaitTimeout(6 * time.Second)
		return t.Error() == nil
	}
	select {
	case <-t.Done():
		return t.Error() == nil
	case <-ctx.Done():
		return false
	}
}

// drain publishes the outbox, oldest first, until the connection is lost
// or ctx is done: every pending event once, at most the window ahead of
// central's acks, then again those central has not acknowledged within
// the ack timeout (at most the window).
func (d *Deliverer) drain(ctx context.Context, c publisher, lost <-chan struct{}) error {
	topic := customs.GatewayTopic(d.opts.Site, d.opts.Gateway, customs.LeafEvents)
	d.restart()
	for {
		if d.timedOut() {
			d.log.Info("events not acknowledged by central in time; sending them again", "ack_timeout", time.Duration(d.ackTimeout.Load()))
			d.restart()
		}
		if d.again.Swap(false) {
			d.restart()
		}
		entries, err := d.next()
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			if done, err := d.idle(ctx, lost); done || err != nil {
				return err
			}
			continue
		}
		doc := eventsDoc{Type: customs.TypeEvents, Site: d.opts.Site, Gateway: d.opts.Gateway}
		for _, e := range entries {
			doc.Events = append(doc.Events, json.RawMessage(e.Data))
		}
		data, err := d.opts.Signer.Seal(doc)
		if err != nil {
			return err
		}
		d.sentNow(entries)
		if done, err := d.send(ctx, c, topic, data, lost); done || err != nil {
			return err
		}
	}
}

// publisher is what drain needs of the events connection (an mqtt.Client).
type publisher interface {
	Publish(topic string, qos byte, retained bool, payload any) mqtt.Token
}

// idle waits, with nothing to send (the outbox empty or the window full),
// for events, an events_ack freeing room, the connection's loss, the end
// of ctx (done), or a second (for the ack timeout).
func (d *Deliverer) idle(ctx context.Context, lost <-chan struct{}) (done bool, err error) {
	t, tc := d.opts.Time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true, nil
	case <-lost:
		return false, errors.New("connection lost")
	case <-d.src.Notify():
	case <-d.freed:
	case <-tc:
	}
	return false, nil
}

// send publishes one events document and waits for its PUBACK; done: ctx
// ended first.
func (d *Deliverer) send(ctx context.Context, c publisher, topic string, data []byte, lost <-chan struct{}) (done bool, err error) {
	t := c.Publish(topic, 1, false, data)
	timer, timeout := d.opts.Time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-t.Done():
	case <-lost:
		return false, errors.New("connection lost before PUBACK")
	case <-ctx.Done():
		return true, nil
	case <-timeout:
		return false, errors.New("no PUBACK in 30s")
	}
	return false, t.Error()
}
