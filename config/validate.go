package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// nameRE is the shape of site, gateway and station names (protocol §1),
// the same as customs.NameRE (a test checks they agree): config stays
// below the customs model.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Bauds are the serial speeds accepted.
var Bauds = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}

// Enumerations of the configuration.
var (
	Roles          = []string{RoleArrival, RoleSort, RoleGate}
	ScannerDrivers = []string{"serial", "tcp-client", "tcp-server"}
	GateDrivers    = []string{"serial", "modbus", "none"}
	Framings       = []string{"lines", "stx-etx"}
	LogLevels      = []string{"debug", "info", "warn", "error"}
	LogFormats     = []string{"text", "json"}
)

// problems collects validation errors, each prefixed with its key path.
type problems []error

func (p *problems) add(path, format string, a ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...)))
}

func (p *problems) wrap(path string, err error) {
	*p = append(*p, fmt.Errorf("%s: %w", path, err))
}

// Validate checks the configuration after defaults and reports every problem
// at once (errors.Join), each naming its key path, e.g.
// `stations[2] ("gate-3").gate.baud: must be one of 1200, …`.
func (c *Config) Validate() error {
	var p problems
	if !nameRE.MatchString(c.Site) {
		p.add("site", "must match [A-Za-z0-9_-]{1,64} (got %q)", c.Site)
	}
	if !nameRE.MatchString(c.Gateway) {
		p.add("gateway", "must match [A-Za-z0-9_-]{1,64} (got %q)", c.Gateway)
	}
	if c.DataDir == "" {
		p.add("data_dir", "required")
	}
	c.Central.validate(&p)
	c.Outbox.validate(&p)
	if c.Retention.OrdersDays < 1 {
		p.add("retention.orders_days", "must be at least 1 (got %d)", c.Retention.OrdersDays)
	}
	if c.Retention.EventsDays < 1 {
		p.add("retention.events_days", "must be at least 1 (got %d)", c.Retention.EventsDays)
	}
	if c.Retention.Interval < time.Minute {
		p.add("retention.interval", "must be at least 1m (got %s)", c.Retention.Interval)
	}
	if c.HTTP.Listen != "" {
		if err := hostPort(c.HTTP.Listen, false); err != nil {
			p.wrap("http.listen", err)
		}
	}
	for i, o := range c.HTTP.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			p.add(fmt.Sprintf("http.allowed_origins[%d]", i), "must be http://host[:port] or https://host[:port] (got %q)", o)
		}
	}
	if t := c.HTTP.Token; t != "" && (len(t) < 16 || strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r == 0x7f })) {
		p.add("http.token", "must be at least 16 characters, none of them spaces or control characters")
	}
	if !slices.Contains(LogLevels, c.Log.Level) {
		p.add("log.level", "must be one of %s (got %q)", strings.Join(LogLevels, ", "), c.Log.Level)
	}
	if !slices.Contains(LogFormats, c.Log.Format) {
		p.add("log.format", "must be one of %s (got %q)", strings.Join(LogFormats, ", "), c.Log.Format)
	}
	patterns(&p, "identifiers.parcel_patterns", c.Ident.ParcelPatterns)
	patterns(&p, "identifiers.transit_patterns", c.Ident.TransitPatterns)
	patterns(&p, "identifiers.seal_patterns", c.Ident.SealPatterns)

	if len(c.Stations) == 0 {
		p.add("stations", "at least one station is required")
	}
	seen := map[string]int{}
	for i := range c.Stations {
		st := &c.Stations[i]
		path := fmt.Sprintf("stations[%d] (%q)", i, st.ID)
		if !nameRE.MatchString(st.ID) {
			p.add(path+".id", "must match [A-Za-z0-9_-]{1,64} (got %q)", st.ID)
		} else if j, dup := seen[st.ID]; dup {
			p.add(path+".id", "duplicate: %q is already the id of stations[%d]", st.ID, j)
		} else {
			seen[st.ID] = i
		}
		st.validate(&p, path)
	}
	if len(p) == 0 {
		return nil
	}
	return errors.Join(p...)
}

func (ce *Central) validate(p *problems) {
	scheme := ""
	if ce.Broker == "" {
		p.add("central.broker", "required (tcp://host:port or ssl://host:port)")
	} else if u, err := url.Parse(ce.Broker); err != nil {
		p.add("central.broker", "%q is not a URL", ce.Broker)
	} else {
		scheme = u.Scheme
		if scheme != "tcp" && scheme != "ssl" {
			p.add("central.broker", "%q: scheme must be tcp:// or ssl://", ce.Broker)
		}
		if err := hostPort(u.Host, true); err != nil {
			p.wrap("central.broker", err)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			p.add("central.broker", "%q: only scheme://host:port is allowed (credentials go in username and password)", ce.Broker)
		}
	}
	switch scheme {
	case "ssl":
		if ce.CAFile == "" {
			p.add("central.ca_file", "required with an ssl:// broker")
		}
		if (ce.CertFile == "") != (ce.KeyFile == "") {
			p.add("central.cert_file", "cert_file and key_file go together: set both or neither")
		}
	case "tcp":
		for _, k := range []struct{ key, v string }{{"ca_file", ce.CAFile}, {"cert_file", ce.CertFile}, {"key_file", ce.KeyFile}} {
			if k.v != "" {
				p.add("central."+k.key, "not used with a tcp:// broker (TLS needs ssl://)")
			}
		}
	}
	if len(ce.Keys) == 0 {
		p.add("central.keys", "at least one central key is required (kid: base64 of the 32-byte Ed25519 public key)")
	}
	kids := make([]string, 0, len(ce.Keys))
	for kid := range ce.Keys {
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	for _, kid := range kids {
		path := fmt.Sprintf("central.keys[%q]", kid)
		if strings.TrimSpace(kid) == "" {
			p.add(path, "kid must not be empty")
		}
		raw, err := base64.StdEncoding.DecodeString(ce.Keys[kid])
		switch {
		case err != nil:
			p.add(path, "not standard base64: %v", err)
		case len(raw) != 32:
			p.add(path, "decodes to %d bytes, an Ed25519 public key is 32", len(raw))
		}
	}
	for _, d := range []struct {
		key string
		v   any
		neg bool
	}{
		{"gap_grace", ce.GapGrace, ce.GapGrace < 0},
		{"resync_timeout", ce.ResyncTimeout, ce.ResyncTimeout < 0},
		{"lookup_timeout", ce.LookupTimeout, ce.LookupTimeout < 0},
	} {
		if d.neg {
			p.add("central."+d.key, "must not be negative (got %v)", d.v)
		}
	}
}

func patterns(p *problems, path string, pats []string) {
	for i, pat := range pats {
		if _, err := regexp.Compile(pat); err != nil {
			p.wrap(fmt.Sprintf("%s[%d]", path, i), err)
		}
	}
}

func (st *Station) validate(p *problems, path string) {
	if !slices.Contains(Roles, st.Role) {
		p.add(path+".role", "must be one of %s (got %q)", strings.Join(Roles, ", "), st.Role)
	}
	if st.CloseAfter < 0 {
		p.add(path+".close_after", "must not be negative (got %v)", st.CloseAfter)
	}
	st.Scanner.validate(p, path+".scanner")
	switch {
	case st.Gate != nil && st.Gate.Driver == "none" && st.Role == RoleGate:
		p.add(path+".gate.driver", "none: role gate needs a gate driver (serial or modbus)")
	case st.Gate != nil:
		st.Gate.validate(p, path+".gate")
	case st.Role == RoleGate:
		p.add(path+".gate", "required for role gate")
	}
}

func (s *Scanner) validate(p *problems, path string) {
	if s.Debounce < 0 {
		p.add(path+".debounce", "must not be negative (got %v)", s.Debounce)
	}
	if !slices.Contains(Framings, s.Framing) {
		p.add(path+".framing", "must be one of %s (got %q)", strings.Join(Framings, ", "), s.Framing)
	}
	reconnectMax(p, path, s.ReconnectMax)
	if s.MaxReaders != 0 && s.Driver != "tcp-server" {
		unused(p, path, "max_readers", s.Driver)
	}
	if s.Listen != "" && s.Driver != "tcp-server" {
		unused(p, path, "listen", s.Driver)
	}
	switch s.Driver {
	case "serial":
		if s.Port == "" {
			p.add(path+".port", "required by driver serial")
		}
		baud(p, path, s.Baud)
		if s.Address != "" {
			unused(p, path, "address", s.Driver)
		}
	case "tcp-client", "tcp-server":
		key, addr := "address", s.Address
		if s.Driver == "tcp-server" {
			key, addr = "listen", s.Listen
			if s.Address != "" { // both set: applyDefaults moved a lone address to listen
				p.add(path+".address", "not used with listen (address is the deprecated name of listen for driver tcp-server)")
			}
			if s.MaxReaders < 1 || s.MaxReaders > 64 {
				p.add(path+".max_readers", "must be 1..64 (got %d)", s.MaxReaders)
			}
		}
		if addr == "" {
			p.add(path+"."+key, "required by driver %s (host:port)", s.Driver)
		} else if err := hostPort(addr, s.Driver == "tcp-client"); err != nil {
			p.wrap(path+"."+key, err)
		}
		if s.Port != "" {
			unused(p, path, "port", s.Driver)
		}
		if s.Baud != 0 {
			unused(p, path, "baud", s.Driver)
		}
	default:
		p.add(path+".driver", "must be one of %s (got %q)", strings.Join(ScannerDrivers, ", "), s.Driver)
	}
}

// reconnectMax checks a driver's backoff cap: long enough not to hammer a
// device, short enough that a device plugged back in is seen soon.
func reconnectMax(p *problems, path string, d time.Duration) {
	if d < 100*time.Millisecond || d > 10*time.Minute {
		p.add(path+".reconnect_max", "must be 100ms..10m (got %v)", d)
	}
}

func (g *Gate) validate(p *problems, path string) {
	switch g.Driver {
	case "serial":
		if g.Port == "" {
			p.add(path+".port", "required by driver serial")
		}
		baud(p, path, g.Baud)
		pass, errPass := DecodeFrame(g.Pass)
		if errPass != nil {
			p.wrap(path+".pass", errPass)
		} else if len(pass) == 0 {
			p.add(path+".pass", "must not be empty")
		}
		stop, errStop := DecodeFrame(g.Stop)
		if errStop != nil {
			p.wrap(path+".stop", errStop)
		} else if len(stop) == 0 {
			p.add(path+".stop", "must not be empty")
		}
		if errPass == nil && errStop == nil && string(pass) == string(stop) {
			p.add(path+".stop", "must differ from pass (%q)", g.Pass)
		}
		if g.Ack != "" {
			if _, err := DecodeFrame(g.Ack); err != nil {
				p.wrap(path+".ack", err)
			}
		}
		if g.AckTimeout < 0 {
			p.add(path+".ack_timeout", "must not be negative (got %v)", g.AckTimeout)
		}
		reconnectMax(p, path, g.ReconnectMax)
		g.unusedKeys(p, path, g.modbusKeys())
	case "modbus":
		if g.Address == "" {
			p.add(path+".address", "required by driver modbus (host:port)")
		} else if err := hostPort(g.Address, true); err != nil {
			p.wrap(path+".address", err)
		}
		if g.Unit < 0 || g.Unit > 255 {
			p.add(path+".unit", "must be 0..255 (got %d)", g.Unit)
		}
		coil := func(key string, v *int, required bool) {
			switch {
			case v == nil && required:
				p.add(path+"."+key, "required by driver modbus (no default)")
			case v != nil && (*v < 0 || *v > 65535):
				p.add(path+"."+key, "must be 0..65535 (got %d)", *v)
			}
		}
		coil("open_coil", g.OpenCoil, true)
		coil("alarm_coil", g.AlarmCoil, true)
		coil("closed_input", g.ClosedInput, false)
		if g.OpenCoil != nil && g.AlarmCoil != nil && *g.OpenCoil == *g.AlarmCoil {
			p.add(path+".alarm_coil", "must differ from open_coil (both %d)", *g.AlarmCoil)
		}
		if g.PulseMS <= 0 {
			p.add(path+".pulse_ms", "must be > 0 milliseconds (got %d)", g.PulseMS)
		}
		coil("heartbeat_register", g.HeartbeatRegister, false)
		coil("heartbeat_coil", g.HeartbeatCoil, false)
		if hc := g.HeartbeatCoil; hc != nil {
			if g.HeartbeatRegister != nil {
				p.add(path+".heartbeat_coil", "not with heartbeat_register: set one or neither")
			}
			if (g.OpenCoil != nil && *hc == *g.OpenCoil) || (g.AlarmCoil != nil && *hc == *g.AlarmCoil) {
				p.add(path+".heartbeat_coil", "must differ from open_coil and alarm_coil (got %d)", *hc)
			}
		}
		if g.HeartbeatInterval < 10*time.Millisecond || g.HeartbeatInterval > time.Minute {
			p.add(path+".heartbeat_interval", "must be 10ms..1m (got %v)", g.HeartbeatInterval)
		}
		if w := g.Watchdog; w != nil {
			switch {
			case *w < 0:
				p.add(path+".watchdog", "must not be negative (got %v)", *w)
			case *w > 0 && *w < 2*g.HeartbeatInterval:
				p.add(path+".watchdog", "must be at least twice heartbeat_interval %v, or the module drops its outputs between heartbeats (got %v; 0s: the module has none)", g.HeartbeatInterval, *w)
			}
		}
		switch {
		case g.ClosedInput == nil && g.CloseTimeout != 0:
			p.add(path+".close_timeout", "needs closed_input")
		case g.ClosedInput != nil && g.CloseTimeout <= 0:
			p.add(path+".close_timeout", "must be > 0 (got %v)", g.CloseTimeout)
		}
		reconnectMax(p, path, g.ReconnectMax)
		g.unusedKeys(p, path, g.serialKeys())
	case "none":
		set := append(g.serialKeys(), g.modbusKeys()...)
		set = append(set, gateKey{"reconnect_max", g.ReconnectMax != 0})
		g.unusedKeys(p, path, set)
	default:
		p.add(path+".driver", "must be one of %s (got %q)", strings.Join(GateDrivers, ", "), g.Driver)
	}
}

// gateKey is a driver-specific key of a gate and whether the file set it.
type gateKey struct {
	key string
	set bool
}

func (g *Gate) serialKeys() []gateKey {
	return []gateKey{
		{"port", g.Port != ""},
		{"baud", g.Baud != 0},
		{"pass", g.Pass != ""},
		{"stop", g.Stop != ""},
		{"ack", g.Ack != ""},
		{"ack_timeout", g.AckTimeout != 0},
	}
}

func (g *Gate) modbusKeys() []gateKey {
	return []gateKey{
		{"address", g.Address != ""},
		{"unit", g.Unit != 0 || g.unitSet},
		{"open_coil", g.OpenCoil != nil},
		{"alarm_coil", g.AlarmCoil != nil},
		{"closed_input", g.ClosedInput != nil},
		{"pulse_ms", g.PulseMS != 0},
		{"close_timeout", g.CloseTimeout != 0},
		{"heartbeat_interval", g.HeartbeatInterval != 0},
		{"heartbeat_register", g.HeartbeatRegister != nil},
		{"heartbeat_coil", g.HeartbeatCoil != nil},
		{"watchdog", g.Watchdog != nil},
	}
}

// unusedKeys reports each key of keys that is set as not used by g's driver.
func (g *Gate) unusedKeys(p *problems, path string, keys []gateKey) {
	for _, k := range keys {
		if k.set {
			unused(p, path, k.key, g.Driver)
		}
	}
}

func unused(p *problems, path, key, driver string) {
	p.add(path+"."+key, "not used by driver %s", driver)
}

func baud(p *problems, path string, b int) {
	if !slices.Contains(Bauds, b) {
		s := make([]string, len(Bauds))
		for i, v := range Bauds {
			s[i] = strconv.Itoa(v)
		}
		p.add(path+".baud", "must be one of %s (got %d)", strings.Join(s, ", "), b)
	}
}

// hostPort checks a host:port address; needHost: the host may not be empty.
func hostPort(addr string, needHost bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if needHost && host == "" {
		return fmt.Errorf("%q: host required", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number 0..65535", addr)
	}
	if needHost && n == 0 {
		return fmt.Errorf("%q: port 0 cannot be dialled", addr)
	}
	return nil
}
