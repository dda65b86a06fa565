package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/gateway/clock"
	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/screens"
	"github.com/cargogate/cargogate/gateway/station"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/link"
)

// trustStatus is the part of /api/status the trust tests read.
type trustStatus struct {
	Link struct {
		Online     bool              `json:"online"`
		Applied    uint64            `json:"applied_seq"`
		Head       uint64            `json:"head_seq"`
		MaxSeq     uint64            `json:"max_seq"`
		Rejected   uint64            `json:"rejected"`
		RejectedBy map[string]uint64 `json:"rejected_by"`
		LastReject string            `json:"last_reject"`
		New        uint64            `json:"orders_applied"`
		Duplicates uint64            `json:"orders_duplicate"`
		Conflicts  uint64            `json:"orders_conflict"`
		// Unappliable: orders set aside whole (amendment 2).
		Unappliable uint64 `json:"orders_unappliable"`
	} `json:"link"`
	TimeFloor    time.Time `json:"time_floor"`
	ClockBehindS float64   `json:"clock_behind_s"`
}

func (s *site) trustStatus() trustStatus {
	s.t.Helper()
	var st trustStatus
	getJSON(s.t, "http://"+s.gwHTTP+"/api/status", &st)
	return st
}

// waitTrust polls the status until ok holds.
func (s *site) waitTrust(what string, ok func(trustStatus) bool) trustStatus {
	s.t.Helper()
	var st trustStatus
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st = s.trustStatus(); ok(st) {
			return st
		}
	}
	s.t.Fatalf("%s: not seen in 10s (status %+v)", what, st.Link)
	return st
}

// inspect is the gateway's own explanation of how a code decides now.
func (s *site) inspect(code string) screens.Inspection {
	s.t.Helper()
	var in screens.Inspection
	getJSON(s.t, "http://"+s.gwHTTP+"/api/inspect?code="+url.QueryEscape(code), &in)
	return in
}

// decides scans code at the gate and checks the frame and the reason.
func (s *site) decides(code, frame, reason string) {
	s.t.Helper()
	if got := s.scan(code); got != frame {
		s.t.Errorf("scan %s: gate %s, want %s", code, got, frame)
	}
	if in := s.inspect(code); in.Reason != reason {
		s.t.Errorf("scan %s: reason %q, want %q", code, in.Reason, reason)
	}
}

// centralSigner is the site's real central key, read from customs-sim's key
// file: what an attacker holding central's key, or central itself, signs.
func (s *site) centralSigner() envelope.Signer {
	s.t.Helper()
	key, created, err := envelope.LoadOrCreateKey(filepath.Join(s.dir, "central.key"))
	if err != nil || created {
		s.t.Fatalf("central key: created %v, %v", created, err)
	}
	return envelope.Signer{Kid: "central-sim", Key: key}
}

// mqttClient connects a plain paho client (clean session) to the broker.
func mqttClient(t testing.TB, o *mqtt.ClientOptions) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(o.SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tk := c.Connect(); !tk.WaitTimeout(6*time.Second) || tk.Error() != nil {
		t.Fatalf("mqtt connect %s: %v", o.ClientID, tk.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// publisher returns a function that publishes raw bytes at QoS 1 as a
// client that is neither central nor a gateway (a device on the LAN, a
// compromised broker account).
func publisher(t testing.TB, c mqtt.Client) func(topic string, msg []byte) {
	return func(topic string, msg []byte) {
		t.Helper()
		tk := c.Publish(topic, 1, false, msg)
		if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tk.Error())
		}
	}
}

// recorder keeps the messages received on subscribed topics.
type recorder struct {
	mu   sync.Mutex
	msgs []recorded
}

type recorded struct {
	topic   string
	payload []byte
}

func (r *recorder) handle(_ mqtt.Client, m mqtt.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, recorded{m.Topic(), slices.Clone(m.Payload())})
	r.mu.Unlock()
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func subscribe(t testing.TB, c mqtt.Client, r *recorder, topics ...string) {
	t.Helper()
	f := map[string]byte{}
	for _, tp := range topics {
		f[tp] = 1
	}
	if tk := c.SubscribeMultiple(f, r.handle); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("subscribe %v: %v", topics, tk.Error())
	}
}

// ordersMessage finds the recorded orders message holding an order on subj.
func ordersMessage(t testing.TB, r *recorder, subj customs.Subject) []byte {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := findOrders(r, subj); m != nil {
			return m
		}
	}
	t.Fatalf("no orders message on %s recorded", subj)
	return nil
}

func findOrders(r *recorder, subj customs.Subject) []byte {
	for _, m := range r.all() {
		var env envelope.Envelope
		if json.Unmarshal(m.payload, &env) != nil {
			continue
		}
		payload, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			continue
		}
		var doc customs.Orders
		if json.Unmarshal(payload, &doc) != nil {
			continue
		}
		for _, o := range doc.Orders {
			if o.Subject == subj {
				return m.payload
			}
		}
	}
	return nil
}

// rawSeal signs payload with key under kid without SealBytes' size check.
func rawSeal(kid string, key ed25519.PrivateKey, payload []byte) []byte {
	b, _ := json.Marshal(envelope.Envelope{Kid: kid, Payload: base64.StdEncoding.EncodeToString(payload),
		Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(key, payload))})
	return b
}

func ordersPayload(site string, orders ...customs.Order) []byte {
	b, _ := json.Marshal(customs.Orders{Type: customs.TypeOrders, Site: site, Orders: orders})
	return b
}

// withMember inserts `"name":value` as the first member of a JSON object.
func withMember(obj []byte, name, value string) []byte {
	return append([]byte(`{"`+name+`":`+value+`,`), obj[1:]...)
}

// TestTrustAttacks runs the attacks of issue 4 against a running gateway,
// end to end through mosquitto. Each forged or malformed message must be
// rejected whole (an order that cannot be applied is set aside alone, by
// amendment 2), counted under its reason in /api/status (link.rejected,
// link.rejected_by) and logged, and must change nothing: the watermark,
// the orders applied and the gate's decision on the parcel it tries to
// release stay as they were. Replays and same-seq conflicts signed with
// central's real key are not rejections: they must not win (§4).
func TestTrustAttacks(t *testing.T) {
	s := newSite(t)
	central := s.centralSigner()
	_, rogue, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now().UTC().Truncate(time.Second)
	P := func(n int) customs.Subject { return sub(customs.Parcel, s10(n)) }

	// Central's messages are recorded as any broker client could.
	spy := &recorder{}
	subscribe(t, mqttClient(t, mqtt.NewClientOptions().AddBroker(s.broker.URL()).SetClientID("spy")), spy,
		customs.OrdersTopic("PVG-W"))
	pub := publisher(t, mqttClient(t, mqtt.NewClientOptions().AddBroker(s.broker.URL()).SetClientID("attacker")))

	rel := func(sj customs.Subject) customs.Order {
		return customs.Order{Action: customs.Release, Subject: sj, ExpiresAt: now.Add(24 * time.Hour)}
	}
	p1 := s.issue(rel(P(1)))
	head := s.issue(rel(P(2)))
	s.waitApplied(head, 30*time.Second)

	// Every attack tries to release P(10), which central never released.
	target := P(10)
	forged := customs.Order{Seq: head + 1, Action: customs.Release, Subject: target, IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	valid := ordersPayload("PVG-W", forged) // accepted if central signed it; never published as it is
	validEnv := func() envelope.Envelope {
		var env envelope.Envelope
		b, _ := central.SealBytes(valid)
		_ = json.Unmarshal(b, &env)
		return env
	}()
	var p1Env envelope.Envelope // a real central message, as recorded
	_ = json.Unmarshal(ordersMessage(t, spy, P(1)), &p1Env)
	seal := func(payload []byte) []byte { return rawSeal(central.Kid, central.Key, payload) }
	envJSON := func(e envelope.Envelope) []byte { b, _ := json.Marshal(e); return b }
	nest := func(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }
	many := func(n int, elem string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(elem+",", n), ",") + "]"
	}
	hugeLink := fmt.Sprintf(`{"type":"orders","site":"PVG-W","orders":[{"seq":%d,"action":"link","subject":{"kind":"bag","id":"%s"},"children":%s}]}`,
		head+1, sscc(1), many(100_000, `{}`))
	hugeSeals := fmt.Sprintf(`{"type":"orders","site":"PVG-W","orders":[{"seq":%d,"action":"seal","subject":{"kind":"transit","id":"T1"},"seals":%s}]}`,
		head+1, many(100_000, `"S"`))
	ordersOf := func(elems string) []byte {
		return []byte(`{"type":"orders","site":"PVG-W","orders":` + elems + `}`)
	}
	forgedJSON, _ := json.Marshal(forged)

	attacks := []struct {
		name, topic string
		msg         []byte
		reason      string
	}{
		{"unknown kid", "", rawSeal("central-rogue", rogue, valid), envelope.ReasonUnknownKid},
		{"known kid, other key", "", rawSeal(central.Kid, rogue, valid), envelope.ReasonBadSignature},
		{"payload swapped under a valid signature", "",
			envJSON(envelope.Envelope{Kid: central.Kid, Payload: validEnv.Payload, Sig: p1Env.Sig}), envelope.ReasonBadSignature},
		{"signed payload, one byte changed", "",
			envJSON(envelope.Envelope{Kid: central.Kid, Payload: base64.StdEncoding.EncodeToString(bytes.Replace(valid, []byte(`"seq":`), []byte(`"seq": `), 1)), Sig: validEnv.Sig}),
			envelope.ReasonBadSignature},
		{"payload for another site", "", seal(ordersPayload("PVG-X", forged)), "wrong_site"},
		{"orders on the head topic", customs.HeadTopic("PVG-W"), seal(valid), "wrong_type"},
		{"events on the orders topic", "", seal([]byte(`{"type":"events","site":"PVG-W","gateway":"g07","events":[]}`)), "wrong_type"},
		{"oversize (1.1 MiB)", "", seal(withMember(valid, "pad", `"`+strings.Repeat("A", 800<<10)+`"`)), envelope.ReasonTooLarge},
		{"oversize (17 MiB, above the ingest budget)", "", seal(withMember(valid, "pad", `"`+strings.Repeat("A", 17<<20)+`"`)), envelope.ReasonTooLarge},
		{"not JSON", "", seal([]byte("release everything")), "malformed"},
		{"orders nested 10,000 deep", "", seal(ordersOf(nest(10_000))), "malformed"},
		{"a member nested 10,000 deep beside a valid order", "", seal(withMember(valid, "x", nest(10_000))), "malformed"},
		{"a member nested 200,000 deep", "", seal(withMember(valid, "x", nest(200_000))), "malformed"},
		{"a member nested 9,990 deep, for another site", "", seal(withMember(ordersPayload("PVG-X", forged), "x", nest(9_990))), "wrong_site"},
		{"an order nested 10,000 deep", "", seal(ordersOf("[" + string(forgedJSON[:len(forgedJSON)-1]) + `,"note":` + nest(10_000) + "}]")), "malformed"},
		{"100,000 orders", "", seal(ordersOf("[" + string(forgedJSON) + "," + strings.TrimPrefix(many(100_000, "{}"), "["))), "too_many_orders"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			s.t = t
			topic := a.topic
			if topic == "" {
				topic = customs.OrdersTopic("PVG-W")
			}
			if a.reason == envelope.ReasonTooLarge {
				if len(a.msg) <= customs.MaxEnvelopeBytes {
					t.Fatalf("test bug: %d bytes is not oversize", len(a.msg))
				}
			} else if len(a.msg) > customs.MaxEnvelopeBytes {
				t.Fatalf("test bug: %d bytes is oversize", len(a.msg))
			}
			before := s.trustStatus()
			pub(topic, a.msg)
			after := s.waitTrust("rejection", func(st trustStatus) bool { return st.Link.Rejected > before.Link.Rejected })
			if after.Link.Rejected != before.Link.Rejected+1 || after.Link.RejectedBy[a.reason] != before.Link.RejectedBy[a.reason]+1 {
				t.Errorf("rejected %d→%d, by %v→%v; want one more %q (last: %s)", before.Link.Rejected, after.Link.Rejected,
					before.Link.RejectedBy, after.Link.RejectedBy, a.reason, after.Link.LastReject)
			}
			if !strings.HasPrefix(after.Link.LastReject, a.reason+" on "+topic) {
				t.Errorf("last_reject %q, want %s on %s", after.Link.LastReject, a.reason, topic)
			}
			if after.Link.Applied != before.Link.Applied || after.Link.MaxSeq != before.Link.MaxSeq ||
				after.Link.New != before.Link.New || after.Link.Head != before.Link.Head || !after.TimeFloor.Equal(before.TimeFloor) {
				t.Errorf("state changed: %+v → %+v", before, after)
			}
			s.decides(target.ID, "STOP", "unknown")
		})
	}
	s.t = t
	if out := s.gw.Output(); strings.Count(out, `msg="message rejected"`) < len(attacks) {
		t.Errorf("%d rejections logged, want %d", strings.Count(out, `msg="message rejected"`), len(attacks))
	}

	// Amendment 2: a message whose envelope, site, type, size and order
	// count are good is not rejected for an order in it that cannot be
	// applied; that order alone is set aside (counted, audited) and its seq
	// stays a gap, and it changes nothing.
	t.Run("orders that cannot be applied", func(t *testing.T) {
		s.t = t
		for _, msg := range [][]byte{seal([]byte(hugeLink)), seal([]byte(hugeSeals))} {
			before := s.trustStatus()
			pub(customs.OrdersTopic("PVG-W"), msg)
			after := s.waitTrust("order set aside", func(st trustStatus) bool { return st.Link.Unappliable > before.Link.Unappliable })
			if after.Link.Unappliable != before.Link.Unappliable+1 || after.Link.Rejected != before.Link.Rejected ||
				after.Link.Applied != before.Link.Applied || after.Link.MaxSeq != before.Link.MaxSeq ||
				after.Link.New != before.Link.New || !after.TimeFloor.Equal(before.TimeFloor) {
				t.Errorf("state changed: %+v → %+v", before, after)
			}
			s.decides(target.ID, "STOP", "unknown")
		}
	})

	// Messages on topics the gateway does not subscribe never reach it,
	// signed or not: another site's orders, another gateway's replies.
	t.Run("other topics", func(t *testing.T) {
		s.t = t
		before := s.trustStatus()
		for _, topic := range []string{customs.OrdersTopic("PVG-X"), customs.GatewayTopic("PVG-W", "g08", customs.LeafReplay),
			customs.GatewayTopic("PVG-W", "g08", customs.LeafLookupReply), customs.GatewayTopic("PVG-X", "g07", customs.LeafReplay)} {
			pub(topic, seal(valid))
			pub(topic, seal(ordersPayload("PVG-X", forged)))
		}
		// A rejected message after them: once it is counted, they would
		// have been seen.
		pub(customs.OrdersTopic("PVG-W"), rawSeal("central-rogue", rogue, valid))
		after := s.waitTrust("sentinel", func(st trustStatus) bool { return st.Link.Rejected > before.Link.Rejected })
		if after.Link.Rejected != before.Link.Rejected+1 || after.Link.New != before.Link.New || after.Link.MaxSeq != before.Link.MaxSeq {
			t.Errorf("messages on other topics reached the gateway: %+v → %+v", before.Link, after.Link)
		}
		s.decides(target.ID, "STOP", "unknown")
	})

	// A replay of central's own, correctly signed release after a later
	// revoke or hold, on every topic that carries orders: counted as a
	// duplicate, and the later seq still decides.
	t.Run("replay of an old release", func(t *testing.T) {
		s.t = t
		s.issue(rel(P(20)), rel(P(21)))
		s.waitApplied(s.issue(customs.Order{Action: customs.Revoke, Subject: P(20)},
			customs.Order{Action: customs.Hold, Subject: P(21), HoldID: "H-1", Reason: "do_not_load"}), 30*time.Second)
		s.decides(s10(20), "STOP", "revoked")
		s.decides(s10(21), "STOP", "held:do_not_load")
		before := s.trustStatus()
		topics := []string{customs.OrdersTopic("PVG-W"), customs.GatewayTopic("PVG-W", "g07", customs.LeafReplay),
			customs.GatewayTopic("PVG-W", "g07", customs.LeafLookupReply)}
		for _, topic := range topics {
			pub(topic, ordersMessage(t, spy, P(20)))
			pub(topic, ordersMessage(t, spy, P(21)))
		}
		after := s.waitTrust("duplicates", func(st trustStatus) bool {
			return st.Link.Duplicates >= before.Link.Duplicates+uint64(2*len(topics))
		})
		if after.Link.Rejected != before.Link.Rejected || after.Link.New != before.Link.New || after.Link.Conflicts != before.Link.Conflicts {
			t.Errorf("a replay changed more than the duplicate count: %+v → %+v", before.Link, after.Link)
		}
		s.decides(s10(20), "STOP", "revoked")
		s.decides(s10(21), "STOP", "held:do_not_load")
	})

	// Same seq, other content, signed with central's real key: the first
	// applied is kept, the other ignored and counted as a conflict.
	t.Run("same seq, other content", func(t *testing.T) {
		s.t = t
		s.decides(s10(1), "PASS", "released")
		before := s.trustStatus()
		msg, err := central.SealBytes(ordersPayload("PVG-W",
			customs.Order{Seq: p1, Action: customs.Revoke, Subject: P(1), IssuedAt: now},
			customs.Order{Seq: head, Action: customs.Release, Subject: target, IssuedAt: now}))
		if err != nil {
			t.Fatal(err)
		}
		pub(customs.OrdersTopic("PVG-W"), msg)
		after := s.waitTrust("conflicts", func(st trustStatus) bool { return st.Link.Conflicts >= before.Link.Conflicts+2 })
		if after.Link.Conflicts != before.Link.Conflicts+2 || after.Link.New != before.Link.New || after.Link.Applied != before.Link.Applied {
			t.Errorf("conflicting orders: %+v → %+v", before.Link, after.Link)
		}
		if !strings.Contains(s.gw.Output(), "order conflict") {
			t.Error("conflict not logged")
		}
		s.decides(s10(1), "PASS", "released")
		s.decides(target.ID, "STOP", "unknown")
	})

	s.t = t
	if s.gw.Exited() {
		t.Fatal("the gateway exited")
	}
	if out, err := s.cli("audit", "verify", "--config", s.cfgPath); err != nil || !strings.Contains(out, "intact") {
		t.Errorf("audit verify: %v\n%s", err, out)
	}
}

// TestClockFloorEndToEnd: central vouches for a time two hours ahead of the
// gateway's wall clock (an order issued then), which is what the gateway
// sees when its clock was set back two hours. A release that expires in
// one hour by the wall clock is then expired, the status shows the clock
// trouble, and a restart keeps the floor.
func TestClockFloorEndToEnd(t *testing.T) {
	s := newSite(t)
	now := time.Now().UTC()
	P := func(n int) customs.Subject { return sub(customs.Parcel, s10(n)) }
	s.waitApplied(s.issue(customs.Order{Action: customs.Release, Subject: P(30), ExpiresAt: now.Add(time.Hour)}), 30*time.Second)
	s.decides(s10(30), "PASS", "released")

	ahead := now.Add(2 * time.Hour).Truncate(time.Millisecond)
	s.waitApplied(s.issue(customs.Order{Action: customs.Release, Subject: P(31), IssuedAt: ahead}), 30*time.Second)
	check := func(when string) {
		t.Helper()
		st := s.trustStatus()
		if !st.TimeFloor.Equal(ahead) {
			t.Errorf("%s: time_floor %v, want %v", when, st.TimeFloor, ahead)
		}
		if st.ClockBehindS < 7000 || st.ClockBehindS > 7300 {
			t.Errorf("%s: clock_behind_s %v, want about 7200", when, st.ClockBehindS)
		}
		if in := s.inspect(s10(30)); !in.At.Equal(ahead) && in.At.Before(ahead) {
			t.Errorf("%s: decided at %v, before the floor %v", when, in.At, ahead)
		}
		s.decides(s10(30), "STOP", "expired")
		s.decides(s10(31), "PASS", "released")
		var ov screens.Overview
		getJSON(t, "http://"+s.gwHTTP+"/api/overview", &ov)
		if !slices.ContainsFunc(ov.Alarms, func(a screens.Alarm) bool { return a.Kind == screens.AlarmClockTrouble }) {
			t.Errorf("%s: no clock_trouble alarm on the overview: %+v", when, ov.Alarms)
		}
	}
	check("running")
	s.gw.Stop(10 * time.Second)
	s.startGateway()
	s.waitApplied(s.centralHead(), 30*time.Second)
	check("after a restart")
}

// TestClockStatus checks the status document's clock fields at unit level:
// a wall clock an hour behind the floor shows as clock_behind_s 3600 and
// raises clock_trouble on the supervisor's overview; a wall clock ahead
// shows 0 and raises nothing.
func TestClockStatus(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "orders.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	jr, err := journal.Open(filepath.Join(dir, "events.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer jr.Close()
	go jr.Run(t.Context())
	floor := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	wall := floor.Add(-time.Hour)
	clk := clock.New(func() time.Time { return wall }, floor)
	lk, err := link.New(link.Options{Site: "PVG-W", Gateway: "g07", Broker: "tcp://127.0.0.1:1"}, st, jr, clk)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Site: "PVG-W", Gateway: "g07"}
	read := func() (map[string]any, []screens.Alarm) {
		doc := link.GatewayStatus(cfg.Site, cfg.Gateway, version, lk, clk, []*station.Station(nil))
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		ov := screens.New(screens.Options{Status: func() any { return doc }}).Overview()
		return m, ov.Alarms
	}
	clockAlarm := func(as []screens.Alarm) bool {
		return slices.ContainsFunc(as, func(a screens.Alarm) bool { return a.Kind == screens.AlarmClockTrouble })
	}
	m, alarms := read()
	if got := m["clock_behind_s"].(float64); math.Abs(got-3600) > 1e-6 {
		t.Errorf("clock_behind_s %v, want 3600", got)
	}
	if m["time_floor"] != floor.Format(time.RFC3339Nano) {
		t.Errorf("time_floor %v, want %v", m["time_floor"], floor)
	}
	if !clockAlarm(alarms) {
		t.Errorf("no clock_trouble alarm: %+v", alarms)
	}
	wall = floor.Add(time.Minute)
	m, alarms = read()
	if got := m["clock_behind_s"].(float64); got != 0 {
		t.Errorf("wall ahead of the floor: clock_behind_s %v, want 0", got)
	}
	if clockAlarm(alarms) {
		t.Errorf("wall ahead of the floor: clock_trouble raised: %+v", alarms)
	}
}
