package fleet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/tstime"
	"github.com/cargogate/cargogate/sync/envelope"
)

// fakeTime is a clock the test sets.
type fakeTime struct {
	tstime.Std
	now time.Time
}

func (f *fakeTime) Now() time.Time { return f.now }

var t0 = time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)

func signer(name string, seed byte) envelope.Signer {
	return envelope.Signer{Kid: "PVG-W/" + name, Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))}
}

var (
	gws     = map[string]envelope.Signer{"g01": signer("g01", 1), "g02": signer("g02", 2), "g03": signer("g03", 3), "g04": signer("g04", 4), "g05": signer("g05", 5), "g06": signer("g06", 6)}
	central = envelope.Signer{Kid: "central-1", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))}
)

func newFleet(t *testing.T, clk *fakeTime, names ...string) *Fleet {
	t.Helper()
	keys := map[string]ed25519.PublicKey{}
	for _, n := range names {
		keys[n] = gws[n].Public()
	}
	f, err := New(Options{Site: "PVG-W", Gateways: keys, CentralKeys: envelope.Keyring{central.Kid: central.Public()}, Time: clk})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func status(name, state string, applied, head uint64, at time.Time) customs.Status {
	return customs.Status{Type: customs.TypeStatus, Site: "PVG-W", Gateway: name, State: state, AppliedSeq: applied, HeadSeq: head, Version: "1.4.0", At: at}
}

func sealed(t *testing.T, s envelope.Signer, doc any) []byte {
	t.Helper()
	b, err := s.Seal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func topic(name string) string { return customs.GatewayTopic("PVG-W", name, customs.LeafStatus) }

func send(t *testing.T, f *Fleet, s customs.Status) {
	t.Helper()
	if why := f.Handle(topic(s.Gateway), sealed(t, gws[s.Gateway], s), false); why != "" {
		t.Fatalf("status of %s ignored: %s", s.Gateway, why)
	}
}

func byName(v View, name string) Row {
	for _, r := range v.Gateways {
		if r.Gateway == name {
			return r
		}
	}
	return Row{}
}

func order(v View) []string {
	var out []string
	for _, r := range v.Gateways {
		out = append(out, r.Gateway+":"+r.State+":"+r.Level)
	}
	return out
}

// Worst first: the offline alarms (its will, silence, never seen), then
// the warnings by lag and then by the oldest unacknowledged event, then
// the healthy; lag is measured against central's signed head.
func TestViewWorstFirst(t *testing.T) {
	clk := &fakeTime{now: t0}
	f := newFleet(t, clk, "g01", "g02", "g03", "g04", "g05", "g06")
	send(t, f, status("g06", "online", 100, 100, t0)) // will be silent
	clk.now = t0.Add(4 * time.Minute)
	if why := f.Handle(customs.HeadTopic("PVG-W"), sealed(t, central, customs.Head{Type: customs.TypeHead, Site: "PVG-W", Seq: 120, At: clk.now}), true); why != "" {
		t.Fatalf("central's head ignored: %s", why)
	}
	send(t, f, status("g01", "online", 120, 120, clk.now))
	send(t, f, status("g02", "online", 110, 110, clk.now)) // lag 10 (its own head is behind central's)
	send(t, f, status("g03", "offline", 115, 120, clk.now))
	s := status("g05", "online", 120, 120, clk.now)
	s.Outbox, s.OutboxOldest = 4, 150
	cp := clk.now.Add(-30 * time.Second)
	s.CheckpointAt = &cp
	send(t, f, s)
	clk.now = t0.Add(5*time.Minute + time.Second) // g06 silent 5 min; g04 never seen since the start 5 min ago

	v := f.View()
	want := []string{"g03:offline:alarm", "g06:silent:alarm", "g04:unknown:alarm", "g02:online:warn", "g05:online:warn", "g01:online:ok"}
	if got := order(v); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("order\n got %v\nwant %v", got, want)
	}
	if v.Head != 120 || !v.CentralHead || v.Alarms != 3 || v.Online != 3 {
		t.Errorf("view head %d (central %v), alarms %d, online %d; want 120 from central, 3, 3", v.Head, v.CentralHead, v.Alarms, v.Online)
	}
	rows := map[string]Row{}
	for _, r := range v.Gateways {
		rows[r.Gateway] = r
	}
	if r := rows["g02"]; r.Lag != 10 || r.Problems[0] != "lag" {
		t.Errorf("g02: lag %d problems %v, want 10 [lag]", r.Lag, r.Problems)
	}
	if r := rows["g05"]; r.OldestS == nil || *r.OldestS != 211 || r.CheckAgeS == nil || *r.CheckAgeS != 91 || r.Problems[0] != "outbox_old" {
		t.Errorf("g05: oldest %v s, checkpoint age %v s, problems %v; want 150+61 = 211, 91, [outbox_old]", f0(r.OldestS), f0(r.CheckAgeS), r.Problems)
	}
	if r := rows["g03"]; r.Lag != 5 || !r.Alarm {
		t.Errorf("g03: %+v, want an offline alarm with lag 5", r)
	}
	if r := rows["g04"]; r.LastSeen != nil || !r.Alarm || r.Problems[0] != "never_seen" {
		t.Errorf("g04: %+v, want never seen, alarm", r)
	}
	if r := rows["g06"]; r.SeenAgeS == nil || *r.SeenAgeS != 301 {
		t.Errorf("g06: last seen %v s ago, want 301", f0(r.SeenAgeS))
	}
}

// The offline alarm: silent for OfflineAfter (not a second less), never
// seen OfflineAfter after the start, and an offline status at once; a
// status again clears it.
func TestOfflineThreshold(t *testing.T) {
	clk := &fakeTime{now: t0}
	f := newFleet(t, clk, "g01", "g02")
	f.opts.OfflineAfter = 2 * time.Minute
	send(t, f, status("g01", "online", 1, 1, t0))
	check := func(when time.Duration, want ...string) {
		t.Helper()
		clk.now = t0.Add(when)
		if got := order(f.View()); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("at +%v: %v, want %v", when, got, want)
		}
	}
	check(2*time.Minute-time.Second, "g02:unknown:warn", "g01:online:ok")
	check(2*time.Minute, "g01:silent:alarm", "g02:unknown:alarm")
	clk.now = t0.Add(3 * time.Minute)
	send(t, f, status("g01", "online", 1, 1, clk.now))
	send(t, f, status("g02", "online", 1, 1, clk.now))
	check(3*time.Minute, "g01:online:ok", "g02:online:ok")
	send(t, f, status("g02", "offline", 0, 0, t0)) // a will made at its connection
	check(3*time.Minute, "g02:offline:alarm", "g01:online:ok")
	if r := byName(f.View(), "g02"); r.AppliedSeq != 1 {
		t.Errorf("after its will g02 shows applied %d, want the last known 1 (the will's figures are older)", r.AppliedSeq)
	}
	// A retained status (at subscription) is as old as it says.
	clk.now = t0.Add(10 * time.Minute)
	if why := f.Handle(topic("g01"), sealed(t, gws["g01"], status("g01", "online", 2, 2, t0.Add(9*time.Minute))), true); why != "" {
		t.Fatal(why)
	}
	if r := byName(f.View(), "g01"); f0(r.SeenAgeS) != 60 {
		t.Errorf("retained status seen %v s ago, want 60", f0(r.SeenAgeS))
	}
}

// A status that is not the topic's gateway's own signed status is ignored
// and counted: it never becomes a gateway's state.
func TestForgedStatusIgnored(t *testing.T) {
	clk := &fakeTime{now: t0}
	f := newFleet(t, clk, "g01", "g02")
	send(t, f, status("g01", "offline", 7, 7, t0))
	clk.now = t0.Add(time.Minute)
	good := status("g01", "online", 9, 9, clk.now)
	raw, _ := json.Marshal(good)
	forger := envelope.Signer{Kid: "PVG-W/g01", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{66}, 32))}
	wrongSite := good
	wrongSite.Site = "PEK-E"
	wrongGW := good
	wrongGW.Gateway = "g02"
	badState := good
	badState.State = "fine"
	cases := []struct {
		name, topic string
		msg         []byte
		want        string
	}{
		{"unsigned", topic("g01"), raw, envelope.ReasonMalformed},
		{"forged signature", topic("g01"), sealed(t, forger, good), envelope.ReasonBadSignature},
		{"another gateway's key", topic("g01"), sealed(t, gws["g02"], good), IgnoredWrongKid},
		{"unknown gateway", topic("g99"), sealed(t, gws["g03"], status("g99", "online", 9, 9, clk.now)), IgnoredUnknown},
		{"unknown key", topic("g01"), sealed(t, envelope.Signer{Kid: "PVG-W/g03", Key: gws["g03"].Key}, good), envelope.ReasonUnknownKid},
		{"wrong site", topic("g01"), sealed(t, gws["g01"], wrongSite), IgnoredWrongSite},
		{"other gateway in the document", topic("g01"), sealed(t, gws["g01"], wrongGW), IgnoredWrongGateway},
		{"bad state", topic("g01"), sealed(t, gws["g01"], badState), IgnoredBadDocument},
		{"not a status", topic("g01"), sealed(t, gws["g01"], customs.Head{Type: customs.TypeHead, Site: "PVG-W", Seq: 9}), IgnoredWrongType},
		{"wrong topic", "customs/v1/PVG-W/gw/g01/events", sealed(t, gws["g01"], good), IgnoredWrongTopic},
		{"forged head", customs.HeadTopic("PVG-W"), sealed(t, gws["g01"], customs.Head{Type: customs.TypeHead, Site: "PVG-W", Seq: 999}), envelope.ReasonUnknownKid},
	}
	for _, c := range cases {
		if got := f.Handle(c.topic, c.msg, false); got != c.want {
			t.Errorf("%s: reason %q, want %q", c.name, got, c.want)
		}
	}
	v := f.View()
	r := byName(v, "g01")
	if r.State != StateOffline || r.AppliedSeq != 7 || v.Head != 7 {
		t.Fatalf("after forgeries g01 is %+v (head %d); want still offline at applied 7, head 7", r, v.Head)
	}
	var n uint64
	for _, k := range v.Ignored {
		n += k
	}
	if n != uint64(len(cases)) || v.Accepted != 1 {
		t.Errorf("ignored %d (%v), accepted %d; want %d and 1", n, v.Ignored, v.Accepted, len(cases))
	}
	// A replayed older online status does not hide a newer one.
	send(t, f, good)
	old := status("g01", "online", 8, 8, clk.now.Add(-time.Second))
	if got := f.Handle(topic("g01"), sealed(t, gws["g01"], old), false); got != IgnoredStale {
		t.Errorf("replayed older status: %q, want %q", got, IgnoredStale)
	}
	if r := byName(f.View(), "g01"); r.AppliedSeq != 9 {
		t.Errorf("after a replay g01 shows applied %d, want 9", r.AppliedSeq)
	}
}

// /api/fleet is the view; /metrics has a gauge family per figure with a
// gateway label, and the ignored count by reason.
func TestHandler(t *testing.T) {
	clk := &fakeTime{now: t0}
	f := newFleet(t, clk, "g01", "g02")
	s := status("g01", "online", 5, 8, t0)
	s.Outbox, s.OutboxOldest = 2, 12
	send(t, f, s)
	f.Handle(topic("g02"), []byte("{}"), false)
	srv := httptest.NewServer(f.Handler())
	defer srv.Close()
	get := func(path string) string {
		r, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, r.StatusCode, b)
		}
		return string(b)
	}
	var v View
	if err := json.Unmarshal([]byte(get("/api/fleet")), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Gateways) != 2 || byName(v, "g01").Lag != 3 || v.Ignored[envelope.ReasonMalformed] != 1 {
		t.Errorf("/api/fleet = %+v", v)
	}
	m := get("/metrics")
	for _, want := range []string{
		`cargogate_fleet_gateway_up{gateway="g01"} 1`, `cargogate_fleet_gateway_up{gateway="g02"} 0`,
		`cargogate_fleet_gateway_lag{gateway="g01"} 3`, `cargogate_fleet_gateway_outbox_events{gateway="g01"} 2`,
		`cargogate_fleet_gateway_outbox_oldest_seconds{gateway="g01"} 12`, `cargogate_fleet_gateway_info{gateway="g01",version="1.4.0"} 1`,
		`cargogate_fleet_gateway_offline_alarm{gateway="g02"} 0`, `cargogate_fleet_statuses_ignored_total{reason="malformed"} 1`,
		`cargogate_fleet_head_seq 8`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if p := get("/"); !strings.Contains(p, "static/fleet.js") {
		t.Errorf("page: %s", p)
	}
	get("/static/fleet.css")
}
