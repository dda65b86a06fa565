package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
)

// acker plays central's side of amendment 3 for the bench: it reads the
// gateway's events messages from the broker and answers each with a
// signed events_ack naming its ids, as the reference central does once
// the events are durable (the bench has no ledger: it acknowledges at once).
func (b *bench) acker(ctx context.Context) error {
	o := mqtt.NewClientOptions().AddBroker(b.broker).SetClientID("cargobench-acker").SetCleanSession(true)
	c := mqtt.NewClient(o)
	if t := c.Connect(); t.Wait() && t.Error() != nil {
		return fmt.Errorf("acker: %w", t.Error())
	}
	ackTopic := customs.GatewayTopic(site, gwName, customs.LeafEventsAck)
	handle := func(_ mqtt.Client, m mqtt.Message) {
		var env struct {
			Payload string `json:"payload"`
		}
		if json.Unmarshal(m.Payload(), &env) != nil {
			return
		}
		raw, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			return
		}
		var doc customs.Events
		if json.Unmarshal(raw, &doc) != nil || len(doc.Events) == 0 {
			return
		}
		ack := customs.EventsAck{Type: customs.TypeEventsAck, Site: site, Gateway: gwName}
		for _, ev := range doc.Events {
			ack.IDs = append(ack.IDs, ev.ID)
		}
		msg, err := b.signer.Seal(ack)
		if err != nil {
			return
		}
		c.Publish(ackTopic, 1, false, msg)
	}
	if t := c.Subscribe(customs.GatewayTopic(site, gwName, customs.LeafEvents), 1, handle); t.Wait() && t.Error() != nil {
		c.Disconnect(0)
		return fmt.Errorf("acker: %w", t.Error())
	}
	<-ctx.Done()
	c.Disconnect(100)
	return nil
}
