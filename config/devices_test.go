package config_test

import (
	"testing"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/drivers"
)

// The scanner and gate keys of docs/drivers.md, their defaults and the
// tcp-server address alias.
func TestDeviceDefaults(t *testing.T) {
	c, err := config.Load("testdata/devices.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st := c.Stations
	for i, s := range st {
		if s.Scanner.Section == nil {
			t.Errorf("stations[%d].scanner: no section", i)
		}
	}
	if s := st[0].Scanner.Section.(*drivers.SerialScannerConfig); s.Framing != "lines" || s.ReconnectMax != 10*time.Second || s.Baud != 9600 {
		t.Errorf("serial scanner: %+v", s)
	}
	if s := st[1].Scanner.Section.(*drivers.TCPClientConfig); s.Framing != "stx-etx" || s.ReconnectMax != 30*time.Second || s.Debounce != 2*time.Second {
		t.Errorf("tcp-client scanner: %+v", s)
	}
	if s := st[2].Scanner.Section.(*drivers.TCPServerConfig); s.Listen != ":2001" || s.MaxReaders != 2 || s.Framing != "lines" {
		t.Errorf("tcp-server scanner: %+v", s)
	}
	if s := st[3].Scanner.Section.(*drivers.TCPServerConfig); s.Listen != ":2002" || s.Address != "" || s.MaxReaders != 1 {
		t.Errorf("tcp-server scanner with the deprecated address: %+v", s)
	}
	if g := st[0].Gate.Section.(*drivers.SerialGateConfig); g.ReconnectMax != 10*time.Second || g.AckTimeout != 500*time.Millisecond {
		t.Errorf("serial gate: %+v", g)
	}
	if g := st[1].Gate.Section.(*drivers.ModbusGateConfig); g.CloseTimeout != 10*time.Second || g.HeartbeatInterval != time.Second ||
		g.ReconnectMax != 10*time.Second || *g.Unit != 1 || g.PulseMS != 1000 {
		t.Errorf("modbus gate: %+v", g)
	}
	if g := st[2].Gate.Section.(*drivers.ModbusGateConfig); g.CloseTimeout != 20*time.Second || g.HeartbeatInterval != 500*time.Millisecond ||
		*g.HeartbeatRegister != 100 || g.ReconnectMax != 5*time.Second {
		t.Errorf("modbus gate with heartbeat: %+v", g)
	}
	if g := st[3].Gate; g.Driver != config.NoGate || *g.Section.(*drivers.NoGateConfig) != (drivers.NoGateConfig{}) {
		t.Errorf("gate none: %+v", g)
	}
	if g := st[4].Gate.Section.(*drivers.ModbusGateConfig); g.CloseTimeout != 0 || *g.HeartbeatCoil != 7 {
		t.Errorf("modbus gate without closed_input: %+v", g)
	}
}

// A configuration built in code (the demo's) may name tcp-server's listen
// address either way.
func TestPrepareTCPServerAddress(t *testing.T) {
	c, err := config.Load("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Stations[0].Scanner = config.Device{Driver: "tcp-server", Section: &drivers.TCPServerConfig{Address: "127.0.0.1:0"}}
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	if s := c.Stations[0].Scanner.Section.(*drivers.TCPServerConfig); s.Listen != "127.0.0.1:0" || s.Address != "" {
		t.Errorf("scanner after Prepare: %+v", s)
	}
}
