package station_test

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/rules"
	"github.com/cargogate/cargogate/gateway/station"
	"github.com/cargogate/cargogate/internal/liveness"
)

// A station's loop registers its heartbeat "station ID" while it runs,
// ticks it as it turns (at least every second: the registry's clock moved
// on, it is alive again after a turn), and removes it when it returns.
func TestStationLiveness(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	reg := &liveness.Registry{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	tr := &trail{}
	sc := scriptScanner{read: device.Read{Line: []byte("LP00000000000001"), At: t0}}
	st := station.New(station.Config{ID: "sort-1", Role: "sort", Classifier: classifier(t), Scanner: sc, Liveness: reg},
		&fakeDecider{tr: tr, by: map[string]rules.Decision{}}, &fakeJournal{tr: tr}, nil, stoppedClock{t0}, devObserver{tr},
		slog.New(slog.DiscardHandler))
	stop := run(t, st)
	until := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(wait); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) { // a bound on failure, not a timing assertion
				t.Fatal(what)
			}
		}
	}
	until("the station registered no heartbeat", func() bool { return reg.Len() == 1 })
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	until("the station's loop did not tick", func() bool { return len(reg.Stale(time.Minute)) == 0 })
	stop()
	if n := reg.Len(); n != 0 {
		t.Fatalf("%d heartbeats left after the station returned", n)
	}
}
