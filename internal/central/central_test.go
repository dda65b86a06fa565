package central

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/testenv"
	"github.com/cargogate/cargogate/sync/envelope"
)

const (
	site    = "PVG-W"
	waitFor = 10 * time.Second // bound on every wait for the broker
)

func key(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

var (
	centralSigner = envelope.Signer{Kid: "central-test", Key: key(1)}
	centralRing   = envelope.Keyring{centralSigner.Kid: centralSigner.Public()}
	g07           = envelope.Signer{Kid: site + "/g07", Key: key(7)}
	g08           = envelope.Signer{Kid: site + "/g08", Key: key(8)}
)

type harness struct {
	c       *Central
	handled chan string // "leaf:reason" per received message
}

// start makes a Central on a fresh ledger; with a broker URL it also runs it
// until the test ends.
func start(t *testing.T, broker string, mod func(*Options)) *harness {
	t.Helper()
	opts := Options{
		Site:        site,
		Broker:      broker,
		Signer:      centralSigner,
		GatewayKeys: envelope.Keyring{g07.Kid: g07.Public()},
		DBPath:      filepath.Join(t.TempDir(), "ledger.db"),
		Logger:      testLogger(t),
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{c: c, handled: make(chan string, 100)}
	c.testHookHandled = func(leaf, reason string) { h.handled <- leaf + ":" + reason }
	if broker == "" {
		t.Cleanup(func() { c.Close() })
		return h
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		c.Close()
	})
	wctx, wcancel := context.WithTimeout(ctx, waitFor)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		t.Fatalf("central did not connect: %v", err)
	}
	return h
}

func (h *harness) expectHandled(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-h.handled:
		if got != want {
			t.Fatalf("handled %q, want %q", got, want)
		}
	case <-time.After(waitFor):
		t.Fatalf("no message handled within %v (want %q)", waitFor, want)
	}
}

// peer is a plain paho client standing in for a gateway or an observer.
type peer struct {
	client mqtt.Client
	msgs   chan mqtt.Message
}

func dial(t *testing.T, broker, id string, topics ...string) *peer {
	t.Helper()
	p := &peer{msgs: make(chan mqtt.Message, 1000)}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { p.msgs <- m })
	p.client = mqtt.NewClient(opts)
	if tok := p.client.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("peer connect: %v", tok.Error())
	}
	t.Cleanup(func() { p.client.Disconnect(50) })
	if len(topics) > 0 {
		filters := map[string]byte{}
		for _, tp := range topics {
			filters[tp] = 1
		}
		tok := p.client.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) { p.msgs <- m })
		if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatalf("peer subscribe: %v", tok.Error())
		}
	}
	return p
}

func (p *peer) publish(t *testing.T, topic string, payload []byte, retained bool) {
	t.Helper()
	tok := p.client.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func (p *peer) send(t *testing.T, s envelope.Signer, topic string, doc any) {
	t.Helper()
	msg, err := s.Seal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p.publish(t, topic, msg, false)
}

// next returns the next message's topic and verified payload decoded as a
// probe plus raw payload.
func (p *peer) next(t *testing.T) (string, []byte) {
	t.Helper()
	select {
	case m := <-p.msgs:
		payload, _, err := centralRing.Open(m.Payload())
		if err != nil {
			t.Fatalf("message on %s does not open with central's key: %v", m.Topic(), err)
		}
		return m.Topic(), payload
	case <-time.After(waitFor):
		t.Fatalf("no message within %v", waitFor)
	}
	return "", nil
}

func parcelOrders(n int) []customs.Order {
	out := make([]customs.Order, n)
	for i := range out {
		out[i] = customs.Order{Action: customs.Release, Subject: customs.Subject{Kind: customs.Parcel, ID: ParcelID(i + 1)}}
	}
	return out
}

func TestIssuePublishesOrdersAndHead(t *testing.T) {
	broker, _ := testenv.StartMosquitto(t)
	h := start(t, broker, func(o *Options) { o.MaxOrdersPerMessage = 1000 })
	obs := dial(t, broker, "observer", customs.OrdersTopic(site))

	first, last, err := h.c.Issue(context.Background(), parcelOrders(2500))
	if err != nil || first != 1 || last != 2500 {
		t.Fatalf("Issue = %d, %d, %v; want 1, 2500", first, last, err)
	}
	var want uint64 = 1
	for msgs := 0; want <= 2500; msgs++ {
		topic, payload := obs.next(t)
		var doc customs.Orders
		if err := json.Unmarshal(payload, &doc); err != nil {
			t.Fatal(err)
		}
		if topic != customs.OrdersTopic(site) || doc.Type != customs.TypeOrders || doc.Site != site || doc.RequestID != "" {
			t.Fatalf("message %d: topic %s type %q site %q request_id %q", msgs, topic, doc.Type, doc.Site, doc.RequestID)
		}
		if len(doc.Orders) == 0 || len(doc.Orders) > 1000 {
			t.Fatalf("message %d: %d orders", msgs, len(doc.Orders))
		}
		for _, o := range doc.Orders {
			if o.Seq != want {
				t.Fatalf("seq %d, want %d", o.Seq, want)
			}
			if err := o.Validate(true); err != nil || o.IssuedAt.IsZero() {
				t.Fatalf("seq %d: %v (issued_at %v)", o.Seq, err, o.IssuedAt)
			}
			want++
		}
	}

	// The retained head reaches a late subscriber; the first retained copy
	// may predate the orders, so read until it catches up.
	late := dial(t, broker, "late", customs.HeadTopic(site))
	for {
		_, payload := late.next(t)
		var head customs.Head
		if err := json.Unmarshal(payload, &head); err != nil || head.Type != customs.TypeHead || head.Site != site {
			t.Fatalf("head %s: %v", payload, err)
		}
		if head.Seq == 2500 {
			break
		}
		if head.Seq > 2500 {
			t.Fatalf("head %d beyond the last seq", head.Seq)
		}
	}
	if got := h.c.Stats().OrdersIssued; got != 2500 {
		t.Errorf("OrdersIssued = %d", got)
	}
}

func TestIssueRejectsInvalidAtomically(t *testing.T) {
	h := start(t, "", nil)
	orders := parcelOrders(3)
	orders[1].Subject.ID = "rr123" // not normalized
	_, _, err := h.c.Issue(context.Background(), orders)
	if !errors.Is(err, ErrInvalidOrder) || !strings.Contains(err.Error(), "orders[1]") {
		t.Fatalf("err = %v, want ErrInvalidOrder naming orders[1]", err)
	}
	withSeq := parcelOrders(1)
	withSeq[0].Seq = 9
	if _, _, err := h.c.Issue(context.Background(), withSeq); !errors.Is(err, ErrInvalidOrder) {
		t.Fatalf("order with seq: err = %v", err)
	}
	if _, _, err := h.c.Issue(context.Background(), nil); !errors.Is(err, ErrNoOrders) {
		t.Fatalf("no orders: err = %v", err)
	}
	// A link too large for any 1 MiB message can never reach a gateway.
	big := customs.Order{Action: customs.Link, Subject: customs.Subject{Kind: customs.ULD, ID: "AKE12345MU"}}
	for i := 0; i < customs.MaxChildren; i++ {
		big.Children = append(big.Children, customs.Subject{Kind: customs.Bag, ID: fmt.Sprintf("%064d", i)})
	}
	if _, _, err := h.c.Issue(context.Background(), []customs.Order{big}); !errors.Is(err, ErrInvalidOrder) {
		t.Fatalf("oversized link: err = %v", err)
	}
	if h.c.Head() != 0 {
		t.Fatalf("head = %d after rejected issues", h.c.Head())
	}
}

func TestResyncReplay(t *testing.T) {
	broker, _ := testenv.StartMosquitto(t)
	h := start(t, broker, func(o *Options) { o.MaxOrdersPerMessage = 10 })
	if _, _, err := h.c.Issue(context.Background(), parcelOrders(25)); err != nil {
		t.Fatal(err)
	}
	gw := dial(t, broker, "cargogate-PVG-W-g07", customs.GatewayTopic(site, "g07", customs.LeafReplay))

	for _, tt := range []struct {
		from, to, wantFrom, wantUpTo uint64
	}{
		{5, 17, 5, 17},
		{20, 0, 20, 25},  // to_seq 0: up to head
		{0, 3, 1, 3},     // from 0 is from 1
		{24, 99, 24, 25}, // beyond head: clamped
		{26, 0, 26, 25},  // nothing to replay
	} {
		reqID := fmt.Sprintf("r-%d-%d", tt.from, tt.to)
		gw.send(t, g07, customs.GatewayTopic(site, "g07", customs.LeafResync), customs.Resync{
			Type: customs.TypeResync, Site: site, Gateway: "g07", RequestID: reqID, FromSeq: tt.from, ToSeq: tt.to,
		})
		want := tt.wantFrom
		for done := false; !done; {
			topic, payload := gw.next(t)
			if topic != customs.GatewayTopic(site, "g07", customs.LeafReplay) {
				t.Fatalf("topic %s", topic)
			}
			probe, _ := customs.ReadProbe(payload)
			switch probe.Type {
			case customs.TypeOrders:
				var doc customs.Orders
				_ = json.Unmarshal(payload, &doc)
				if doc.RequestID != reqID || len(doc.Orders) > 10 {
					t.Fatalf("%s: request_id %q, %d orders", reqID, doc.RequestID, len(doc.Orders))
				}
				for _, o := range doc.Orders {
					if o.Seq != want {
						t.Fatalf("%s: seq %d, want %d", reqID, o.Seq, want)
					}
					want++
				}
			case customs.TypeReplayDone:
				var rd customs.ReplayDone
				_ = json.Unmarshal(payload, &rd)
				if rd.RequestID != reqID || rd.UpTo != tt.wantUpTo || rd.Site != site {
					t.Fatalf("%s: replay_done %+v, want up_to %d", reqID, rd, tt.wantUpTo)
				}
				if want <= tt.wantUpTo {
					t.Fatalf("%s: replay_done before seq %d", reqID, want)
				}
				done = true
			default:
				t.Fatalf("%s: unexpected %q", reqID, probe.Type)
			}
		}
		h.expectHandled(t, "resync:")
	}
}

func TestLookup(t *testing.T) {
	broker, _ := testenv.StartMosquitto(t)
	h := start(t, broker, nil)
	parcel := customs.Subject{Kind: customs.Parcel, ID: ParcelID(1)}
	sibling := customs.Subject{Kind: customs.Parcel, ID: ParcelID(2)}
	other := customs.Subject{Kind: customs.Parcel, ID: ParcelID(3)}
	bag := customs.Subject{Kind: customs.Bag, ID: SSCC(1)}
	uld := customs.Subject{Kind: customs.ULD, ID: ULDID(1)}
	orders := []customs.Order{
		{Action: customs.Release, Subject: parcel},                                         // 1
		{Action: customs.Release, Subject: other},                                          // 2
		{Action: customs.Link, Subject: bag, Children: []customs.Subject{parcel, sibling}}, // 3
		{Action: customs.Link, Subject: uld, Children: []customs.Subject{bag}},             // 4
		{Action: customs.Hold, Subject: uld, HoldID: "h1", Reason: "inspection"},           // 5
		{Action: customs.Hold, Subject: sibling, HoldID: "h2", Reason: "detention"},        // 6
		{Action: customs.Release, Subject: other},                                          // 7
	}
	if _, _, err := h.c.Issue(context.Background(), orders); err != nil {
		t.Fatal(err)
	}
	reply := customs.GatewayTopic(site, "g07", customs.LeafLookupReply)
	gw := dial(t, broker, "gw", reply)
	for _, tt := range []struct {
		subject customs.Subject
		want    []uint64
	}{
		{parcel, []uint64{1, 3, 4, 5}},                                 // itself, its bag, the bag's ULD
		{bag, []uint64{1, 3, 4, 5, 6}},                                 // and its contents' orders
		{other, []uint64{2, 7}},                                        // unrelated to the rest
		{customs.Subject{Kind: customs.Parcel, ID: ParcelID(99)}, nil}, // unknown: empty
	} {
		reqID := "l-" + tt.subject.ID
		gw.send(t, g07, customs.GatewayTopic(site, "g07", customs.LeafLookup), customs.Lookup{
			Type: customs.TypeLookup, Site: site, Gateway: "g07", RequestID: reqID, Subject: tt.subject,
		})
		topic, payload := gw.next(t)
		var doc customs.Orders
		if err := json.Unmarshal(payload, &doc); err != nil || topic != reply {
			t.Fatalf("%s: %s %v", topic, payload, err)
		}
		if doc.Type != customs.TypeOrders || doc.RequestID != reqID || doc.Orders == nil && !bytes.Contains(payload, []byte(`"orders":[]`)) {
			t.Fatalf("lookup %s: %s", tt.subject, payload)
		}
		var got []uint64
		for _, o := range doc.Orders {
			got = append(got, o.Seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("lookup %s: seqs %v, want %v", tt.subject, got, tt.want)
		}
		h.expectHandled(t, "lookup:")
	}
}

func scanEvent(id string) customs.Event {
	applied := uint64(3)
	off := false
	return customs.Event{ID: id, Kind: customs.EventScan, Station: "gate-3", Role: "gate", At: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC),
		Code: "]C0" + ParcelID(1), Subject: &customs.Subject{Kind: customs.Parcel, ID: ParcelID(1)},
		Decision: customs.Pass, Reason: customs.ReasonReleased, BasisSeq: 1, AppliedSeq: &applied, Offline: &off}
}

func TestEventsAndRejections(t *testing.T) {
	broker, _ := testenv.StartMosquitto(t)
	h := start(t, broker, nil)
	gw := dial(t, broker, "cargogate-PVG-W-g07-pub")
	topic := customs.GatewayTopic(site, "g07", customs.LeafEvents)
	events := func(gateway string, ids ...string) customs.Events {
		e := customs.Events{Type: customs.TypeEvents, Site: site, Gateway: gateway}
		for _, id := range ids {
			e.Events = append(e.Events, scanEvent(id))
		}
		return e
	}

	gw.send(t, g07, topic, events("g07", "E1", "E2"))
	h.expectHandled(t, "events:")
	gw.send(t, g07, topic, events("g07", "E2", "E3", "E3")) // redelivery and a repeat within
	h.expectHandled(t, "events:")

	rogue := envelope.Signer{Kid: g07.Kid, Key: key(99)}
	stranger := envelope.Signer{Kid: site + "/g99", Key: key(99)}
	for _, tt := range []struct {
		name   string
		send   func()
		reason string
	}{
		{"forged signature", func() { gw.send(t, rogue, topic, events("g07", "F1")) }, envelope.ReasonBadSignature},
		{"unknown kid", func() {
			gw.send(t, stranger, customs.GatewayTopic(site, "g99", customs.LeafEvents), events("g99", "F2"))
		}, envelope.ReasonUnknownKid},
		{"other gateway's key", func() {
			h.c.AddGatewayKey(g08.Kid, g08.Public())
			gw.send(t, g08, topic, events("g07", "F3"))
		}, RejectWrongKid},
		{"gateway differs from topic", func() { gw.send(t, g07, topic, events("g08", "F4")) }, RejectWrongGateway},
		{"other site", func() {
			e := events("g07", "F5")
			e.Site = "PEK-E"
			gw.send(t, g07, topic, e)
		}, RejectWrongSite},
		{"wrong type", func() {
			gw.send(t, g07, topic, customs.Status{Type: customs.TypeStatus, Site: site, Gateway: "g07"})
		}, RejectWrongType},
		{"not an envelope", func() { gw.publish(t, topic, []byte("hello"), false) }, envelope.ReasonMalformed},
		{"event without id", func() { gw.send(t, g07, topic, events("g07", "")) }, RejectBadDocument},
		{"too many events", func() {
			ids := make([]string, customs.MaxEvents+1)
			for i := range ids {
				ids[i] = fmt.Sprintf("M%d", i)
			}
			gw.send(t, g07, topic, events("g07", ids...))
		}, RejectTooMany},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.send()
			h.expectHandled(t, "events:"+tt.reason)
		})
	}

	got := h.c.Events("g07")
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	if fmt.Sprint(ids) != "[E1 E2 E3]" {
		t.Fatalf("events = %v, want [E1 E2 E3]", ids)
	}
	if got[0].Subject == nil || *got[0].AppliedSeq != 3 {
		t.Errorf("event fields lost: %+v", got[0])
	}
	st := h.c.Stats()
	if st.EventsReceived != 3 || st.DuplicatesDropped != 2 {
		t.Errorf("stats: received %d, duplicates %d; want 3, 2", st.EventsReceived, st.DuplicatesDropped)
	}
	for _, r := range []string{envelope.ReasonBadSignature, envelope.ReasonUnknownKid, RejectWrongKid, RejectWrongGateway, RejectWrongSite, RejectWrongType, envelope.ReasonMalformed, RejectBadDocument, RejectTooMany} {
		if st.Rejected[r] != 1 {
			t.Errorf("rejected[%s] = %d, want 1", r, st.Rejected[r])
		}
	}
	if len(h.c.Events("g99")) != 0 || len(h.c.Events("")) != 3 {
		t.Error("rejected events were stored")
	}
}

func TestStatus(t *testing.T) {
	broker, _ := testenv.StartMosquitto(t)
	h := start(t, broker, nil)
	gw := dial(t, broker, "gw")
	st := customs.Status{Type: customs.TypeStatus, Site: site, Gateway: "g07", State: "online", AppliedSeq: 10, HeadSeq: 12, Outbox: 3, Version: "test"}
	msg, _ := g07.Seal(st)
	gw.publish(t, customs.GatewayTopic(site, "g07", customs.LeafStatus), msg, true)
	h.expectHandled(t, "status:")
	got, ok := h.c.GatewayStatus("g07")
	if !ok || got.AppliedSeq != 10 || got.State != "online" || got.Outbox != 3 {
		t.Fatalf("status = %+v, %v", got, ok)
	}
	if _, ok := h.c.GatewayStatus("g08"); ok {
		t.Fatal("status of a silent gateway")
	}
}

func TestPublishRawForgesOrders(t *testing.T) {
	broker, _ := testenv.StartMosquitto(t)
	h := start(t, broker, nil)
	obs := dial(t, broker, "observer", customs.OrdersTopic(site))
	forged, _ := envelope.Signer{Kid: centralSigner.Kid, Key: key(66)}.Seal(customs.Orders{Type: customs.TypeOrders, Site: site, Orders: []customs.Order{}})
	if err := h.c.PublishRaw(customs.OrdersTopic(site), forged); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-obs.msgs:
		if _, _, err := centralRing.Open(m.Payload()); !errors.Is(err, envelope.ErrBadSignature) {
			t.Fatalf("forged message opened with err %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("forged message not delivered")
	}
}

func TestLedgerSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	open := func(s string) (*Central, error) {
		return New(Options{Site: s, Signer: centralSigner, DBPath: path, Logger: testLogger(t)})
	}
	c, err := open(site)
	if err != nil {
		t.Fatal(err)
	}
	// No broker: Issue commits and logs the failed publish.
	if first, last, err := c.Issue(context.Background(), parcelOrders(3)); err != nil || first != 1 || last != 3 {
		t.Fatalf("Issue = %d, %d, %v", first, last, err)
	}
	if _, _, err := c.led.addEvents("g07", []customs.Event{scanEvent("E1")}, time.Now()); err != nil {
		t.Fatal(err)
	}
	c.Close()

	if _, err := open("PEK-E"); err == nil || !strings.Contains(err.Error(), "belongs to site") {
		t.Fatalf("ledger opened for another site: %v", err)
	}
	c, err = open(site)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Head() != 3 || c.Stats().EventsReceived != 1 {
		t.Fatalf("after reopen: head %d, events %d", c.Head(), c.Stats().EventsReceived)
	}
	first, last, err := c.Issue(context.Background(), parcelOrders(2))
	if err != nil || first != 4 || last != 5 {
		t.Fatalf("Issue after reopen = %d, %d, %v; want 4, 5", first, last, err)
	}
	// The index is rebuilt: the reopened ledger answers lookups.
	if seqs := c.idx.related(customs.Subject{Kind: customs.Parcel, ID: ParcelID(1)}); fmt.Sprint(seqs) != "[1 4]" {
		t.Fatalf("related after reopen = %v", seqs)
	}
}

// logWriter sends log lines to t.Log, so they show only for failing tests.
type logWriter struct {
	mu sync.Mutex
	t  testing.TB
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
