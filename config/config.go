// Package config is cargogate's configuration: strict YAML decoded into typed
// values, defaults kept in one place, and Validate reporting every problem by
// its key path.
package config

import "time"

// Config is one gateway's configuration file.
type Config struct {
	// Site is the terminal site (§1 of the protocol), e.g. "PVG-W".
	Site string `yaml:"site"`
	// Gateway is this gateway's name within the site, e.g. "g07".
	Gateway string `yaml:"gateway"`
	// DataDir holds the stores and the gateway's signing key.
	DataDir   string      `yaml:"data_dir"`
	Central   Central     `yaml:"central"`
	HTTP      HTTP        `yaml:"http"`
	Log       Log         `yaml:"log"`
	Outbox    Outbox      `yaml:"outbox"`
	Retention Retention   `yaml:"retention"`
	Ident     Identifiers `yaml:"identifiers"`
	// Stations are the scanning points this gateway serves.
	Stations []Station `yaml:"stations"`
}

// Central is the link to central customs.
type Central struct {
	// Broker is the MQTT broker URL: tcp://host:port or ssl://host:port.
	Broker string `yaml:"broker"`
	// Keys are the trusted central signing keys: kid → base64 of the raw
	// 32-byte Ed25519 public key.
	Keys map[string]string `yaml:"keys"`
	// Username and Password authenticate to the broker; empty: none.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// CAFile, CertFile and KeyFile configure TLS for ssl:// brokers.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// GapGrace is how long a gap in seqs may stay open before resync.
	// Default 2s.
	GapGrace time.Duration `yaml:"gap_grace"`
	// ResyncTimeout is how long to wait for replay_done before asking again.
	// Default 30s.
	ResyncTimeout time.Duration `yaml:"resync_timeout"`
	// LookupTimeout bounds the wait for a lookup reply. Default 300ms; 0
	// after defaults only if set to a negative value: lookups disabled.
	LookupTimeout time.Duration `yaml:"lookup_timeout"`
}

// HTTP is the screens and status server.
type HTTP struct {
	// Listen is the address of the HTTP server; empty: no server.
	Listen string `yaml:"listen"`
	// AllowedOrigins are origins (scheme://host[:port]) other than the
	// server's own from which a browser may open the screens' WebSocket;
	// their host names are also accepted in the Host header (DNS
	// rebinding). Empty: same origin only, and the screens are opened by
	// IP address or localhost.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// Token is required of every client not on loopback: open a screen
	// once as …?token=TOKEN (a cookie keeps it), or send
	// "Authorization: Bearer TOKEN". At least 16 characters. Empty: only
	// loopback clients are served.
	Token string `yaml:"token"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// Identifiers are the site's own identifier patterns (§7).
type Identifiers struct {
	// ParcelPatterns are carrier waybill regular expressions, besides UPU S10.
	ParcelPatterns []string `yaml:"parcel_patterns"`
	// TransitPatterns are transit manifest regular expressions.
	TransitPatterns []string `yaml:"transit_patterns"`
	// SealPatterns are seal id regular expressions (arrival stations only).
	SealPatterns []string `yaml:"seal_patterns"`
}

// Station roles.
const (
	RoleArrival = "arrival"
	RoleSort    = "sort"
	RoleGate    = "gate"
)

// Station is one scanning point with its scanner and optional gate.
type Station struct {
	ID      string  `yaml:"id"`
	Role    string  `yaml:"role"`
	Scanner Scanner `yaml:"scanner"`
	Gate    *Gate   `yaml:"gate"`
	// CloseAfter closes an open transit at an arrival station after this
	// long without a scan. Default 10m.
	CloseAfter time.Duration `yaml:"close_after"`
}

// Scanner configures a scanner driver. docs/drivers.md describes every key.
type Scanner struct {
	// Driver is serial, tcp-client or tcp-server.
	Driver string `yaml:"driver"`
	// Port is the serial device (serial driver), a plain name such as
	// /dev/ttyUSB0 or a stable udev path such as /dev/serial/by-id/….
	Port string `yaml:"port"`
	// Baud is the serial speed (serial driver). Default 9600.
	Baud int `yaml:"baud"`
	// Address is the reader's host:port the gateway dials (tcp-client). For
	// tcp-server it is a deprecated alias of Listen.
	Address string `yaml:"address"`
	// Listen is the host:port readers dial in to (tcp-server), e.g. ":2001".
	Listen string `yaml:"listen"`
	// MaxReaders is how many readers may be connected at once (tcp-server);
	// one more replaces the one connected longest. Default 1.
	MaxReaders int `yaml:"max_readers"`
	// Framing is lines (CR, LF or CRLF; STX…ETX accepted too) or stx-etx
	// (only STX…ETX framed codes; bytes outside a frame are dropped).
	// Default lines.
	Framing string `yaml:"framing"`
	// Debounce drops the same code read again within this window. Default 0: off.
	Debounce time.Duration `yaml:"debounce"`
	// ReconnectMax caps the backoff between attempts to reopen the device
	// (100ms doubling up to it, ±20% jitter). Default 10s.
	ReconnectMax time.Duration `yaml:"reconnect_max"`
}

// Gate configures a gate controller driver.
type Gate struct {
	// Driver is serial, modbus or none (no gate: a station with screens
	// only; no other key may be set).
	Driver string `yaml:"driver"`
	// Port and Baud: serial driver (Baud default 9600).
	Port string `yaml:"port"`
	Baud int    `yaml:"baud"`
	// Pass and Stop are the frames written, with \r, \n and \xHH escapes.
	// Defaults "PASS\r\n" and "STOP\r\n".
	Pass string `yaml:"pass"`
	Stop string `yaml:"stop"`
	// Ack, when set, is the reply expected within AckTimeout (default 500ms).
	Ack        string        `yaml:"ack"`
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// Address, Unit, OpenCoil, AlarmCoil, ClosedInput, PulseMS: modbus driver.
	Address string `yaml:"address"`
	// Unit is the Modbus unit id, 0..255. Default 1 (an explicit 0 is kept
	// when the file is read by Parse).
	Unit        int  `yaml:"unit"`
	OpenCoil    *int `yaml:"open_coil"`
	AlarmCoil   *int `yaml:"alarm_coil"`
	ClosedInput *int `yaml:"closed_input"`
	PulseMS     int  `yaml:"pulse_ms"`
	// CloseTimeout (modbus, with ClosedInput): how long after the open
	// pulse ends the gate may still read open before it is reported left
	// open (a fault). Default 10s.
	CloseTimeout time.Duration `yaml:"close_timeout"`
	// HeartbeatInterval (modbus): how often the driver talks to the
	// controller when idle, writing HeartbeatRegister or toggling
	// HeartbeatCoil when set (for an I/O module whose watchdog drops its
	// outputs when the writes stop), else reading back. Default 1s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// HeartbeatRegister (modbus): holding register written with a counter
	// at each heartbeat. Optional; not with HeartbeatCoil.
	HeartbeatRegister *int `yaml:"heartbeat_register"`
	// HeartbeatCoil (modbus): coil toggled at each heartbeat. Optional.
	HeartbeatCoil *int `yaml:"heartbeat_coil"`
	// Watchdog (modbus): the I/O module's communication watchdog as set in
	// the module: it switches its outputs off this long after the last
	// request, so that a pulse cannot outlive a dead gateway or a lost link
	// by more than this. Default 3s; must be at least twice
	// heartbeat_interval. An explicit 0s declares a module without one:
	// allowed, but check-config warns (Warnings), since an open coil can
	// then stay on until the gateway reconnects, which may be never.
	Watchdog *time.Duration `yaml:"watchdog"`
	// ReconnectMax caps the backoff between attempts to reopen the device
	// (serial, modbus). Default 10s.
	ReconnectMax time.Duration `yaml:"reconnect_max"`

	// unitSet records that the file set unit explicitly, so that unit: 0 is
	// not taken for "unset" by applyDefaults.
	unitSet bool
}

// Retention bounds the stores on a box that runs for years.
type Retention struct {
	// OrdersDays prunes orders issued more than this many days ago (by
	// the earlier of the wall clock and central's time), and the subjects
	// whose orders are all among them and whose state decides nothing (no
	// cancel, active hold, release or revoke of its own, or active link),
	// with their
	// inactive links. Default 30; at least 1.
	OrdersDays int `yaml:"orders_days"`
	// EventsDays prunes events delivered to central more than this many
	// days ago (undelivered events are never pruned). Default 30; at
	// least 1.
	EventsDays int `yaml:"events_days"`
	// Interval is how often the pruning runs, in small transactions.
	// Default 1h.
	Interval time.Duration `yaml:"interval"`
}
