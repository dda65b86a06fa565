package config

import (
	"testing"
	"time"
)

// The scanner and gate keys of docs/drivers.md, their defaults and the
// tcp-server address alias.
func TestDeviceDefaults(t *testing.T) {
	c, err := Load("testdata/devices.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st := c.Stations
	for i, s := range st {
		if s.Scanner.ReconnectMax == 0 || s.Scanner.Framing == "" {
			t.Errorf("stations[%d].scanner: no defaults: %+v", i, s.Scanner)
		}
	}
	if s := st[0].Scanner; s.Framing != "lines" || s.ReconnectMax != 10*time.Second || s.MaxReaders != 0 {
		t.Errorf("serial scanner: %+v", s)
	}
	if s := st[1].Scanner; s.Framing != "stx-etx" || s.ReconnectMax != 30*time.Second || s.Debounce != 2*time.Second {
		t.Errorf("tcp-client scanner: %+v", s)
	}
	if s := st[2].Scanner; s.Listen != ":2001" || s.MaxReaders != 2 {
		t.Errorf("tcp-server scanner: %+v", s)
	}
	if s := st[3].Scanner; s.Listen != ":2002" || s.Address != "" || s.MaxReaders != 1 {
		t.Errorf("tcp-server scanner with the deprecated address: %+v", s)
	}
	if g := st[0].Gate; g.ReconnectMax != 10*time.Second || g.AckTimeout != 500*time.Millisecond || g.HeartbeatInterval != 0 {
		t.Errorf("serial gate: %+v", g)
	}
	if g := st[1].Gate; g.CloseTimeout != 10*time.Second || g.HeartbeatInterval != time.Second ||
		g.ReconnectMax != 10*time.Second || g.Unit != 1 || g.PulseMS != 1000 {
		t.Errorf("modbus gate: %+v", g)
	}
	if g := st[2].Gate; g.CloseTimeout != 20*time.Second || g.HeartbeatInterval != 500*time.Millisecond ||
		*g.HeartbeatRegister != 100 || g.ReconnectMax != 5*time.Second {
		t.Errorf("modbus gate with heartbeat: %+v", g)
	}
	if g := st[3].Gate; *g != (Gate{Driver: "none"}) {
		t.Errorf("gate none got defaults: %+v", g)
	}
	if g := st[4].Gate; g.CloseTimeout != 0 || *g.HeartbeatCoil != 7 {
		t.Errorf("modbus gate without closed_input: %+v", g)
	}
}

// A configuration built in code (the demo's) may name tcp-server's listen
// address either way.
func TestPrepareTCPServerAddress(t *testing.T) {
	c, err := Load("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Stations[0].Scanner = Scanner{Driver: "tcp-server", Address: "127.0.0.1:0"}
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	if s := c.Stations[0].Scanner; s.Listen != "127.0.0.1:0" || s.Address != "" {
		t.Errorf("scanner after Prepare: %+v", s)
	}
}
