package screens

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/ident"
	"github.com/cargogate/cargogate/gateway/rules"
	"github.com/cargogate/cargogate/gateway/scan"
	"github.com/cargogate/cargogate/gateway/station"
)

// Fakes at the station's narrow interfaces: the store, journal and gate
// answer at once, so what is measured is the station and the hub.

type passAll struct{}

func (passAll) Decide(s customs.Subject, now time.Time) rules.Decision {
	return rules.Decision{Pass: true, Reason: customs.ReasonReleased, BasisSeq: 1,
		Chain: []rules.Step{{Subject: s, Seq: 1, What: "released"}}}
}

type memJournal struct{}

func (memJournal) Append(context.Context, []byte) (uint64, error) { return 1, nil }

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// timedGate records when each signal arrives.
type timedGate struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

func (g *timedGate) Run(ctx context.Context, _ device.StateFunc) error { <-ctx.Done(); return nil }
func (g *timedGate) Signal(context.Context, bool) error {
	g.mu.Lock()
	g.at = time.Now()
	g.mu.Unlock()
	return g.err
}

func newTestStation(t testing.TB, obs station.Observer) (*station.Station, *timedGate) {
	cls, err := ident.New(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &timedGate{}
	st := station.New(station.Config{ID: "gate-3", Role: "gate", Classifier: cls, Gate: g},
		passAll{}, memJournal{}, nil, wallClock{}, obs, slog.New(slog.DiscardHandler))
	return st, g
}

// screen is one open screen that records when each scan reached it.
type screen struct {
	conn *websocket.Conn
	mu   sync.Mutex
	got  map[string]time.Duration // event id → scan to screen
}

// openScreens opens n screens. With record false they only read and
// discard, as cheaply as possible, so that a benchmark on a small machine
// measures the gateway's side rather than the test's own readers.
func openScreens(t testing.TB, srv string, n int, record bool) []*screen {
	var out []*screen
	for range n {
		c, _, err := websocket.DefaultDialer.Dial(srv, nil)
		if err != nil {
			t.Fatalf("screen %d: %v", len(out), err)
		}
		s := &screen{conn: c, got: map[string]time.Duration{}}
		go func() {
			for !record {
				_, r, err := c.NextReader()
				if err != nil {
					return
				}
				io.Copy(io.Discard, r)
			}
			for {
				_, b, err := c.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now()
				var m struct {
					Type    string       `json:"type"`
					Outcome scan.Outcome `json:"outcome"`
				}
				if json.Unmarshal(b, &m) == nil && m.Type == "decision" {
					s.mu.Lock()
					s.got[m.Outcome.EventID] = now.Sub(m.Outcome.At)
					s.mu.Unlock()
				}
			}
		}()
		out = append(out, s)
	}
	t.Cleanup(func() {
		for _, s := range out {
			s.conn.Close()
		}
	})
	return out
}

type figures []time.Duration

func (f figures) String() string {
	if len(f) == 0 {
		return "no samples"
	}
	s := slices.Clone(f)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("p50 %8v  p99 %8v  max %8v  (n=%d)", q(0.50).Round(time.Microsecond),
		q(0.99).Round(time.Microsecond), s[len(s)-1].Round(time.Microsecond), len(s))
}

// scanPaced runs n scans through the station, one every gap, and returns
// Handle's duration and the scan-to-gate time of each, and the event ids.
func scanPaced(st *station.Station, g *timedGate, n int, gap time.Duration) (handle, toGate figures, ids []string) {
	ctx := context.Background()
	for range n {
		start := time.Now()
		o := st.Handle(ctx, device.Read{Line: []byte("RR123456785CN"), At: start})
		handle = append(handle, time.Since(start))
		g.mu.Lock()
		toGate = append(toGate, g.at.Sub(start))
		g.mu.Unlock()
		ids = append(ids, o.EventID)
		time.Sleep(gap)
	}
	return handle, toGate, ids
}

// TestFanOutLatency measures, with 50 screens open, how long a scan takes
// to reach every screen, and the station's scan-to-gate latency with no
// screen and with 50. It prints the figures and asserts only that every
// screen got every scan: wall time is not asserted on.
//
//	go test ./gateway/screens -run FanOutLatency -v
func TestFanOutLatency(t *testing.T) {
	const nScreens, nScans, gap = 50, 200, 5 * time.Millisecond
	h, srv := startHub(t, Options{Stations: []StationInfo{{ID: "gate-3", Role: "gate", Gate: true}}})
	st, g := newTestStation(t, h)

	handle0, gate0, _ := scanPaced(st, g, nScans, gap)

	screens := openScreens(t, wsURL(srv, "?station=gate-3"), nScreens, true)
	waitFor(t, func() bool { return h.Overview().Screens == nScreens })
	handle50, gate50, ids := scanPaced(st, g, nScans, gap)

	var all, worst figures // every (scan, screen); per scan, its slowest screen
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range screens {
		for {
			s.mu.Lock()
			n := len(s.got)
			s.mu.Unlock()
			if n >= nScans || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, id := range ids {
		var w time.Duration
		for i, s := range screens {
			s.mu.Lock()
			d, ok := s.got[id]
			s.mu.Unlock()
			if !ok {
				t.Fatalf("screen %d never got scan %s", i, id)
			}
			all = append(all, d)
			w = max(w, d)
		}
		worst = append(worst, w)
	}
	t.Logf("%d scans, one every %v, station with an in-memory store, journal and gate", nScans, gap)
	t.Logf("Handle, no screen open:       %v", handle0)
	t.Logf("Handle, %d screens open:      %v", nScreens, handle50)
	t.Logf("scan to gate, no screen:      %v", gate0)
	t.Logf("scan to gate, %d screens:     %v", nScreens, gate50)
	t.Logf("scan to each screen:          %v", all)
	t.Logf("scan to its slowest screen:   %v", worst)
	if d := h.dropped.Load() + h.slow.Load(); d != 0 {
		t.Errorf("%d outcomes or screens dropped", d)
	}
}

// BenchmarkHandle is the station's Handle with 0 and 50 screens open.
//
//	go test ./gateway/screens -run '^$' -bench Handle -benchtime 2000x
func BenchmarkHandle(b *testing.B) {
	for _, n := range []int{0, 50} {
		b.Run(fmt.Sprintf("screens=%d", n), func(b *testing.B) {
			h, srv := startHub(b, Options{Stations: []StationInfo{{ID: "gate-3", Role: "gate", Gate: true}}, SendBuffer: 4096})
			st, _ := newTestStation(b, h)
			openScreens(b, wsURL(srv, "?station=gate-3"), n, false)
			waitFor(b, func() bool { return h.Overview().Screens == n })
			ctx := context.Background()
			line := []byte("RR123456785CN")
			b.ResetTimer()
			for range b.N {
				st.Handle(ctx, device.Read{Line: line, At: time.Now()})
			}
		})
	}
}
