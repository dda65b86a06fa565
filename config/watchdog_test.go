package config_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/drivers"
)

const watchdogBase = `site: PVG-W
gateway: g07
data_dir: /tmp/cargogate
central:
  broker: tcp://127.0.0.1:1883
  keys:
    central-2026a: "rC+mC5uuU2Z1eTrPggYI2YJIVbTvtx+EgepIw9kCj5g="
stations:
  - id: gate-3
    role: gate
    scanner: {driver: serial, port: /dev/ttyUSB0}
    gate: {GATE}
`

func parseGate(gate string) (*config.Config, error) {
	return config.Parse([]byte(strings.Replace(watchdogBase, "{GATE}", gate, 1)))
}

// A Modbus gate counts on the module's watchdog unless told otherwise: the
// default is on (3s); 0s turns it off and is warned about.
func TestModbusWatchdog(t *testing.T) {
	const modbus = `{driver: modbus, address: "10.0.0.9:502", open_coil: 0, alarm_coil: 1`
	c, err := parseGate(modbus + `}`)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Stations[0].Gate.Section.(*drivers.ModbusGateConfig).Watchdog; w == nil || *w != drivers.DefaultWatchdog || drivers.DefaultWatchdog != 3*time.Second {
		t.Fatalf("default watchdog %v, want %v", w, drivers.DefaultWatchdog)
	}
	if ws := c.Warnings(); len(ws) != 0 {
		t.Fatalf("warnings with the watchdog on: %q", ws)
	}

	c, err = parseGate(modbus + `, watchdog: 0s}`)
	if err != nil {
		t.Fatal(err)
	}
	if ws := c.Warnings(); len(ws) != 1 || !strings.Contains(ws[0], "stations[0].gate.watchdog") || !strings.Contains(ws[0], "may be never") {
		t.Fatalf("warnings with the watchdog off: %q", ws)
	}

	for _, tc := range []struct{ gate, want string }{
		{modbus + `, watchdog: -1s}`, "watchdog: must not be negative"},
		{modbus + `, watchdog: 1500ms}`, "watchdog: must be at least twice heartbeat_interval"},
		{modbus + `, heartbeat_interval: 2s, watchdog: 3s}`, "watchdog: must be at least twice heartbeat_interval"},
		{`{driver: serial, port: /dev/ttyUSB1, watchdog: 3s}`, "watchdog"},
	} {
		if _, err := parseGate(tc.gate); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.gate, err, tc.want)
		}
	}
}

// central.ack_timeout (amendment 3): default 30s, 1s..1h; the former
// outbox.redeliver_window is still accepted but warned about.
func TestAckTimeoutAndDeprecatedRedeliverWindow(t *testing.T) {
	c, err := parseGate(`{driver: modbus, address: "10.0.0.9:502", open_coil: 0, alarm_coil: 1}`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Central.AckTimeout != 30*time.Second {
		t.Fatalf("default ack_timeout %v", c.Central.AckTimeout)
	}
	for _, bad := range []time.Duration{500 * time.Millisecond, 2 * time.Hour, -time.Second} {
		c.Central.AckTimeout = bad
		if err := c.Validate(); err == nil || !strings.Contains(fmt.Sprint(err), "central.ack_timeout") {
			t.Errorf("ack_timeout %v: %v", bad, err)
		}
	}
	c.Central.AckTimeout = 30 * time.Second
	c.Outbox.RedeliverWindow = 10 * time.Second
	if ws := c.Warnings(); len(ws) != 1 || !strings.Contains(ws[0], "outbox.redeliver_window") {
		t.Fatalf("warnings: %q", ws)
	}
}
