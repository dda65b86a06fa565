package config_test

import (
	"reflect"
	"strings"
	"testing"

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
