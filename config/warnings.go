package config

import "fmt"

// Warnings lists what a valid configuration allows but an operator must
// know: settings under which a fault can leave a gate open. check-config
// prints them loudly and the gateway logs them at start. The drivers say
// which of their settings these are (Warner).
func (c *Config) Warnings() []string {
	var out []string
	if c.Outbox.RedeliverWindow != 0 {
		out = append(out, "outbox.redeliver_window: deprecated and ignored: events leave the outbox when central's events_ack names them, and are sent again after central.ack_timeout")
	}
	for i, st := range c.Stations {
		for _, d := range []struct {
			kind Kind
			dev  *Device
		}{{ScannerKind, &st.Scanner}, {GateKind, st.Gate}} {
			if d.dev == nil {
				continue
			}
			w, ok := d.dev.Section.(Warner)
			if !ok {
				continue
			}
			var p Problems
			w.Warnings(p.Under(fmt.Sprintf("stations[%d].%s", i, d.kind)))
			for _, e := range p.Errs() {
				out = append(out, fmt.Sprintf("%s: station %s: %v", e.Path, st.ID, e.Err))
			}
		}
	}
	return out
}
