package link

import (
	"time"

	"github.com/cargogate/cargogate/gateway/device"
)

// The gateway's status document (GET /api/status, `cargogate status`, the
// overview screen) is built here from the parts it shows, each seen
// through the small interface below.

// Snapshotter is the link as the status document sees it (*Link).
type Snapshotter interface{ Snapshot() Snapshot }

// TimeFloor is the gateway's clock as the status document sees it
// (*clock.Clock): the floor it never goes below and how far the wall
// clock is behind it.
type TimeFloor interface {
	Floor() time.Time
	Behind() time.Duration
}

// DeviceStates is a running station as the status document sees it
// (*station.Station).
type DeviceStates interface {
	ID() string
	Devices() map[string]device.State
}

// StationStatus is one station's entry in the status document.
type StationStatus struct {
	ID      string                  `json:"id"`
	Devices map[string]device.State `json:"devices"`
}

// GatewayStatus builds the status document: the gateway's identity and
// version, the link's Snapshot, the time floor, readiness and alarms
// (the link's view of both stores; see Snapshot) and each station's
// devices. The caller may add entries (the store sizes, the audit).
func GatewayStatus[S DeviceStates](site, gateway, version string, lk Snapshotter, clk TimeFloor, stations []S) map[string]any {
	snap := lk.Snapshot()
	out := map[string]any{
		"site": site, "gateway": gateway, "version": version,
		"link": snap, "time_floor": clk.Floor(), "clock_behind_s": clk.Behind().Seconds(),
		// Readiness and alarms (outbox nearly full, a store that cannot
		// commit) are the link's view of both stores; see Snapshot.
		"ready": snap.Ready, "store_writable": snap.StoreWritable, "alarms": snap.Alarms,
	}
	var ss []StationStatus
	for _, s := range stations {
		ss = append(ss, StationStatus{ID: s.ID(), Devices: s.Devices()})
	}
	out["stations"] = ss
	return out
}
