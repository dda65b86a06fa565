package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/sync/envelope"
)

// ensureSession makes the broker keep a persistent session for clientID
// subscribed to topic at QoS 1, so what is published meanwhile is queued.
func ensureSession(broker, clientID, topic string) error {
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(false).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("session %s: connect: %v", clientID, t.Error())
	}
	defer c.Disconnect(100)
	if t := c.Subscribe(topic, 1, nil); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("session %s: subscribe: %v", clientID, t.Error())
	}
	return nil
}

// ordersMsg builds one signed orders message of the given orders.
func ordersMsg(signer envelope.Signer, raws [][]byte) ([]byte, error) {
	n := 64
	for _, r := range raws {
		n += len(r) + 1
	}
	p := make([]byte, 0, n)
	p = append(p, `{"type":"orders","site":"`+site+`","orders":[`...)
	for i, r := range raws {
		if i > 0 {
			p = append(p, ',')
		}
		p = append(p, r...)
	}
	p = append(p, "]}"...)
	return signer.SealBytes(p)
}

// publisher publishes releases on the orders topic: msgs messages of perMsg
// orders, seqs from first, subjects from pick. rate (messages/s, 0: as fast
// as the broker takes them) paces it. Messages are signed on every core
// ahead of the one publishing connection. stop ends it early.
type publisher struct {
	broker  string
	signer  envelope.Signer
	msgs    int
	perMsg  int
	first   uint64
	pick    func(r *rand.Rand) customs.Subject
	rate    float64
	stop    <-chan struct{}
	sent    atomic.Int64
	orders  atomic.Int64
	onBatch func(sent int)
}

func (p *publisher) run() error {
	type signed struct {
		i    int
		data []byte
		err  error
	}
	// Paced (target 4's live ingest), it signs only a few messages ahead:
	// 64 of 1,000 orders were 20 MB of the same heap as the gateway's.
	ahead := 64
	if p.rate > 0 {
		ahead = 2
	}
	ch := make(chan signed, ahead)
	var next atomic.Int64
	var wg sync.WaitGroup
	workers := max(1, runtime.GOMAXPROCS(0))
	// Messages are signed in order of index by several workers; the
	// publisher reorders nothing: seqs need not arrive in order (§5).
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w)+1, p.first))
			raws := make([][]byte, 0, p.perMsg)
			for {
				i := int(next.Add(1) - 1)
				if i >= p.msgs {
					return
				}
				raws = raws[:0]
				for j := range p.perMsg {
					_, raw := release(p.first+uint64(i*p.perMsg+j), p.pick(r))
					raws = append(raws, raw)
				}
				data, err := ordersMsg(p.signer, raws)
				select {
				case ch <- signed{i, data, err}:
				case <-p.stop:
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(ch) }()

	o := mqtt.NewClientOptions().AddBroker(p.broker).SetClientID("bench-pub-" + strconv.FormatInt(time.Now().UnixNano(), 36)).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetWriteTimeout(30 * time.Second)
	c := mqtt.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("publisher: connect: %v", t.Error())
	}
	defer c.Disconnect(100)
	topic := customs.OrdersTopic(site)
	var window []mqtt.Token
	start := time.Now()
	for m := range ch {
		if m.err != nil {
			return m.err
		}
		if p.rate > 0 {
			due := start.Add(time.Duration(float64(p.sent.Load()) / p.rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-p.stop:
					return nil
				}
			}
		}
		window = append(window, c.Publish(topic, 1, false, m.data))
		if len(window) >= 2000 {
			if err := waitTokens(window[:1000]); err != nil {
				return err
			}
			window = append(window[:0], window[1000:]...)
		}
		p.sent.Add(1)
		p.orders.Add(int64(p.perMsg))
		if p.onBatch != nil {
			p.onBatch(int(p.sent.Load()))
		}
		select {
		case <-p.stop:
			return waitTokens(window)
		default:
		}
	}
	return waitTokens(window)
}

func waitTokens(ts []mqtt.Token) error {
	for _, t := range ts {
		if !t.WaitTimeout(60*time.Second) || t.Error() != nil {
			return fmt.Errorf("publish: %v", t.Error())
		}
	}
	return nil
}

// bareReceive drains want messages queued for clientID with a subscriber
// that only verifies each envelope, on every core, acking as paho does by
// default (after the handler hands the message off). It returns the rate
// from connect to the last verification.
func (b *bench) bareReceive(clientID, topic string, want int) (float64, error) {
	in := make(chan mqtt.Message, 4096)
	var verified, bad atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range in {
				if _, _, err := b.keys.Open(m.Payload()); err != nil {
					bad.Add(1)
				}
				if verified.Add(1) == int64(want) {
					close(done)
				}
			}
		}()
	}
	handler := func(_ mqtt.Client, m mqtt.Message) { in <- m }
	o := mqtt.NewClientOptions().AddBroker(b.broker).SetClientID(clientID).SetCleanSession(false).
		SetOrderMatters(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(handler)
	c := mqtt.NewClient(o)
	start := time.Now()
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		close(in)
		return 0, fmt.Errorf("bare: connect: %v", t.Error())
	}
	defer func() { c.Disconnect(100); close(in); wg.Wait() }()
	for {
		select {
		case <-done:
			el := time.Since(start)
			if bad.Load() > 0 {
				return 0, fmt.Errorf("bare: %d envelopes did not verify", bad.Load())
			}
			return float64(want) / el.Seconds(), nil
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		case <-time.After(200 * time.Millisecond):
			b.progress(fmt.Sprintf("bare subscriber: verified %d/%d", verified.Load(), want))
		}
	}
}
