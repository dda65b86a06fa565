package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// check-config says loudly, without failing, that a Modbus gate's module
// watchdog is off; with the default (the watchdog on) it says nothing.
func TestCheckConfigWatchdogWarning(t *testing.T) {
	const base = `site: PVG-W
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
    gate: {driver: modbus, address: "10.0.0.9:502", open_coil: 0, alarm_coil: 1%s}
`
	for _, tc := range []struct {
		name, extra string
		warn        bool
	}{
		{"default", "", false},
		{"watchdog set", ", watchdog: 5s", false},
		{"watchdog off", ", watchdog: 0s", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cargogate.yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(base, "%s", tc.extra, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{"check-config", path}, &stdout, &stderr); err != nil {
				t.Fatalf("check-config: %v\n%s", err, stderr.String())
			}
			if !strings.Contains(stdout.String(), "ok") {
				t.Fatalf("stdout %q", stdout.String())
			}
			warned := strings.Contains(stderr.String(), "WARNING") && strings.Contains(stderr.String(), "stations[0].gate.watchdog")
			if warned != tc.warn {
				t.Fatalf("warned %v, want %v; stderr:\n%s", warned, tc.warn, stderr.String())
			}
			if tc.warn {
				t.Logf("%s", stderr.String())
			}
		})
	}
}
