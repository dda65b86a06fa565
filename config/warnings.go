package config

import (
	"fmt"
	"time"
)

// Warnings lists what a valid configuration allows but an operator must
// know: settings under which a fault can leave a gate open. check-config
// prints them loudly and the gateway logs them at start.
func (c *Config) Warnings() []string {
	var out []string
	for i, st := range c.Stations {
		g := st.Gate
		if g == nil || g.Driver != "modbus" || g.Watchdog == nil || *g.Watchdog != 0 {
			continue
		}
		pulse := time.Duration(g.PulseMS) * time.Millisecond
		out = append(out, fmt.Sprintf("stations[%d].gate.watchdog: 0s: station %s's Modbus module has no communication "+
			"watchdog. If the link drops or the gateway dies during a PASS pulse, the open coil stays on (the gate open) "+
			"until the gateway reconnects and switches it off, which may be never; with a watchdog it goes off at most "+
			"pulse_ms + watchdog (%v + %v with the default) after it was switched on. Set the watchdog in the module "+
			"and here.", i, st.ID, pulse, DefaultWatchdog))
	}
	return out
}
