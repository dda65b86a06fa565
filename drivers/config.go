package drivers

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cargogate/cargogate/config"
)

// Each driver owns its configuration section (the keys under a station's
// scanner or gate besides driver): its type here, its defaults and its
// checks. They are registered with config (registry.go), which decodes a
// section strictly into its type, so that a key of another driver, or a
// misspelt one, is refused by config.Load with its path and line.

// Defaults of the drivers' keys (docs/drivers.md), applied by each
// section's SetDefaults, and again by the factories to the zero values of
// a section built in code.
const (
	DefaultBaud         = 9600
	DefaultFraming      = "lines"
	DefaultMaxReaders   = 1
	DefaultReconnectMax = 10 * time.Second
	DefaultPass         = "PASS\r\n"
	DefaultStop         = "STOP\r\n"
	DefaultAckTimeout   = 500 * time.Millisecond
	DefaultUnit         = 1
	DefaultPulseMS      = 1000
	DefaultCloseTimeout = 10 * time.Second
	// DefaultHeartbeatInterval is how often an idle Modbus gate talks to
	// its module.
	DefaultHeartbeatInterval = time.Second
	// DefaultWatchdog is the Modbus I/O module's communication watchdog
	// the gateway counts on (gate key watchdog): the module switches its
	// outputs off this long after the gateway's last request.
	DefaultWatchdog = 3 * time.Second
)

// Bauds are the serial speeds a configuration may set.
var Bauds = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}

// Framings are the scanner framings (drivers/lines).
var Framings = []string{"lines", "stx-etx"}

// ScanConfig are the keys every scanner driver takes.
type ScanConfig struct {
	// Framing is lines (CR, LF or CRLF; STX…ETX accepted too) or stx-etx
	// (only STX…ETX framed codes; bytes outside a frame are dropped).
	// Default lines.
	Framing string `yaml:"framing"`
	// Debounce drops the same code read again within this window. Default
	// 0: off.
	Debounce time.Duration `yaml:"debounce"`
	// ReconnectMax caps the backoff between attempts to reopen the device
	// (100ms doubling up to it, ±20% jitter). Default 10s.
	ReconnectMax time.Duration `yaml:"reconnect_max"`
}

func (s *ScanConfig) setDefaults() {
	if s.Framing == "" {
		s.Framing = DefaultFraming
	}
	if s.ReconnectMax == 0 {
		s.ReconnectMax = DefaultReconnectMax
	}
}

func (s *ScanConfig) check(p *config.Problems) {
	if s.Debounce < 0 {
		p.Add("debounce", "must not be negative (got %v)", s.Debounce)
	}
	if !slices.Contains(Framings, s.Framing) {
		p.Add("framing", "must be one of %s (got %q)", strings.Join(Framings, ", "), s.Framing)
	}
	checkReconnectMax(p, s.ReconnectMax)
}

// SerialScannerConfig is the section of scanner driver serial.
type SerialScannerConfig struct {
	// Port is the serial device, a plain name such as /dev/ttyUSB0 or a
	// stable udev path such as /dev/serial/by-id/…. Required.
	Port string `yaml:"port"`
	// Baud is the serial speed. Default 9600.
	Baud       int `yaml:"baud"`
	ScanConfig `yaml:",inline"`
}

// SetDefaults implements config.Section.
func (s *SerialScannerConfig) SetDefaults() {
	s.ScanConfig.setDefaults()
	if s.Baud == 0 {
		s.Baud = DefaultBaud
	}
}

// Check implements config.Section.
func (s *SerialScannerConfig) Check(p *config.Problems) {
	s.ScanConfig.check(p)
	if s.Port == "" {
		p.Add("port", "required by driver serial")
	}
	checkBaud(p, s.Baud)
}

// TCPClientConfig is the section of scanner driver tcp-client.
type TCPClientConfig struct {
	// Address is the reader's host:port the gateway dials. Required.
	Address    string `yaml:"address"`
	ScanConfig `yaml:",inline"`
}

// SetDefaults implements config.Section.
func (s *TCPClientConfig) SetDefaults() { s.ScanConfig.setDefaults() }

// Check implements config.Section.
func (s *TCPClientConfig) Check(p *config.Problems) {
	s.ScanConfig.check(p)
	if s.Address == "" {
		p.Add("address", "required by driver tcp-client (host:port)")
	} else if err := config.HostPort(s.Address, true); err != nil {
		p.Wrap("address", err)
	}
}

// TCPServerConfig is the section of scanner driver tcp-server.
type TCPServerConfig struct {
	// Listen is the host:port readers dial in to, e.g. ":2001". Required.
	Listen string `yaml:"listen"`
	// Address is the deprecated name of Listen; SetDefaults moves it there.
	Address string `yaml:"address"`
	// MaxReaders is how many readers may be connected at once; one more
	// replaces the one connected longest. Default 1; at most 64.
	MaxReaders int `yaml:"max_readers"`
	ScanConfig `yaml:",inline"`
}

// SetDefaults implements config.Section.
func (s *TCPServerConfig) SetDefaults() {
	s.ScanConfig.setDefaults()
	if s.Listen == "" {
		s.Listen, s.Address = s.Address, ""
	}
	if s.MaxReaders == 0 {
		s.MaxReaders = DefaultMaxReaders
	}
}

// Check implements config.Section.
func (s *TCPServerConfig) Check(p *config.Problems) {
	s.ScanConfig.check(p)
	if s.Address != "" { // both set: SetDefaults moved a lone address to listen
		p.Add("address", "not used with listen (address is the deprecated name of listen for driver tcp-server)")
	}
	if s.MaxReaders < 1 || s.MaxReaders > maxReaders {
		p.Add("max_readers", "must be 1..%d (got %d)", maxReaders, s.MaxReaders)
	}
	if s.Listen == "" {
		p.Add("listen", "required by driver tcp-server (host:port)")
	} else if err := config.HostPort(s.Listen, false); err != nil {
		p.Wrap("listen", err)
	}
}

// SerialGateConfig is the section of gate driver serial.
type SerialGateConfig struct {
	// Port is the serial device. Required.
	Port string `yaml:"port"`
	// Baud is the serial speed. Default 9600.
	Baud int `yaml:"baud"`
	// Pass and Stop are the frames written, with \r, \n and \xHH escapes
	// (DecodeFrame). Defaults "PASS\r\n" and "STOP\r\n".
	Pass string `yaml:"pass"`
	Stop string `yaml:"stop"`
	// Ack, when set, is the reply expected within AckTimeout (default
	// 500ms).
	Ack        string        `yaml:"ack"`
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// ReconnectMax caps the backoff between attempts to reopen the port.
	// Default 10s.
	ReconnectMax time.Duration `yaml:"reconnect_max"`
}

// SetDefaults implements config.Section.
func (g *SerialGateConfig) SetDefaults() {
	if g.ReconnectMax == 0 {
		g.ReconnectMax = DefaultReconnectMax
	}
	if g.Baud == 0 {
		g.Baud = DefaultBaud
	}
	if g.Pass == "" {
		g.Pass = DefaultPass
	}
	if g.Stop == "" {
		g.Stop = DefaultStop
	}
	if g.AckTimeout == 0 {
		g.AckTimeout = DefaultAckTimeout
	}
}

// Check implements config.Section.
func (g *SerialGateConfig) Check(p *config.Problems) {
	if g.Port == "" {
		p.Add("port", "required by driver serial")
	}
	checkBaud(p, g.Baud)
	pass, errPass := DecodeFrame(g.Pass)
	if errPass != nil {
		p.Wrap("pass", errPass)
	} else if len(pass) == 0 {
		p.Add("pass", "must not be empty")
	}
	stop, errStop := DecodeFrame(g.Stop)
	if errStop != nil {
		p.Wrap("stop", errStop)
	} else if len(stop) == 0 {
		p.Add("stop", "must not be empty")
	}
	if errPass == nil && errStop == nil && string(pass) == string(stop) {
		p.Add("stop", "must differ from pass (%q)", g.Pass)
	}
	if g.Ack != "" {
		if _, err := DecodeFrame(g.Ack); err != nil {
			p.Wrap("ack", err)
		}
	}
	if g.AckTimeout < 0 {
		p.Add("ack_timeout", "must not be negative (got %v)", g.AckTimeout)
	}
	checkReconnectMax(p, g.ReconnectMax)
}

// ModbusGateConfig is the section of gate driver modbus.
type ModbusGateConfig struct {
	// Address is the I/O module's host:port. Required.
	Address string `yaml:"address"`
	// Unit is the Modbus unit id, 0..255. Default 1 (nil: unset; an
	// explicit 0 is kept).
	Unit *int `yaml:"unit"`
	// OpenCoil and AlarmCoil are the coils pulsed to open the gate and
	// switched on to sound the alarm, 0..65535. Required, no default.
	OpenCoil  *int `yaml:"open_coil"`
	AlarmCoil *int `yaml:"alarm_coil"`
	// ClosedInput is the discrete input that reads the gate closed.
	// Optional.
	ClosedInput *int `yaml:"closed_input"`
	// PulseMS is how long the open coil stays on, in milliseconds.
	// Default 1000.
	PulseMS int `yaml:"pulse_ms"`
	// CloseTimeout (with ClosedInput): how long after the open pulse ends
	// the gate may still read open before it is reported left open (a
	// fault). Default 10s.
	CloseTimeout time.Duration `yaml:"close_timeout"`
	// HeartbeatInterval: how often the driver talks to the module when
	// idle, writing HeartbeatRegister or toggling HeartbeatCoil when set
	// (for a module whose watchdog drops its outputs when the writes
	// stop), else reading back. Default 1s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// HeartbeatRegister: holding register written with a counter at each
	// heartbeat. Optional; not with HeartbeatCoil.
	HeartbeatRegister *int `yaml:"heartbeat_register"`
	// HeartbeatCoil: coil toggled at each heartbeat. Optional.
	HeartbeatCoil *int `yaml:"heartbeat_coil"`
	// Watchdog is the I/O module's communication watchdog as set in the
	// module: it switches its outputs off this long after the last
	// request, so that a pulse cannot outlive a dead gateway or a lost
	// link by more than this. Default 3s; must be at least twice
	// heartbeat_interval. An explicit 0s declares a module without one:
	// allowed, but warned about (Warnings), since an open coil can then
	// stay on until the gateway reconnects, which may be never.
	Watchdog *time.Duration `yaml:"watchdog"`
	// ReconnectMax caps the backoff between attempts to reconnect.
	// Default 10s.
	ReconnectMax time.Duration `yaml:"reconnect_max"`
}

// SetDefaults implements config.Section.
func (g *ModbusGateConfig) SetDefaults() {
	if g.ReconnectMax == 0 {
		g.ReconnectMax = DefaultReconnectMax
	}
	if g.Unit == nil {
		u := DefaultUnit
		g.Unit = &u
	}
	if g.PulseMS == 0 {
		g.PulseMS = DefaultPulseMS
	}
	if g.CloseTimeout == 0 && g.ClosedInput != nil {
		g.CloseTimeout = DefaultCloseTimeout
	}
	if g.HeartbeatInterval == 0 {
		g.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if g.Watchdog == nil {
		w := DefaultWatchdog
		g.Watchdog = &w
	}
}

// Check implements config.Section.
func (g *ModbusGateConfig) Check(p *config.Problems) {
	if g.Address == "" {
		p.Add("address", "required by driver modbus (host:port)")
	} else if err := config.HostPort(g.Address, true); err != nil {
		p.Wrap("address", err)
	}
	if u := ptrOr(g.Unit, DefaultUnit); u < 0 || u > 255 {
		p.Add("unit", "must be 0..255 (got %d)", u)
	}
	coil := func(key string, v *int, required bool) {
		switch {
		case v == nil && required:
			p.Add(key, "required by driver modbus (no default)")
		case v != nil && (*v < 0 || *v > 65535):
			p.Add(key, "must be 0..65535 (got %d)", *v)
		}
	}
	coil("open_coil", g.OpenCoil, true)
	coil("alarm_coil", g.AlarmCoil, true)
	coil("closed_input", g.ClosedInput, false)
	if g.OpenCoil != nil && g.AlarmCoil != nil && *g.OpenCoil == *g.AlarmCoil {
		p.Add("alarm_coil", "must differ from open_coil (both %d)", *g.AlarmCoil)
	}
	if g.PulseMS <= 0 {
		p.Add("pulse_ms", "must be > 0 milliseconds (got %d)", g.PulseMS)
	}
	coil("heartbeat_register", g.HeartbeatRegister, false)
	coil("heartbeat_coil", g.HeartbeatCoil, false)
	if hc := g.HeartbeatCoil; hc != nil {
		if g.HeartbeatRegister != nil {
			p.Add("heartbeat_coil", "not with heartbeat_register: set one or neither")
		}
		if (g.OpenCoil != nil && *hc == *g.OpenCoil) || (g.AlarmCoil != nil && *hc == *g.AlarmCoil) {
			p.Add("heartbeat_coil", "must differ from open_coil and alarm_coil (got %d)", *hc)
		}
	}
	if g.HeartbeatInterval < 10*time.Millisecond || g.HeartbeatInterval > time.Minute {
		p.Add("heartbeat_interval", "must be 10ms..1m (got %v)", g.HeartbeatInterval)
	}
	if w := g.Watchdog; w != nil {
		switch {
		case *w < 0:
			p.Add("watchdog", "must not be negative (got %v)", *w)
		case *w > 0 && *w < 2*g.HeartbeatInterval:
			p.Add("watchdog", "must be at least twice heartbeat_interval %v, or the module drops its outputs between heartbeats (got %v; 0s: the module has none)", g.HeartbeatInterval, *w)
		}
	}
	switch {
	case g.ClosedInput == nil && g.CloseTimeout != 0:
		p.Add("close_timeout", "needs closed_input")
	case g.ClosedInput != nil && g.CloseTimeout <= 0:
		p.Add("close_timeout", "must be > 0 (got %v)", g.CloseTimeout)
	}
	checkReconnectMax(p, g.ReconnectMax)
}

// Warnings implements config.Warner: a module without a watchdog.
func (g *ModbusGateConfig) Warnings(p *config.Problems) {
	if g.Watchdog == nil || *g.Watchdog != 0 {
		return
	}
	pulse := time.Duration(g.PulseMS) * time.Millisecond
	p.Add("watchdog", "0s: the Modbus module has no communication "+
		"watchdog. If the link drops or the gateway dies during a PASS pulse, the open coil stays on (the gate open) "+
		"until the gateway reconnects and switches it off, which may be never; with a watchdog it goes off at most "+
		"pulse_ms + watchdog (%v + %v with the default) after it was switched on. Set the watchdog in the module "+
		"and here.", pulse, DefaultWatchdog)
}

// NoGateConfig is the section of gate driver none (a station with screens
// only): it has no keys.
type NoGateConfig struct{}

// SetDefaults implements config.Section.
func (*NoGateConfig) SetDefaults() {}

// Check implements config.Section.
func (*NoGateConfig) Check(*config.Problems) {}

// Compile-time guards: every section is a config.Section.
var (
	_ config.Section = (*SerialScannerConfig)(nil)
	_ config.Section = (*TCPClientConfig)(nil)
	_ config.Section = (*TCPServerConfig)(nil)
	_ config.Section = (*SerialGateConfig)(nil)
	_ config.Section = (*ModbusGateConfig)(nil)
	_ config.Section = (*NoGateConfig)(nil)
	_ config.Warner  = (*ModbusGateConfig)(nil)
)

// checkReconnectMax checks a driver's backoff cap: long enough not to
// hammer a device, short enough that a device plugged back in is seen soon.
func checkReconnectMax(p *config.Problems, d time.Duration) {
	if d < 100*time.Millisecond || d > 10*time.Minute {
		p.Add("reconnect_max", "must be 100ms..10m (got %v)", d)
	}
}

func checkBaud(p *config.Problems, b int) {
	if !slices.Contains(Bauds, b) {
		s := make([]string, len(Bauds))
		for i, v := range Bauds {
			s[i] = strconv.Itoa(v)
		}
		p.Add("baud", "must be one of %s (got %d)", strings.Join(s, ", "), b)
	}
}

// DecodeFrame turns a gate frame as configured into the bytes written
// (PROTOCOL.md §8). It understands the escapes \r, \n, \\ and \xHH (two hex
// digits), as written in a single-quoted YAML string or a plain scalar; any
// other byte, real control bytes included (a double-quoted YAML "PASS\r\n"
// arrives already decoded), stands for itself.
func DecodeFrame(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("frame %q: lone \\ at the end", s)
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case '\\':
			out = append(out, '\\')
		case 'x':
			if i+3 > len(s) {
				return nil, fmt.Errorf("frame %q: \\x needs two hex digits", s)
			}
			b, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("frame %q: \\x%s: not two hex digits", s, s[i+1:i+3])
			}
			out = append(out, byte(b))
			i += 2
		default:
			return nil, fmt.Errorf("frame %q: unknown escape \\%c (use \\r, \\n, \\\\ or \\xHH)", s, s[i])
		}
	}
	return out, nil
}
