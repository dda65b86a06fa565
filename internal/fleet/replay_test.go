package fleet

import (
	"crypto/ed25519"
	"encoding/json"
	"github.com/cargogate/cargogate/gateway/customs"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// A gateway that died (its will came) is not shown online again by a
// replay of one of its own old online statuses: an attacker with publish
// rights on the topic would otherwise hide the outage for ever.
func TestReplayAfterWillStaysOffline(t *testing.T) {
	clk := &fakeTime{now: t0}
	f := newFleet(t, clk, "g01")
	send(t, f, status("g01", "online", 5, 5, t0))
	clk.now = t0.Add(30 * time.Second)
	last := sealed(t, gws["g01"], status("g01", "online", 6, 6, clk.now))
	if why := f.Handle(topic("g01"), last, false); why != "" {
		t.Fatal(why)
	}
	clk.now = t0.Add(40 * time.Second)
	send(t, f, status("g01", "offline", 5, 5, t0.Add(-time.Second))) // its will
	for i := 1; i <= 20; i++ {
		clk.now = t0.Add(40*time.Second + time.Duration(i)*time.Minute)
		f.Handle(topic("g01"), last, false) // the replay, again and again
		if r := byName(f.View(), "g01"); r.State != StateOffline || !r.Alarm {
			t.Fatalf("replay %d after the will: g01 is %s (alarm %v), want offline with the alarm", i, r.State, r.Alarm)
		}
	}
}

// The last online status replayed (the same `at`) does not refresh "last
// seen": a gateway that fell silent raises the alarm after offline_after
// even while its last status is replayed.
func TestReplaySameStatusDoesNotRefresh(t *testing.T) {
	clk := &fakeTime{now: t0}
	f := newFleet(t, clk, "g01")
	last := sealed(t, gws["g01"], status("g01", "online", 5, 5, t0))
	if why := f.Handle(topic("g01"), last, false); why != "" {
		t.Fatal(why)
	}
	for i := 1; i <= 10; i++ {
		clk.now = t0.Add(time.Duration(i) * time.Minute)
		f.Handle(topic("g01"), last, false)
	}
	if r := byName(f.View(), "g01"); r.State != StateSilent || !r.Alarm {
		t.Fatalf("10 min after its last real status, replayed each minute: g01 is %s, seen %v s ago; want silent with the alarm", r.State, f0(r.SeenAgeS))
	}
}

// After the fleet view restarts, the retained status of a long-dead
// gateway is its will; a replay (not retained) of an online status from
// yesterday is not shown as the gateway online now.
func TestOldOnlineAfterRestartNotFresh(t *testing.T) {
	clk := &fakeTime{now: t0}
	f := newFleet(t, clk, "g01")
	yesterday := t0.Add(-24 * time.Hour)
	if why := f.Handle(topic("g01"), sealed(t, gws["g01"], status("g01", "offline", 5, 5, yesterday.Add(-time.Hour))), true); why != "" {
		t.Fatal(why)
	}
	f.Handle(topic("g01"), sealed(t, gws["g01"], status("g01", "online", 6, 6, yesterday)), false)
	if r := byName(f.View(), "g01"); r.State == StateOnline || !r.Alarm {
		t.Fatalf("an online status of yesterday replayed: g01 is %s (alarm %v), want the alarm", r.State, r.Alarm)
	}
}

// A gateway whose clock goes back is not shown online from statuses older
// than one shown, but its row says why (clock_or_replay) rather than only
// "silent"; once its clock passes its last status it is online again. One
// whose clock is far ahead is not taken at all (clock_ahead), so that
// putting its clock right does not leave it stale for as long.
func TestGatewayClock(t *testing.T) {
	clk := &fakeTime{now: t0}
	f := newFleet(t, clk, "g01", "g02")
	send(t, f, status("g01", "online", 5, 5, t0))
	// g01's clock steps back 10 minutes.
	for i := 1; i <= 6; i++ {
		clk.now = t0.Add(time.Duration(i) * time.Minute)
		if why := f.Handle(topic("g01"), sealed(t, gws["g01"], status("g01", "online", 5, 5, clk.now.Add(-10*time.Minute))), false); why != IgnoredStale {
			t.Fatalf("a status from before the last one: %q, want %q", why, IgnoredStale)
		}
	}
	r := byName(f.View(), "g01")
	if r.State != StateSilent || !r.Alarm || !slices.Contains(r.Problems, "clock_or_replay") {
		t.Fatalf("g01 with its clock 10 min back: %s %v, want silent with clock_or_replay", r.State, r.Problems)
	}
	// Its clock passes its last status, still 10 min behind ours: taken,
	// but not as fresh (a replay of a status never seen looks the same).
	clk.now = t0.Add(11 * time.Minute)
	send(t, f, status("g01", "online", 6, 6, t0.Add(time.Second)))
	if r := byName(f.View(), "g01"); r.State != StateSilent || r.AppliedSeq != 6 || !slices.Contains(r.Problems, "clock_or_replay") {
		t.Fatalf("g01 10 min behind: %s %v applied %d, want silent with clock_or_replay at applied 6", r.State, r.Problems, r.AppliedSeq)
	}
	// Its clock put right.
	clk.now = t0.Add(12 * time.Minute)
	send(t, f, status("g01", "online", 6, 6, clk.now))
	if r := byName(f.View(), "g01"); r.State != StateOnline || slices.Contains(r.Problems, "clock_or_replay") {
		t.Fatalf("g01 with its clock right: %s %v, want online, no clock problem", r.State, r.Problems)
	}
	// g02's clock is a day ahead, then put right.
	if why := f.Handle(topic("g02"), sealed(t, gws["g02"], status("g02", "online", 5, 5, clk.now.Add(24*time.Hour))), false); why != IgnoredClockAhead {
		t.Fatalf("a status a day ahead: %q, want %q", why, IgnoredClockAhead)
	}
	clk.now = clk.now.Add(30 * time.Second)
	send(t, f, status("g02", "online", 5, 5, clk.now))
	if r := byName(f.View(), "g02"); r.State != StateOnline {
		t.Fatalf("g02 once its clock is right: %s %v, want online", r.State, r.Problems)
	}
}

// A huge outbox_oldest_s (a gateway whose oldest event has a broken time)
// is shown as huge and warned about, not wrapped round to 0.
func TestOutboxOldestHuge(t *testing.T) {
	clk := &fakeTime{now: t0}
	f := newFleet(t, clk, "g01")
	s := status("g01", "online", 5, 5, t0)
	s.Outbox, s.OutboxOldest = 1, 6e10 // from the year 1 to now
	send(t, f, s)
	if r := byName(f.View(), "g01"); f0(r.OldestS) < 6e10 || !slices.Contains(r.Problems, "outbox_old") {
		t.Fatalf("oldest unacknowledged %v s, problems %v; want ≥ 6e10 and outbox_old", f0(r.OldestS), r.Problems)
	}
}

// With central's signed head known, the lag is measured against it alone:
// one gateway reporting a head_seq far above it (a bug, or its key in the
// wrong hands) does not put every other gateway behind.
func TestCentralHeadRules(t *testing.T) {
	clk := &fakeTime{now: t0}
	f := newFleet(t, clk, "g01", "g02")
	if why := f.Handle(customs.HeadTopic("PVG-W"), sealed(t, central, customs.Head{Type: customs.TypeHead, Site: "PVG-W", Seq: 100, At: t0}), true); why != "" {
		t.Fatal(why)
	}
	send(t, f, status("g01", "online", 100, 100, t0))
	send(t, f, status("g02", "online", 100, 1_000_000, t0))
	v := f.View()
	if r := byName(v, "g01"); v.Head != 100 || r.Lag != 0 || r.Level != LevelOK {
		t.Fatalf("head %d, g01 lag %d %s; want central's 100, lag 0, ok", v.Head, r.Lag, r.Level)
	}
}

// With orders flowing, every gateway is a few orders behind for the
// fraction of a second between central's head and its next status: that
// is not a problem. Lag is one when the gateway stays behind for
// lagGrace; the figure itself is always shown.
func TestLagGrace(t *testing.T) {
	clk := &fakeTime{now: t0}
	f := newFleet(t, clk, "g01", "g02")
	head := func(seq uint64) {
		t.Helper()
		if why := f.Handle(customs.HeadTopic("PVG-W"), sealed(t, central, customs.Head{Type: customs.TypeHead, Site: "PVG-W", Seq: seq, At: clk.now}), false); why != "" {
			t.Fatal(why)
		}
	}
	head(100)
	send(t, f, status("g01", "online", 100, 100, clk.now))
	send(t, f, status("g02", "online", 90, 100, clk.now)) // stuck at 90
	for i := 1; i <= 8; i++ {
		clk.now = t0.Add(time.Duration(i) * 5 * time.Second)
		head(100 + uint64(i))
		v := f.View()
		if r := byName(v, "g01"); r.Lag != 1 || r.Level != LevelOK {
			t.Fatalf("+%ds: g01 one order behind for an instant: lag %d %s %v, want lag 1 and ok", 5*i, r.Lag, r.Level, r.Problems)
		}
		if r := byName(v, "g02"); (clk.now.Sub(t0) >= lagGrace) != (r.Level == LevelWarn) {
			t.Fatalf("+%ds: g02 behind since the start: %s %v", 5*i, r.Level, r.Problems)
		}
		clk.now = clk.now.Add(200 * time.Millisecond)
		send(t, f, status("g01", "online", 100+uint64(i), 100+uint64(i), clk.now))
	}
	if got := order(f.View()); got[0] != "g02:online:warn" {
		t.Errorf("order %v, want g02 first", got)
	}
}

// A status without its time is refused and counted, not silently dropped
// as the same status again.
func TestStatusWithoutTime(t *testing.T) {
	clk := &fakeTime{now: t0}
	f := newFleet(t, clk, "g01")
	if why := f.Handle(topic("g01"), sealed(t, gws["g01"], status("g01", "online", 5, 5, time.Time{})), false); why != IgnoredBadDocument {
		t.Fatalf("a status without `at`: %q, want %q", why, IgnoredBadDocument)
	}
	if v := f.View(); v.Ignored[IgnoredBadDocument] != 1 {
		t.Errorf("ignored %v, want bad_document 1", v.Ignored)
	}
}

// The fleet view restarted: a gateway dead since yesterday whose retained
// status still says online (its will was lost with a broker that restarted
// without persistence) is silent, with the alarm, from the first view.
func TestRetainedOnlineFromYesterday(t *testing.T) {
	clk := &fakeTime{now: t0}
	f := newFleet(t, clk, "g01")
	if why := f.Handle(topic("g01"), sealed(t, gws["g01"], status("g01", "online", 5, 5, t0.Add(-24*time.Hour))), true); why != "" {
		t.Fatal(why)
	}
	if r := byName(f.View(), "g01"); r.State != StateSilent || !r.Alarm || f0(r.SeenAgeS) != 86400 {
		t.Fatalf("g01 %s alarm %v seen %v s ago, want silent with the alarm, seen 86400 s ago", r.State, r.Alarm, f0(r.SeenAgeS))
	}
}

// A fleet with no gateway yet (the reference central before any gateway
// key is added) answers an empty list, not null: the page maps over it.
func TestEmptyFleetAPI(t *testing.T) {
	f, err := New(Options{Site: "PVG-W"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f.Handler())
	defer srv.Close()
	r, err := http.Get(srv.URL + "/api/fleet")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if _, ok := v["gateways"].([]any); !ok {
		t.Fatalf("gateways = %#v, want an empty list", v["gateways"])
	}
}

// Without central's keys the head topic is not read: what comes there
// (anything, unverified) is not counted as an accepted status.
func TestHeadWithoutKeysNotCounted(t *testing.T) {
	f, err := New(Options{Site: "PVG-W", Gateways: map[string]ed25519.PublicKey{"g01": gws["g01"].Public()}})
	if err != nil {
		t.Fatal(err)
	}
	f.Handle(customs.HeadTopic("PVG-W"), []byte("anything at all"), true)
	if v := f.View(); v.Accepted != 0 {
		t.Errorf("statuses_accepted %d after an unverified head, want 0", v.Accepted)
	}
}
