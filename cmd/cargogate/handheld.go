package main

import (
	"github.com/cargogate/cargogate/gateway/audit"
)

// auditPairing is the audit kind of pairings and revocations of devices.
const auditPairing = "pairing"

// pairingAudit records every pairing link made, device paired and device
// unpaired in the audit log.
func pairingAudit(aud *audit.Log) func(event string, fields map[string]any) {
	return func(event string, fields map[string]any) {
		rec := map[string]any{"event": event}
		for k, v := range fields {
			rec[k] = v
		}
		aud.Add(auditPairing, rec)
	}
}
