// Package outbox delivers the gateway's event outbox to central (PROTOCOL
// §5.4) on its own MQTT connection: clean session, no automatic reconnect,
// so that a lost connection fails the token instead of completing it on a
// re-send, and an event leaves the outbox only after a PUBACK that really
// happened.
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
	// Pending returns the oldest undelivered events, at most max of them
	// and about maxBytes of JSON.
	Pending(max, maxBytes int) ([]persist.Entry, error)
	// Delivered takes events out of the outbox after their PUBACK.
	Delivered(entries []persist.Entry) error
	// Notify is signalled when events are appended.
	Notify() <-chan struct{}
}

// Redeliverer is the optional ability of a Source to put delivered events
// back (journal.Journal has it).
type Redeliverer interface {
	Redeliver(since time.Time) (int, error)
}

// Options configure a Deliverer.
type Options struct {
	Site, Gateway string
	Signer        envelope.Signer // the gateway's own key: every events document is signed
	// Connect returns the MQTT options of the events connection (broker,
	// client id, credentials, TLS, timeouts); the Deliverer adds the clean
	// session, the lost-connection handler and turns reconnection off.
	Connect func() *mqtt.ClientOptions
	// RedeliverWindow: after the connection comes back, the events
	// delivered in this window before it was lost are sent again at once,
	// and those delivered in this window after it came back are sent again
	// when it has passed. 0: 30s; negative: never.
	RedeliverWindow time.Duration
	// Delivered, if set, is called with the number of events that left the
	// outbox after each PUBACK.
	Delivered func(n int)
	Log       *slog.Logger // nil: discard
	// Time is the clock the redelivery window and the waits run on; nil:
	// the real one.
	Time tstime.Clock
}

// Deliverer delivers the outbox. Run starts it.
type Deliverer struct {
	opts Options
	src  Source
	log  *slog.Logger

	online atomic.Bool
	// redeliverAt is when the deliveries since redeliverSince are sent
	// again, 0: none due.
	redeliverAt    atomic.Int64
	redeliverSince atomic.Int64
}

// New makes a Deliverer of src.
func New(opts Options, src Source) *Deliverer {
	if opts.RedeliverWindow == 0 {
		opts.RedeliverWindow = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.Time = tstime.Or(opts.Time)
	return &Deliverer{opts: opts, src: src, log: opts.Log}
}

// Online reports whether the events connection is up.
func (d *Deliverer) Online() bool { return d.online.Load() }

// RedeliverDue reports whether the events delivered since the connection
// came back will be sent again (see Options.RedeliverWindow).
func (d *Deliverer) RedeliverDue() bool { return d.redeliverAt.Load() != 0 }

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
// without persistence) loses central's session and what it had routed to
// it, and until central has subscribed again the new broker routes events
// to no one. So after the connection comes back, Run sends again, with the
// same ids, the events delivered in RedeliverWindow before it was lost,
// and, RedeliverWindow later, those delivered since it came back. Central
// drops the copies by id; events still leave in decision order.
func (d *Deliverer) Run(ctx context.Context) error {
	// 100ms doubling to 5s, jittered ×0.5–1.5 (capped at 5s).
	bo := backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.5, Time: d.opts.Time}
	var lostAt time.Time // when the last events connection ended
	for ctx.Err() == nil {
		lost := make(chan struct{})
		o := d.opts.Connect().SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
			SetConnectionLostHandler(func(mqtt.Client, error) { close(lost) })
		c := mqtt.NewClient(o)
		t := c.Connect()
		t.WaitTimeout(6 * time.Second)
		if t.Error() != nil || !c.IsConnected() {
			d.log.Debug("events connection failed", "err", t.Error())
			bo.Wait(ctx)
			continue
		}
		bo.Reset()
		if !lostAt.IsZero() {
			d.back(lostAt)
		}
		d.online.Store(true)
		err := d.drain(ctx, c, lost)
		d.online.Store(false)
		lostAt = d.opts.Time.Now()
		c.Disconnect(100)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("events connection dropped; events stay in the outbox", "err", err)
			bo.Wait(ctx)
		}
	}
	return nil
}

// back starts the redelivery of a connection back after one lost at lostAt:
// the events delivered in the window before lostAt are put back at once,
// and those delivered from now on are put back when the window has passed
// (drain does it).
func (d *Deliverer) back(lostAt time.Time) {
	d.redeliver(lostAt.Add(-d.opts.RedeliverWindow), "events connection back")
	if d.opts.RedeliverWindow > 0 {
		now := d.opts.Time.Now()
		d.redeliverSince.Store(now.UnixNano())
		d.redeliverAt.Store(now.Add(d.opts.RedeliverWindow).UnixNano())
	}
}

// redeliver puts the events delivered since back into the outbox.
func (d *Deliverer) redeliver(since time.Time, why string) {
	rd, ok := d.src.(Redeliverer)
	if !ok || d.opts.RedeliverWindow <= 0 {
		return
	}
	n, err := rd.Redeliver(since)
	if err != nil {
		d.log.Error("events not put back for redelivery", "err", err)
		return
	}
	if n > 0 {
		d.log.Info("sending delivered events again; central drops the copies it has", "events", n, "since", since, "why", why)
	}
}

// drain publishes the outbox, oldest first, until the connection is lost
// or ctx is done.
func (d *Deliverer) drain(ctx context.Context, c publisher, lost <-chan struct{}) error {
	topic := customs.GatewayTopic(d.opts.Site, d.opts.Gateway, customs.LeafEvents)
	for {
		if due := d.redeliverAt.Load(); due != 0 && d.opts.Time.Now().UnixNano() >= due {
			d.redeliver(time.Unix(0, d.redeliverSince.Load()), "window after reconnection passed")
			d.redeliverAt.Store(0)
		}
		entries, err := d.src.Pending(customs.MaxEvents, 600<<10)
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
		if done, err := d.send(ctx, c, topic, data, lost); done || err != nil {
			return err
		}
		if err := d.src.Delivered(entries); err != nil {
			return err
		}
		if d.opts.Delivered != nil {
			d.opts.Delivered(len(entries))
		}
	}
}

// publisher is what drain needs of the events connection (an mqtt.Client).
type publisher interface {
	Publish(topic string, qos byte, retained bool, payload any) mqtt.Token
}

// idle waits, with the outbox empty, for events, the connection's loss,
// the end of ctx (done), or a second (for the redelivery window).
func (d *Deliverer) idle(ctx context.Context, lost <-chan struct{}) (done bool, err error) {
	t, tc := d.opts.Time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true, nil
	case <-lost:
		return false, errors.New("connection lost")
	case <-d.src.Notify():
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
