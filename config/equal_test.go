package config_test

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/drivers"
	"go.yaml.in/yaml/v3"
)

// A reload keeps a station running when its configuration is unchanged
// (station.Set compares with reflect.DeepEqual): the same settings written
// on other lines, in another style, compare equal; a changed key does not.
func TestStationsCompareBySettings(t *testing.T) {
	const head = `site: PVG-W
gateway: g07
data_dir: /tmp/cargogate
central:
  broker: tcp://127.0.0.1:1883
  keys:
    central-2026a: "rC+mC5uuU2Z1eTrPggYI2YJIVbTvtx+EgepIw9kCj5g="
`
	flow := head + `stations:
  - id: gate-3
    role: gate
    scanner: {driver: tcp-server, listen: ":2001"}
    gate: {driver: modbus, address: "10.0.0.9:502", open_coil: 0, alarm_coil: 1}
`
	block := "# moved down by a comment\n" + head + `stations:
  - id: gate-3
    role: gate
    scanner:
      driver: tcp-server
      listen: ":2001"
      framing: lines
    gate:
      driver: modbus
      address: 10.0.0.9:502
      open_coil: 0
      alarm_coil: 1
      unit: 1
`
	load := func(doc string) config.Station {
		t.Helper()
		c, err := config.Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return c.Stations[0]
	}
	a, b := load(flow), load(block)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("the same settings compare unequal:\n%+v\n%+v", a, b)
	}
	c := load(strings.Replace(flow, "alarm_coil: 1", "alarm_coil: 2", 1))
	if reflect.DeepEqual(a, c) {
		t.Error("a changed alarm_coil compares equal")
	}
	if got := *c.Gate.Section.(*drivers.ModbusGateConfig).AlarmCoil; got != 2 {
		t.Errorf("alarm_coil %d", got)
	}
}

// A configuration written out (the demo writes the one it runs with) loads
// again to the same values, the drivers' sections included.
func TestWriteAndLoadAgain(t *testing.T) {
	for _, f := range []string{"testdata/full.good.yaml", "testdata/devices.good.yaml"} {
		c, err := config.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := config.Parse(out)
		if err != nil {
			t.Fatalf("%s written out does not load: %v\n%s", f, err, out)
		}
		if !reflect.DeepEqual(c.Stations, again.Stations) {
			t.Errorf("%s loads differently once written out:\n%s", f, out)
		}
	}
}

// TestLookupTimeoutRoundTrip: central.lookup_timeout keeps its meaning
// when a loaded configuration is written out and loaded again, or
// prepared twice: negative is off (no lookup), unset or 0 the 300ms
// default, any other value itself. Before, -1s was stored as 0, which the
// next load or Prepare read as "unset" and turned into 300ms: lookups came
// back on.
func TestLookupTimeoutRoundTrip(t *testing.T) {
	base, err := os.ReadFile("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		set  string
		want time.Duration
		off  bool
	}{{"-1s", -time.Second, true}, {"0s", config.DefaultLookupTimeout, false}, {"300ms", 300 * time.Millisecond, false}, {"1.5s", 1500 * time.Millisecond, false}} {
		src := strings.Replace(string(base), "central:\n", "central:\n  lookup_timeout: "+tc.set+"\n", 1)
		c, err := config.Parse([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		check := func(when string, c *config.Config) {
			t.Helper()
			if got := c.Central.LookupTimeout; got != tc.want || (got <= 0) != tc.off {
				t.Errorf("lookup_timeout %s, %s: %v, want %v (off: %v)", tc.set, when, got, tc.want, tc.off)
			}
		}
		check("loaded", c)
		if err := c.Prepare(); err != nil {
			t.Fatal(err)
		}
		check("prepared again", c)
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := config.Parse(out)
		if err != nil {
			t.Fatalf("written out, does not load: %v\n%s", err, out)
		}
		check("written out and loaded again", again)
	}
}
