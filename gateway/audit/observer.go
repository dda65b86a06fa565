package audit

import (
	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/scan"
)

// Observer appends every decision and device change to a log: it is the
// stations' observer (station.Observer) for the audit. Its calls never
// block (Add).
type Observer struct{ Log *Log }

// Decided records a decided scan (KindDecision), with the seal of a seal
// scan and the event of an arrival.
func (a Observer) Decided(o scan.Outcome) {
	rec := map[string]any{"station": o.Station, "role": o.Role, "event_id": o.EventID, "at": o.At, "code": o.Code,
		"subject": o.Subject, "pass": o.Pass, "reason": o.Reason, "basis_seq": o.BasisSeq, "offline": o.Offline, "gate": o.Gate}
	kind := KindDecision
	switch o.Kind {
	case "seal":
		rec["seal"] = o.Seal
	case "arrival":
		rec["arrival"] = o.Arrival
	}
	rec["kind"] = o.Kind
	a.Log.Add(kind, rec)
}

// Device records a device's change of state (KindDevice).
func (a Observer) Device(st, dev string, state device.State, detail string) {
	a.Log.Add(KindDevice, map[string]any{"station": st, "device": dev, "state": state, "detail": detail})
}
