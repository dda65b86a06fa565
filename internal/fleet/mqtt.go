package fleet

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Broker is the MQTT connection the fleet subscribes on.
type Broker struct {
	URL                string // tcp://host:port or ssl://host:port
	Username, Password string
	TLS                *tls.Config
	// ClientID; empty: cargogate-fleet-{site}-{random}, so that several
	// fleet views (the site's, central's) never take each other's session.
	ClientID string
}

// SetConnected says whether the subscription feeding Handle is up, for a
// caller that feeds it from its own connection (the reference central);
// Run sets it itself.
func (f *Fleet) SetConnected(up bool) { f.connected.Store(up) }

// Run subscribes to the site's statuses and central's head on b until ctx
// is done: a clean session, QoS 1, subscribed again at every connection
// (the broker then sends the retained statuses again). It publishes
// nothing.
func (f *Fleet) Run(ctx context.Context, b Broker) error {
	id := b.ClientID
	if id == "" {
		var r [4]byte
		rand.Read(r[:])
		id = "cargogate-fleet-" + f.opts.Site + "-" + hex.EncodeToString(r[:])
	}
	o := mqtt.NewClientOptions().AddBroker(b.URL).SetClientID(id).SetCleanSession(true).
		SetConnectTimeout(5 * time.Second).SetKeepAlive(10 * time.Second).SetPingTimeout(5 * time.Second).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second).SetMaxReconnectInterval(5 * time.Second)
	if b.Username != "" {
		o.SetUsername(b.Username).SetPassword(b.Password)
	}
	if b.TLS != nil {
		o.SetTLSConfig(b.TLS)
	}
	handler := func(_ mqtt.Client, m mqtt.Message) { f.Handle(m.Topic(), m.Payload(), m.Retained()) }
	o.SetOnConnectHandler(func(c mqtt.Client) {
		subs := map[string]byte{}
		for _, t := range f.Topics() {
			subs[t] = 1
		}
		// Subscribe again until it takes, while connected: a Disconnect
		// here would end paho's automatic reconnection for good.
		for {
			t := c.SubscribeMultiple(subs, handler)
			if t.WaitTimeout(10*time.Second) && t.Error() == nil {
				break
			}
			f.log.Error("fleet: subscribe failed; trying again", "err", t.Error())
			time.Sleep(time.Second)
			if !c.IsConnectionOpen() {
				return // the next connection subscribes
			}
		}
		f.connected.Store(true)
		f.log.Info("fleet: subscribed", "broker", b.URL, "client_id", id)
	}).SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		f.connected.Store(false)
		f.log.Warn("fleet: broker connection lost", "err", err)
	})
	c := mqtt.NewClient(o)
	c.Connect()
	<-ctx.Done()
	c.Disconnect(250)
	f.connected.Store(false)
	return nil
}
