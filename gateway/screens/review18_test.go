package screens

import (
	"context"
	"encoding/json"
	"runtime"

	"github.com/gorilla/websocket"
	"sync"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/scan"
)

// slowStation takes each read and decides it only when told.
type slowStation struct {
	h     *Hub
	mu    sync.Mutex
	reads []device.Read
}

func (f *slowStation) Submit(ctx context.Context, r device.Read) error {
	f.mu.Lock()
	f.reads = append(f.reads, r)
	f.mu.Unlock()
	return nil
}

func (f *slowStation) decideAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reads {
		f.h.Decided(scan.Outcome{Kind: "scan", Station: "hh", Code: string(r.Line), Pass: true, EventID: "ev-" + r.Ref, Ref: r.Ref})
	}
}

func (f *slowStation) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reads)
}

// The station took the scan but had not answered within AnswerTimeout:
// it may be decided and journalled. The answer must not be a refusal
// (which tells the page nothing was decided, so that the page forgets
// the id and a rescan is decided and journalled a second time); it says
// the scan is pending, and the same id sent again gets the decision.
func TestReview18_HandheldNoAnswerIsNotRefused(t *testing.T) {
	h, base := startHandheldHub(t, Options{AnswerTimeout: 50 * time.Millisecond})
	st := &slowStation{h: h}
	h.BindHandheld("hh", st)
	c := dialHandheld(t, base, "hh", pairDevice(t, h, "hh-1", "hh"))
	a := send(t, c, "s1", "P-1")
	if a.Outcome != nil || a.Refused != "" || !a.Pending {
		t.Fatalf("a scan taken by the station, not yet decided: %+v, want pending (not refused)", a)
	}
	st.decideAll()
	a = send(t, c, "s1", "P-1")
	if a.Outcome == nil || !a.Outcome.Pass || !a.Repeat || a.Outcome.EventID != "ev-hh-1/s1" {
		t.Fatalf("the same id sent again: %+v, want the first decision", a)
	}
	if n := st.count(); n != 1 {
		t.Errorf("the station got %d reads, want 1", n)
	}
}

// A paired device sending one id over and over (or any message) must not
// make the gateway hold a goroutine and a timer for each: the scans of a
// connection in flight are bounded, beyond that the connection is not read.
func TestReview18_HandheldInFlightBounded(t *testing.T) {
	h, base := startHandheldHub(t, Options{AnswerTimeout: time.Minute})
	st := &slowStation{h: h}
	h.BindHandheld("hh", st)
	c := dialHandheld(t, base, "hh", pairDevice(t, h, "hh-1", "hh"))
	before := runtime.NumGoroutine()
	b, _ := json.Marshal(scanMsg{Type: "scan", ID: "s1", Code: "P-1"})
	for range 500 {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
	}
	peak := 0
	for range 50 { // up to a second for the gateway to read them
		peak = max(peak, runtime.NumGoroutine()-before)
		if peak > 100 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if peak > 100 {
		t.Errorf("500 messages of one connection made %d goroutines", peak)
	}
	st.decideAll()
}
