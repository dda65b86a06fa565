package drivers

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/internal/deptest"
)

type nopScanner struct{}

func (nopScanner) Run(ctx context.Context, emit func(Read), state StateFunc) error {
	<-ctx.Done()
	return nil
}

func nopScannerFactory(config.Section) (Scanner, error) { return nopScanner{}, nil }

func panics(f func()) (p bool) {
	defer func() { p = recover() != nil }()
	f()
	return false
}

func TestRegistryPanics(t *testing.T) {
	r := new(Registry)
	r.RegisterScanner("x", nopScannerFactory)
	for name, f := range map[string]func(){
		"empty scanner":     func() { r.RegisterScanner("", nopScannerFactory) },
		"duplicate scanner": func() { r.RegisterScanner("x", nopScannerFactory) },
		"nil scanner":       func() { r.RegisterScanner("y", nil) },
		"empty gate":        func() { r.RegisterGate("", gate(newSerialGate)) },
		"duplicate gate": func() {
			r.RegisterGate("g", gate(newSerialGate))
			r.RegisterGate("g", gate(newSerialGate))
		},
		"builtin twice": func() { Default().RegisterScanner("serial", nopScannerFactory) },
	} {
		if !panics(f) {
			t.Errorf("%s: no panic", name)
		}
	}
	if s, err := r.NewScanner(config.Device{Driver: "x"}); err != nil || s == nil {
		t.Fatalf("registered scanner: %v, %v", s, err)
	}
}

func TestRegistryUnknown(t *testing.T) {
	r := Default()
	_, err := r.NewScanner(config.Device{Driver: "usb-hid"})
	if !errors.Is(err, ErrUnknownDriver) || !strings.Contains(err.Error(), `"usb-hid"`) {
		t.Errorf("unknown scanner: %v", err)
	}
	_, err = r.NewGate(config.Device{Driver: "smoke-signal"})
	if !errors.Is(err, ErrUnknownDriver) || !strings.Contains(err.Error(), `"smoke-signal"`) {
		t.Errorf("unknown gate: %v", err)
	}
	if _, err := new(Registry).NewScanner(config.Device{Driver: "serial"}); !errors.Is(err, ErrUnknownDriver) {
		t.Errorf("empty registry: %v", err)
	}
}

// Factories check the configuration and open nothing: a port that does not
// exist is fine until Run.
func TestFactories(t *testing.T) {
	r := Default()
	missing := "/nonexistent/ttyUSB9"
	for _, tc := range []struct {
		name    string
		scanner *scannerCfg
		gate    *gateCfg
		wantErr string // "" : ok
	}{
		{"serial scanner", &scannerCfg{Driver: "serial", Port: missing}, nil, ""},
		{"serial scanner baud", &scannerCfg{Driver: "serial", Port: missing, Baud: 12345}, nil, "baud 12345"},
		{"serial scanner no port", &scannerCfg{Driver: "serial"}, nil, "port"},
		{"tcp-client", &scannerCfg{Driver: "tcp-client", Address: "10.0.0.9:4001"}, nil, ""},
		{"tcp-client no address", &scannerCfg{Driver: "tcp-client"}, nil, "address"},
		{"tcp-server", &scannerCfg{Driver: "tcp-server", Address: ":4001"}, nil, ""},
		{"tcp-server bad address", &scannerCfg{Driver: "tcp-server", Address: "4001"}, nil, "address"},
		{"serial scanner stx-etx", &scannerCfg{Driver: "serial", Port: missing, Framing: "stx-etx"}, nil, ""},
		{"serial scanner framing", &scannerCfg{Driver: "serial", Port: missing, Framing: "etx"}, nil, "framing"},
		{"serial scanner reconnect_max", &scannerCfg{Driver: "serial", Port: missing, ReconnectMax: -1}, nil, "reconnect_max"},
		{"tcp-client debounce", &scannerCfg{Driver: "tcp-client", Address: "10.0.0.9:4001", Debounce: -1}, nil, "debounce"},
		{"tcp-server listen", &scannerCfg{Driver: "tcp-server", Listen: ":2001", MaxReaders: 4}, nil, ""},
		{"tcp-server no listen", &scannerCfg{Driver: "tcp-server"}, nil, "listen"},
		{"tcp-server max_readers", &scannerCfg{Driver: "tcp-server", Listen: ":2001", MaxReaders: 65}, nil, "max_readers"},
		{"serial gate", nil, &gateCfg{Driver: "serial", Port: missing}, ""},
		{"serial gate reconnect_max", nil, &gateCfg{Driver: "serial", Port: missing, ReconnectMax: -1}, "reconnect_max"},
		{"modbus gate", nil, &gateCfg{Driver: "modbus", Address: "10.0.0.9:502", OpenCoil: ptr(0), AlarmCoil: ptr(1)}, ""},
		{"none gate", nil, &gateCfg{Driver: "none"}, ""},
		{"serial gate frames", nil, &gateCfg{Driver: "serial", Port: missing, Pass: `\xA0\x01\x01\xA2`, Stop: "STOP\r\n", Ack: `\x06`}, ""},
		{"serial gate bad pass", nil, &gateCfg{Driver: "serial", Port: missing, Pass: `\xZZ`}, "pass"},
		{"serial gate bad ack", nil, &gateCfg{Driver: "serial", Port: missing, Ack: `\q`}, "ack"},
		{"serial gate no port", nil, &gateCfg{Driver: "serial"}, "port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.scanner != nil {
				_, err = r.NewScanner(tc.scanner.device())
			} else {
				_, err = r.NewGate(tc.gate.device())
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// drivers knows nothing of customs, the broker or the store: of the project
// its packages depend on config, gateway/device (the types they implement),
// internal/backoff (the reconnect delays they share with the events
// connection, waited on an internal/tstime clock) and their own only, and on no MQTT, store or web library.
func TestImports(t *testing.T) {
	const mod = "github.com/cargogate/cargogate/"
	deptest.DepChecker{Pkg: "./...", BadDeps: map[string]string{
		mod + "gateway/":                      "drivers know nothing of customs; of gateway/ only the device types",
		mod + "sync":                          "drivers know nothing of the link",
		mod + "cmd":                           "drivers are below the commands",
		mod + "internal/":                     "drivers depend on config, gateway/device, internal/backoff (internal/tstime) and their own packages only",
		"github.com/eclipse/paho.mqtt.golang": "no broker in a driver",
		"go.etcd.io/bbolt":                    "no database in a driver",
		"github.com/gorilla/":                 "no web in a driver",
	}, Allow: []string{mod + "gateway/device", mod + "internal/backoff", mod + "internal/tstime"}}.Check(t)
}

// Every built-in driver's section is known to config under the same name
// and kind as its factory, and a factory refuses a section of another
// driver.
func TestSectionsRegistered(t *testing.T) {
	r := Default()
	if got := config.Drivers(config.ScannerKind); strings.Join(got, " ") != "serial tcp-client tcp-server handheld hid" {
		t.Errorf("scanner sections: %q", got)
	}
	if got := config.Drivers(config.GateKind); strings.Join(got, " ") != "serial modbus none" {
		t.Errorf("gate sections: %q", got)
	}
	for _, name := range config.Drivers(config.ScannerKind) {
		if _, err := r.NewScanner(config.Device{Driver: name}); errors.Is(err, ErrUnknownDriver) {
			t.Errorf("scanner %s: %v", name, err)
		}
	}
	for _, name := range config.Drivers(config.GateKind) {
		if _, err := r.NewGate(config.Device{Driver: name}); errors.Is(err, ErrUnknownDriver) {
			t.Errorf("gate %s: %v", name, err)
		}
	}
	_, err := r.NewGate(config.Device{Driver: "modbus", Section: &SerialGateConfig{Port: "/dev/null"}})
	if err == nil || !strings.Contains(err.Error(), "want *drivers.ModbusGateConfig") {
		t.Errorf("modbus gate with a serial section: %v", err)
	}
}
