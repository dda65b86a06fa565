package link

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/device"
)

type fakeSnap Snapshot

func (f fakeSnap) Snapshot() Snapshot { return Snapshot(f) }

type fakeFloor struct {
	floor  time.Time
	behind time.Duration
}

func (f fakeFloor) Floor() time.Time      { return f.floor }
func (f fakeFloor) Behind() time.Duration { return f.behind }

type fakeStation struct {
	id   string
	devs map[string]device.State
}

func (f fakeStation) ID() string                       { return f.id }
func (f fakeStation) Devices() map[string]device.State { return f.devs }

// The status document carries the identity, the link's snapshot with its
// readiness and alarms at the top, the time floor and each station's
// devices, under the names the screens and `cargogate status` read.
func TestGatewayStatus(t *testing.T) {
	floor := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	snap := Snapshot{Online: true, Watermark: 7, Ready: false, StoreWritable: false, Alarms: []string{"store: disk full"}}
	doc := GatewayStatus("PVG-W", "g07", "1.2.3", fakeSnap(snap), fakeFloor{floor, 90 * time.Second},
		[]fakeStation{{"gate-3", map[string]device.State{"scanner": device.Up, "gate": device.Down}}, {"arr-1", nil}})
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"site": "PVG-W", "gateway": "g07", "version": "1.2.3",
		"time_floor": "2026-11-27T09:00:00Z", "clock_behind_s": 90.0,
		"ready": false, "store_writable": false, "alarms": []any{"store: disk full"},
		"stations": []any{
			map[string]any{"id": "gate-3", "devices": map[string]any{"scanner": "up", "gate": "down"}},
			map[string]any{"id": "arr-1", "devices": nil},
		},
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	link, _ := got["link"].(map[string]any)
	if link["online"] != true || link["applied_seq"] != 7.0 {
		t.Errorf("link = %v, want the snapshot (online, applied_seq 7)", link)
	}
	if len(got) != len(want)+1 {
		t.Errorf("keys %d, want %d: %v", len(got), len(want)+1, got)
	}
}
