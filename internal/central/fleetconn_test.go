package central

import (
	"testing"
	"time"

	"github.com/cargogate/cargogate/internal/testenv"
)

// Central's fleet view says whether central is connected to the broker:
// its page's "not connected — states may be stale" banner is for when it
// is not, not for ever.
func TestFleetViewConnected(t *testing.T) {
	m := testenv.NewMosquitto(t)
	h := start(t, m.URL(), nil)
	if v := h.c.fleet.View(); !v.Connected {
		t.Fatal("central connected and subscribed, its fleet view says not connected")
	}
	m.Kill()
	deadline := time.Now().Add(waitFor)
	for h.c.fleet.View().Connected {
		if time.Now().After(deadline) {
			t.Fatalf("broker killed, the fleet view still says connected after %v", waitFor)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
