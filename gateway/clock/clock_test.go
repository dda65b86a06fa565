package clock_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/clock"
	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/store"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// wall is a settable wall clock.
type wall struct{ now time.Time }

func (w *wall) Now() time.Time { return w.now }

func TestClockNowNeverBelowFloor(t *testing.T) {
	w := &wall{now: t0}
	c := clock.New(w.Now, t0.Add(time.Hour))
	tests := []struct {
		name       string
		wall       time.Time
		want       time.Time
		wantBehind time.Duration
	}{
		{"wall behind the floor", t0, t0.Add(time.Hour), time.Hour},
		{"wall at the floor", t0.Add(time.Hour), t0.Add(time.Hour), 0},
		{"wall ahead of the floor", t0.Add(2 * time.Hour), t0.Add(2 * time.Hour), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.now = tt.wall
			if got := c.Now(); !got.Equal(tt.want) {
				t.Errorf("Now() = %v, want %v", got, tt.want)
			}
			if got := c.Wall(); !got.Equal(tt.wall) {
				t.Errorf("Wall() = %v, want %v", got, tt.wall)
			}
		})
	}
	if c.Floor() != t0.Add(time.Hour) {
		t.Errorf("the wall clock moved the persisted floor to %v", c.Floor())
	}
}

func TestClockObserveOnlyRaises(t *testing.T) {
	c := clock.New(func() time.Time { return t0 }, time.Time{})
	if !c.Floor().IsZero() {
		t.Fatalf("floor %v, want zero", c.Floor())
	}
	steps := []struct {
		at        time.Time
		moved     bool
		wantFloor time.Time
	}{
		{t0.Add(time.Minute), true, t0.Add(time.Minute)},
		{t0.Add(30 * time.Second), false, t0.Add(time.Minute)}, // an old head, a replayed order
		{t0.Add(time.Minute), false, t0.Add(time.Minute)},
		{t0.Add(time.Hour), true, t0.Add(time.Hour)},
		{time.Time{}, false, t0.Add(time.Hour)},
	}
	for i, s := range steps {
		if got := c.Observe(s.at); got != s.moved {
			t.Errorf("step %d: Observe(%v) = %v, want %v", i, s.at, got, s.moved)
		}
		if got := c.Floor(); !got.Equal(s.wantFloor) {
			t.Errorf("step %d: floor %v, want %v", i, got, s.wantFloor)
		}
		if got := c.Now(); got.Before(c.Floor()) {
			t.Errorf("step %d: Now() %v below the floor %v", i, got, c.Floor())
		}
	}
	if got := c.Behind(); got != time.Hour {
		t.Errorf("Behind() = %v, want 1h", got)
	}
}

// TestClockSetBack: a release expired by the wall clock stays expired when
// the wall clock is then set back (a bad NTP server), with or without
// central's time to go by.
func TestClockSetBack(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "orders.db"))
	p := customs.Subject{Kind: customs.Parcel, ID: "RR123456785CN"}
	if _, err := st.Apply(store.Batch{Orders: []customs.Order{{Seq: 1, Action: customs.Release, Subject: p,
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	decide := func(c *clock.Clock) string { return string(st.Decide(p, c.Now()).Reason) }

	t.Run("floor from central", func(t *testing.T) {
		w := &wall{now: t0.Add(30 * time.Minute)}
		c := clock.New(w.Now, time.Time{})
		if got := decide(c); got != customs.ReasonReleased {
			t.Fatalf("before expiry: %s", got)
		}
		c.Observe(t0.Add(2 * time.Hour)) // a head from central, after expiry
		w.now = t0                       // set back
		if got := decide(c); got != customs.ReasonExpired {
			t.Errorf("wall set back below central's time: %s, want expired", got)
		}
		if c.Behind() != 2*time.Hour {
			t.Errorf("Behind() = %v, want 2h", c.Behind())
		}
	})
	t.Run("wall clock only", func(t *testing.T) {
		// No central time since before the expiry (the link is down): the
		// release expired by the wall clock, which is then set back.
		w := &wall{now: t0.Add(2 * time.Hour)}
		c := clock.New(w.Now, t0)
		if got := decide(c); got != customs.ReasonExpired {
			t.Fatalf("after expiry: %s", got)
		}
		w.now = t0.Add(10 * time.Minute)
		if got := decide(c); got != customs.ReasonExpired {
			t.Errorf("wall set back: %s, want expired", got)
		}
		if c.Behind() < time.Hour {
			t.Errorf("Behind() = %v, want the set-back shown (about 1h50m)", c.Behind())
		}
	})
}

// TestClockFloorPersisted: the floor the link stores with a batch survives
// a restart, is never lowered by an older one, and a clock made from it
// after the restart keeps judging an expired release expired, whatever the
// wall clock says.
func TestClockFloorPersisted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orders.db")
	st := openStore(t, path)
	p := customs.Subject{Kind: customs.Parcel, ID: "RR123456785CN"}
	floor := t0.Add(2*time.Hour + 123456789*time.Nanosecond)
	// The link's commit: the floor raised by central's timestamps and
	// stored in the same transaction as the orders.
	c := clock.New(func() time.Time { return t0 }, time.Time{})
	c.Observe(floor)
	if _, err := st.Apply(store.Batch{Orders: []customs.Order{{Seq: 1, Action: customs.Release, Subject: p,
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}}, Floor: c.Floor()}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(store.Batch{Floor: t0.Add(time.Hour)}); err != nil { // older: kept out
		t.Fatal(err)
	}
	st.Close()

	st = openStore(t, path)
	prog, err := st.Progress()
	if err != nil {
		t.Fatal(err)
	}
	if !prog.Floor.Equal(floor) {
		t.Fatalf("floor after a restart %v, want %v", prog.Floor, floor)
	}
	w := &wall{now: t0} // the wall clock came back two hours slow
	c = clock.New(w.Now, prog.Floor)
	if got := c.Now(); !got.Equal(floor) {
		t.Errorf("Now() = %v, want the stored floor %v", got, floor)
	}
	if d := st.Decide(p, c.Now()); d.Reason != customs.ReasonExpired || d.Pass {
		t.Errorf("after a restart with the wall clock set back: pass %v %s, want STOP expired", d.Pass, d.Reason)
	}
	if c.Behind() != floor.Sub(t0) {
		t.Errorf("Behind() = %v, want %v", c.Behind(), floor.Sub(t0))
	}
}

// TestClockWallReadingPersisted: the latest wall clock reading, stored with
// each batch and by the gateway's minute loop, survives a restart. A
// release that expired by the wall clock after central's last timestamp
// (the link down) stays expired when the gateway restarts with the wall
// clock set back.
func TestClockWallReadingPersisted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orders.db")
	st := openStore(t, path)
	p := customs.Subject{Kind: customs.Parcel, ID: "RR123456785CN"}
	w := &wall{now: t0}
	c := clock.New(w.Now, time.Time{})
	c.Observe(t0) // central's last timestamp
	if _, err := st.Apply(store.Batch{Orders: []customs.Order{{Seq: 1, Action: customs.Release, Subject: p,
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}}, Floor: c.Floor(), Wall: c.Now()}); err != nil {
		t.Fatal(err)
	}
	w.now = t0.Add(2 * time.Hour) // the link is down; the release expires
	if d := st.Decide(p, c.Now()); d.Reason != customs.ReasonExpired {
		t.Fatalf("after expiry: %s", d.Reason)
	}
	if err := st.SaveWall(c.Now()); err != nil { // the minute loop
		t.Fatal(err)
	}
	if err := st.SaveWall(t0); err != nil { // an older reading: kept out
		t.Fatal(err)
	}
	st.Close()

	st = openStore(t, path)
	prog, err := st.Progress()
	if err != nil {
		t.Fatal(err)
	}
	if !prog.Wall.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("wall reading after a restart %v, want %v", prog.Wall, t0.Add(2*time.Hour))
	}
	w.now = t0.Add(10 * time.Minute) // set back (an RTC reset) while down
	c = clock.New(w.Now, prog.Floor)
	c.Restore(prog.Wall)
	if d := st.Decide(p, c.Now()); d.Pass || d.Reason != customs.ReasonExpired {
		t.Errorf("after a restart with the wall clock set back: pass %v %s, want STOP expired", d.Pass, d.Reason)
	}
	if c.Behind() != 110*time.Minute {
		t.Errorf("Behind() = %v, want 1h50m", c.Behind())
	}
	if !c.Floor().Equal(t0) {
		t.Errorf("the restored wall reading moved the floor to %v", c.Floor())
	}

	// A batch stores the reading too.
	if _, err := st.Apply(store.Batch{Wall: t0.Add(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if prog, _ = st.Progress(); !prog.Wall.Equal(t0.Add(3 * time.Hour)) {
		t.Errorf("wall reading after a batch %v", prog.Wall)
	}
}

// TestClockRestore: a restored reading only raises the clock, and one past
// 2200 is ignored.
func TestClockRestore(t *testing.T) {
	w := &wall{now: t0}
	c := clock.New(w.Now, time.Time{})
	c.Restore(t0.Add(time.Hour))
	c.Restore(t0.Add(time.Minute))
	c.Restore(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC))
	if got := c.Now(); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("Now() = %v, want %v", got, t0.Add(time.Hour))
	}
	if !c.Floor().IsZero() {
		t.Errorf("Restore moved the floor to %v", c.Floor())
	}
}

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
