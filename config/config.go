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
	// It is a list of one (Brokers); set one key or the other.
	Broker string `yaml:"broker"`
	// Brokers are the broker URLs of a site with more than one broker (a
	// cluster's nodes, or a standby): both connections try them in turn,
	// with capped, jittered backoff, and fail over to the next when theirs
	// is lost. All share one scheme, so one TLS setting serves them all.
	Brokers []string `yaml:"brokers"`
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
	// AckTimeout: an event sent to central but not named by its
	// events_ack within it is sent again under the same id (PROTOCOL
	// §5.4, amendment 3). Default 30s; at least 1s. Changing it needs a
	// restart.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// LookupTimeout bounds the wait for a lookup reply. Unset or 0: the
	// default, 300ms. Negative: lookups off (kept negative after the
	// defaults, so a configuration written out and loaded again keeps it
	// off; the stations take ≤ 0 as off).
	LookupTimeout time.Duration `yaml:"lookup_timeout"`
}

// BrokerURLs is the broker list in force: Brokers, or Broker as a list of
// one.
func (ce *Central) BrokerURLs() []string {
	if len(ce.Brokers) > 0 {
		return ce.Brokers
	}
	if ce.Broker == "" {
		return nil
	}
	return []string{ce.Broker}
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
	// Token is the operator's token (role operator): every client not on
	// loopback sends it as "Authorization: Bearer TOKEN" (the CLI reads it
	// from CARGOGATE_TOKEN). It is never accepted in a URL. Screens are
	// paired instead (`cargogate pair`). At least 16 characters, none of
	// them spaces, control characters, `"`, `,`, `;` or `\`. Empty: no
	// operator off loopback.
	Token string `yaml:"token"`
	// Tokens are further named tokens, each with its role: screens (the
	// pages, view only), operator (besides: lookup, inspect, export,
	// backup, audit, pairing) or scan (a handheld scanning device; no
	// route yet). Same rules as Token.
	Tokens []HTTPToken `yaml:"tokens"`
	// TrustLoopback serves clients on loopback as operator without a
	// token. Default true; set false behind a reverse proxy on the same
	// host, which makes every client look like loopback.
	TrustLoopback *bool `yaml:"trust_loopback"`
	// TLSCertFile and TLSKeyFile serve HTTPS (PEM files, set both or
	// neither); with them the server sends HSTS and the cookies are
	// Secure.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// MaxConns caps the open connections (WebSockets included). Default
	// 512; at least 16.
	MaxConns int `yaml:"max_conns"`
	// StreamStall is how long a download (backup, export) may make no
	// progress before the connection is cut. Default 30s.
	StreamStall time.Duration `yaml:"stream_stall"`
}

// HTTP roles.
const (
	RoleScreens  = "screens"
	RoleOperator = "operator"
	RoleScan     = "scan"
)

// HTTPToken is one named token and its role.
type HTTPToken struct {
	Name  string `yaml:"name"`
	Role  string `yaml:"role"`
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
	ID   string `yaml:"id"`
	Role string `yaml:"role"`
	// Scanner is the station's scanner; its keys are its driver's
	// (docs/drivers.md).
	Scanner Device `yaml:"scanner"`
	// Gate is the station's gate controller, nil (or driver none): no gate.
	Gate *Device `yaml:"gate"`
	// CloseAfter closes an open transit at an arrival station after this
	// long without a scan. Default 10m.
	CloseAfter time.Duration `yaml:"close_after"`
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
