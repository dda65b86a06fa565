package link

import (
	"context"
	"errors"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/mqttstore"
)

// conn is what the control loop and publish need of the order connection
// (an mqtt.Client).
type conn interface {
	IsConnected() bool
	Connect() mqtt.Token
	Publish(topic string, qos byte, retained bool, payload any) mqtt.Token
}

var _ conn = mqtt.Client(nil)

// clientOptions are the MQTT options both connections share: the client
// id, credentials, TLS and the timeouts. The order connection adds its
// session and handlers (orderOptions), the events connection its own
// (sync/outbox); each connection's failover.Brokers (Apply) adds the
// brokers and the waits between attempts.
func (l *Link) clientOptions(clientID string) *mqtt.ClientOptions {
	// MQTT 3.1.1 only (PROTOCOL.md). Left unset, paho falls back to MQTT
	// 3.1 after a failed handshake and keeps offering 3.1 to the next
	// brokers of the list in the same attempt; NATS refuses 3.1, so the
	// events connection (a new client per attempt) never failed over past
	// a dead node behind a proxy (sync/site TestEventsFailOverPastADeadNode).
	o := mqtt.NewClientOptions().SetClientID(clientID).SetProtocolVersion(4).
		SetConnectTimeout(5 * time.Second).SetKeepAlive(10 * time.Second).SetPingTimeout(5 * time.Second)
	if l.opts.Username != "" {
		o.SetUsername(l.opts.Username).SetPassword(l.opts.Password)
	}
	if l.opts.TLS != nil {
		o.SetTLSConfig(l.opts.TLS)
	}
	return o
}

// orderOptions are the order connection's options: a persistent session
// retried by paho over the broker list (l.orders), messages handed off in order and acked by the link
// only after their commit, and the offline status as the will. The
// session store hands out copies (mqttstore): with paho's own, a status
// published as the connection comes up races with resume().
func (l *Link) orderOptions(will []byte) *mqtt.ClientOptions {
	o := l.clientOptions(l.clientID()).
		SetCleanSession(false).SetStore(mqttstore.New()).SetAutoReconnect(true).SetConnectRetry(true).
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
	// Apply wraps the two handlers above: it records the broker and
	// rotates the list.
	return l.orders.Apply(o)
}

func (l *Link) clientID() string { return "cargogate-" + l.opts.Site + "-" + l.opts.Gateway }

func (l *Link) subscribe(c mqtt.Client) {
	subs := map[string]byte{
		customs.OrdersTopic(l.opts.Site): 1,
		customs.HeadTopic(l.opts.Site):   1,
		l.topic(customs.LeafReplay):      1,
		l.topic(customs.LeafLookupReply): 1,
		l.topic(customs.LeafEventsAck):   1,
	}
	t := c.SubscribeMultiple(subs, l.handoff)
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		l.log.Error("subscribe failed; reconnecting", "err", t.Error())
		// Without subscriptions the link would sit deaf: drop the
		// connection. Disconnect ends paho's automatic reconnection, so
		// the control part connects again (see its watch on IsConnected).
		go c.Disconnect(0)
		return
	}
	l.setOnline(true)
	l.log.Info("link to broker up", "broker", l.orders.Current(), "client_id", l.clientID())
	select {
	case l.connected <- struct{}{}:
	default:
	}
}

func (l *Link) setOnline(v bool) {
	if l.online.Swap(v) != v {
		l.since.Store(l.time.Now().UnixNano())
		l.kickStatus()
	}
}

// handoff is the only thing paho's router runs: it never blocks on anything
// but the pipeline's buffer.
func (l *Link) handoff(_ mqtt.Client, m mqtt.Message) { l.in <- m }

// publish signs doc and publishes it on the order connection, waiting for
// the token outside any paho callback.
func (l *Link) publish(ctx context.Context, topic string, doc any, retained bool) error {
	data, err := l.opts.Signer.Seal(doc)
	if err != nil {
		return err
	}
	t := l.conn.Publish(topic, 1, retained, data)
	timer, timeout := l.time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-timeout:
		return errors.New("publish timed out")
	}
}
