package central

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/sync/errgroup"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/failover"
	"github.com/cargogate/cargogate/internal/mqttstore"
	"github.com/cargogate/cargogate/sync/envelope"
)

// disconnectQuiesce is how long Disconnect lets in-flight work finish.
const disconnectQuiesce = 250 // ms

// Run connects to the broker and serves the site until ctx is done: it
// subscribes (in OnConnect, every connection) to the gateways' resync,
// lookup, events and status topics with a persistent session, answers and
// records what arrives, and publishes the retained head after new orders and
// at least every HeadInterval. The paho callbacks only hand messages to one
// processor goroutine, which acknowledges each after handling it (events
// after their commit). Its answers (events_ack, lookup replies, replays)
// are published without waiting for the broker's acknowledgement, at most
// maxRepliesInFlight at a time (sendReply). The connection is retried forever; Run returns nil
// when ctx is done, after disconnecting. Run may be called once.
func (c *Central) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("central: Run called twice")
	}
	bk, err := failover.New(c.opts.brokerURLs(), failover.Options{Conn: "central", Log: c.log})
	if err != nil {
		return fmt.Errorf("central: %w", err)
	}
	c.brokers.Store(bk)
	opts := mqtt.NewClientOptions().
		SetClientID(c.opts.ClientID).
		SetUsername(c.opts.Username).
		SetPassword(c.opts.Password).
		SetCleanSession(false).
		SetStore(mqttstore.New()).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(c.onMessage). // queued session messages arrive before Subscribe returns
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			c.fleet.SetConnected(false)
			c.log.Warn("broker connection lost", "err", err)
		})
	// The brokers in turn, with capped, jittered waits between attempts.
	bk.Apply(opts)
	client := mqtt.NewClient(opts)
	c.cliMu.Lock()
	c.cli = client
	c.cliMu.Unlock()
	c.log.Info("connecting", "brokers", bk.URLs(), "client_id", c.opts.ClientID)
	client.Connect() // retried in the background until connected or Disconnect

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.process(gctx) })
	g.Go(func() error { return c.headLoop(gctx) })
	<-gctx.Done()
	bk.Close()    // a connection attempt does not wait out its delay
	close(c.done) // a handler blocked on a full inbox returns
	err = g.Wait()
	c.replies.Wait() // they return with ctx

	c.cliMu.Lock()
	c.cli = nil
	c.cliMu.Unlock()
	client.Disconnect(disconnectQuiesce)
	c.log.Info("disconnected")
	return err
}

// Broker returns the broker Run is connected to; "": none.
func (c *Central) Broker() string {
	if bk := c.brokers.Load(); bk != nil {
		return bk.Current()
	}
	return ""
}

// WaitConnected returns when Run has connected for the first time, or with
// ctx's error.
func (c *Central) WaitConnected(ctx context.Context) error {
	select {
	case <-c.connected:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Central) subscriptions() map[string]byte {
	m := map[string]byte{}
	for _, leaf := range []string{customs.LeafResync, customs.LeafLookup, customs.LeafEvents, customs.LeafStatus} {
		m[customs.GatewayTopic(c.opts.Site, "+", leaf)] = 1
	}
	return m
}

// onConnect runs in its own goroutine (paho starts it), so it may wait for
// the subscribe token.
func (c *Central) onConnect(client mqtt.Client) {
	tok := client.SubscribeMultiple(c.subscriptions(), c.onMessage)
	if !tok.WaitTimeout(c.opts.PublishTimeout) {
		c.log.Error("subscribe: no answer from the broker", "timeout", c.opts.PublishTimeout)
	} else if err := tok.Error(); err != nil {
		c.log.Error("subscribe", "err", err)
	} else {
		c.fleet.SetConnected(true)
		c.log.Info("connected and subscribed")
	}
	c.connOnce.Do(func() { close(c.connected) })
	c.kickHead() // the retained head may have died with the broker
}

// onMessage is paho's callback: it only hands off, and never waits. paho
// reads the broker's PUBACKs on the goroutine that hands received messages
// to this callback: waiting here for room in a full inbox, while the
// processor waits for a reply place that only a PUBACK frees, stopped
// central until PublishTimeout (TestFullInboxDoesNotStallReplies). A
// message that finds the inbox full is acknowledged and dropped (counted
// in InboxDropped): everything central receives is sent again by its
// gateway until answered (events until their events_ack, a resync until
// its replay_done, status periodically; a lookup left unanswered is a
// STOP).
func (c *Central) onMessage(_ mqtt.Client, m mqtt.Message) {
	select {
	case c.in <- m:
	default:
		m.Ack()
		c.count(func(s *Stats) { s.InboxDropped++ })
		c.log.Warn("inbox full; message dropped, its gateway sends it again", "topic", m.Topic(), "depth", cap(c.in))
	}
}

// process handles received messages one at a time, in arrival order, and
// acknowledges each after handling, rejected ones included (§2); events
// after their ledger commit. It does not wait for its answers' broker
// acknowledgements (sendReply).
func (c *Central) process(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-c.in:
			leaf, reason := c.handle(ctx, m.Topic(), m.Payload())
			if leaf == customs.LeafStatus {
				// The fleet view checks the status on its own (the same
				// keys) and shows it; central's state above is apart.
				c.fleet.Handle(m.Topic(), m.Payload(), m.Retained())
			}
			if ctx.Err() != nil {
				// Possibly interrupted mid-answer: leave it unacknowledged so
				// the broker redelivers it to the next session (events are
				// deduplicated, the rest is idempotent).
				return nil
			}
			m.Ack()
			if h := c.testHookHandled; h != nil {
				h(leaf, reason)
			}
		}
	}
}

// rejected is a message refused as a whole (§2): counted and audited.
type rejected struct {
	reason string
	err    error
}

func (r *rejected) Error() string { return r.reason + ": " + r.err.Error() }

func reject(reason string, format string, a ...any) *rejected {
	return &rejected{reason: reason, err: fmt.Errorf(format, a...)}
}

// handle verifies and dispatches one message. It returns the topic leaf and
// the rejection reason ("" if accepted).
func (c *Central) handle(ctx context.Context, topic string, msg []byte) (leaf, reason string) {
	gw, leaf, err := c.parseTopic(topic)
	if err == nil {
		err = c.dispatch(ctx, gw, leaf, msg)
	}
	var rj *rejected
	switch {
	case err == nil:
		return leaf, ""
	case errors.As(err, &rj):
		c.count(func(s *Stats) { s.Rejected[rj.reason]++ })
		c.log.Warn("message rejected", "audit", true, "topic", topic, "reason", rj.reason, "err", rj.err)
		return leaf, rj.reason
	default:
		c.log.Error("handling message", "topic", topic, "err", err)
		return leaf, ""
	}
}

func (c *Central) parseTopic(topic string) (gw, leaf string, err error) {
	p := strings.SplitN(topic, "/", 6)
	if len(p) != 6 || p[0] != "customs" || p[1] != "v1" || p[2] != c.opts.Site || p[3] != "gw" || !customs.NameRE.MatchString(p[4]) {
		return "", "", reject(RejectWrongTopic, "topic %q: not a gateway topic of site %q", topic, c.opts.Site)
	}
	switch p[5] {
	case customs.LeafResync, customs.LeafLookup, customs.LeafEvents, customs.LeafStatus:
		return p[4], p[5], nil
	}
	return "", "", reject(RejectWrongTopic, "topic %q: central does not take %q", topic, p[5])
}

// leafType is the document type each subscribed leaf carries.
var leafType = map[string]string{
	customs.LeafResync: customs.TypeResync,
	customs.LeafLookup: customs.TypeLookup,
	customs.LeafEvents: customs.TypeEvents,
	customs.LeafStatus: customs.TypeStatus,
}

func (c *Central) dispatch(ctx context.Context, gw, leaf string, msg []byte) error {
	c.keysMu.RLock()
	payload, kid, err := c.keys.Open(msg)
	c.keysMu.RUnlock()
	if err != nil {
		return reject(envelope.Reason(err), "%w", err)
	}
	if want := c.opts.Site + "/" + gw; kid != want {
		return reject(RejectWrongKid, "signed by %q on the topic of %q", kid, want)
	}
	probe, err := customs.ReadProbe(payload)
	if err != nil {
		return reject(RejectBadDocument, "%w", err)
	}
	if probe.Type != leafType[leaf] {
		return reject(RejectWrongType, "type %q on a %s topic", probe.Type, leaf)
	}
	if probe.Site != c.opts.Site {
		return reject(RejectWrongSite, "site %q", probe.Site)
	}
	switch leaf {
	case customs.LeafResync:
		var r customs.Resync
		if err := decodeDoc(payload, &r, gw, &r.Gateway); err != nil {
			return err
		}
		return c.answerResync(ctx, gw, r)
	case customs.LeafLookup:
		var l customs.Lookup
		if err := decodeDoc(payload, &l, gw, &l.Gateway); err != nil {
			return err
		}
		if err := checkRequestID(l.RequestID); err != nil {
			return err
		}
		if err := l.Subject.Validate(); err != nil {
			return reject(RejectBadDocument, "lookup: %w", err)
		}
		return c.answerLookup(ctx, gw, l)
	case customs.LeafEvents:
		var e customs.Events
		if err := decodeDoc(payload, &e, gw, &e.Gateway); err != nil {
			return err
		}
		return c.recordEvents(ctx, gw, e)
	default: // status
		var s customs.Status
		if err := decodeDoc(payload, &s, gw, &s.Gateway); err != nil {
			return err
		}
		c.statusMu.Lock()
		c.status[gw] = s
		c.statusMu.Unlock()
		c.log.Debug("gateway status", "gateway", gw, "state", s.State, "applied_seq", s.AppliedSeq, "head_seq", s.HeadSeq, "outbox", s.Outbox)
		return nil
	}
}

// decodeDoc decodes payload into doc (unknown fields ignored, §3) and checks
// that the document's gateway is the topic's.
func decodeDoc(payload []byte, doc any, gw string, docGW *string) error {
	if err := json.Unmarshal(payload, doc); err != nil {
		return reject(RejectBadDocument, "%w", err)
	}
	if *docGW != gw {
		return reject(RejectWrongGateway, "gateway %q on the topic of %q", *docGW, gw)
	}
	return nil
}

func checkRequestID(id string) error {
	if id == "" || len(id) > maxRequestID {
		return reject(RejectBadDocument, "request_id: must be 1..%d bytes", maxRequestID)
	}
	return nil
}

// answerResync replays from_seq..to_seq (0: up to head; clamped to the head)
// on the gateway's replay topic in ascending seq, then sends replay_done with
// the last seq covered. The replay messages go out without waiting for their
// acknowledgements; replay_done goes out, from a goroutine, only once the
// broker acknowledged every one of them. If one fails, replay_done is not
// sent: the gateway asks again after its resync_timeout.
func (c *Central) answerResync(ctx context.Context, gw string, r customs.Resync) error {
	if err := checkRequestID(r.RequestID); err != nil {
		return err
	}
	head := c.led.head()
	upTo := r.ToSeq
	if upTo == 0 || upTo > head {
		upTo = head
	}
	from := max(r.FromSeq, 1)
	log := c.log.With("gateway", gw, "request_id", r.RequestID)
	log.Info("resync", "from_seq", r.FromSeq, "to_seq", r.ToSeq, "up_to", upTo)
	topic := customs.GatewayTopic(c.opts.Site, gw, customs.LeafReplay)
	var sent []*reply
	for from <= upTo {
		raws, err := c.led.orderRange(from, upTo, c.opts.ReplayOrdersPerMessage)
		if err != nil {
			return fmt.Errorf("resync: %w", err)
		}
		if len(raws) == 0 {
			return fmt.Errorf("resync: ledger has no seq %d below head %d", from, head)
		}
		msgs, err := c.sealOrders(r.RequestID, raws, c.opts.ReplayOrdersPerMessage)
		if err != nil {
			return fmt.Errorf("resync: %w", err)
		}
		for _, m := range msgs {
			sent = append(sent, c.sendReply(ctx, topic, m, nil))
		}
		from += uint64(len(raws))
	}
	done, err := c.opts.Signer.Seal(customs.ReplayDone{Type: customs.TypeReplayDone, Site: c.opts.Site, RequestID: r.RequestID, UpTo: upTo})
	if err != nil {
		return err
	}
	c.replies.Add(1)
	go func() {
		defer c.replies.Done()
		for i, rp := range sent {
			if err := rp.wait(); err != nil {
				log.Warn("replay interrupted", "message", i, "err", err)
				return
			}
		}
		c.sendReply(ctx, topic, done, func(err error) {
			if err != nil {
				log.Warn("replay_done not sent", "err", err)
				return
			}
			c.count(func(s *Stats) { s.ResyncsAnswered++ })
		})
	}()
	return nil
}

// answerLookup sends, in one orders message, every order on the subject, on
// the containers it was ever linked into, and on its contents (see
// index.related). If they do not fit in one message it sends none, and the
// gateway decides as if central knew nothing (STOP): a partial answer could
// leave out the hold that matters.
func (c *Central) answerLookup(ctx context.Context, gw string, l customs.Lookup) error {
	seqs := c.idx.related(l.Subject)
	raws, err := c.led.ordersBySeq(seqs)
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	log := c.log.With("gateway", gw, "request_id", l.RequestID, "subject", l.Subject.String())
	msgs, err := c.sealOrders(l.RequestID, raws, customs.MaxOrders)
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	if len(msgs) != 1 {
		log.Warn("lookup answer too large for one message; answering with no orders", "orders", len(raws))
		if msgs, err = c.sealOrders(l.RequestID, nil, 1); err != nil {
			return fmt.Errorf("lookup: %w", err)
		}
	}
	log.Info("lookup", "orders", len(raws))
	c.sendReply(ctx, customs.GatewayTopic(c.opts.Site, gw, customs.LeafLookupReply), msgs[0], func(err error) {
		if err != nil {
			log.Warn("lookup reply not sent", "err", err)
			return
		}
		c.count(func(s *Stats) { s.LookupsAnswered++ })
	})
	return nil
}

// recordEvents stores the events not seen before (dedupe by id) in one
// commit, then acknowledges every id of the message, duplicates included,
// with an events_ack on the gateway's events/ack topic (PROTOCOL amendment
// 3). A message with more than customs.MaxEvents events, or an event
// without a usable id, is rejected whole.
func (c *Central) recordEvents(ctx context.Context, gw string, e customs.Events) error {
	if len(e.Events) > customs.MaxEvents {
		return reject(RejectTooMany, "%d events, at most %d", len(e.Events), customs.MaxEvents)
	}
	for i, ev := range e.Events {
		if ev.ID == "" || len(ev.ID) > maxEventID {
			return reject(RejectBadDocument, "events[%d]: id must be 1..%d bytes", i, maxEventID)
		}
	}
	added, dups, err := c.led.addEvents(gw, e.Events, c.opts.Now())
	if err != nil {
		return err
	}
	c.count(func(s *Stats) { s.DuplicatesDropped += uint64(dups) })
	c.log.Debug("events", "gateway", gw, "added", added, "duplicates", dups)
	if len(e.Events) == 0 {
		return nil
	}
	ack := customs.EventsAck{Type: customs.TypeEventsAck, Site: c.opts.Site, Gateway: gw, IDs: make([]string, 0, len(e.Events))}
	for _, ev := range e.Events {
		ack.IDs = append(ack.IDs, ev.ID)
	}
	msg, err := c.opts.Signer.Seal(ack)
	if err != nil {
		return err
	}
	// Sent after the commit above, without waiting for the broker. Not
	// acknowledged (no connection): the gateway sends the events again
	// after its ack_timeout, and they are acknowledged then.
	c.sendReply(ctx, customs.GatewayTopic(c.opts.Site, gw, customs.LeafEventsAck), msg, func(err error) {
		if err != nil {
			c.log.Debug("events_ack not published", "gateway", gw, "err", err)
		}
	})
	return nil
}

// kickHead asks headLoop to publish the head soon; kicks coalesce.
func (c *Central) kickHead() {
	select {
	case c.headKick <- struct{}{}:
	default:
	}
}

// headLoop publishes the retained head when kicked and every HeadInterval.
func (c *Central) headLoop(ctx context.Context) error {
	t := time.NewTicker(c.opts.HeadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.headKick:
		case <-t.C:
		}
		c.publishHead(ctx)
	}
}

func (c *Central) publishHead(ctx context.Context) {
	msg, err := c.opts.Signer.Seal(customs.Head{Type: customs.TypeHead, Site: c.opts.Site, Seq: c.led.head(), At: c.opts.Now().UTC()})
	if err != nil {
		c.log.Error("head", "err", err)
		return
	}
	if err := c.publish(ctx, customs.HeadTopic(c.opts.Site), msg, true); err != nil {
		c.log.Debug("head not published", "err", err)
	}
}

// PublishRaw publishes payload as it is on topic (QoS 1, not retained) and
// waits for the broker's acknowledgement. It is the forge for demos and
// tests: messages signed by an untrusted key, malformed envelopes, replays.
func (c *Central) PublishRaw(topic string, payload []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.PublishTimeout)
	defer cancel()
	return c.publish(ctx, topic, payload, false)
}

// publish sends one QoS 1 message and waits for its token, at most
// PublishTimeout or until ctx is done. Never called from a paho callback.
func (c *Central) publish(ctx context.Context, topic string, payload []byte, retained bool) (err error) {
	defer func() {
		if err != nil {
			c.count(func(s *Stats) { s.PublishErrors++ })
		}
	}()
	c.cliMu.RLock()
	client := c.cli
	c.cliMu.RUnlock()
	if client == nil || !client.IsConnectionOpen() {
		return ErrNotConnected
	}
	tok := client.Publish(topic, 1, retained, payload)
	t := time.NewTimer(c.opts.PublishTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish %s: %w", topic, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("publish %s: no acknowledgement within %v", topic, c.opts.PublishTimeout)
	case <-ctx.Done():
		return fmt.Errorf("publish %s: %w", topic, ctx.Err())
	}
}
