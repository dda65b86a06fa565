package config

import (
	"crypto/tls"
	"encoding/base64"
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

// Enumerations of the configuration.
var (
	Roles      = []string{RoleArrival, RoleSort, RoleGate}
	LogLevels  = []string{"debug", "info", "warn", "error"}
	LogFormats = []string{"text", "json"}
	HTTPRoles  = []string{RoleScreens, RoleOperator, RoleScan}
)

// Validate checks the configuration after defaults and reports every problem
// at once (errors.Join), each naming its key path, e.g.
// `stations[2] ("gate-3").gate.baud: must be one of 1200, …`.
func (c *Config) Validate() error {
	var p Problems
	c.validate(&p)
	return p.Err()
}

func (c *Config) validate(p *Problems) {
	if !nameRE.MatchString(c.Site) {
		p.Add("site", "must match [A-Za-z0-9_-]{1,64} (got %q)", c.Site)
	}
	if !nameRE.MatchString(c.Gateway) {
		p.Add("gateway", "must match [A-Za-z0-9_-]{1,64} (got %q)", c.Gateway)
	}
	if c.DataDir == "" {
		p.Add("data_dir", "required")
	}
	c.Central.validate(p)
	c.Outbox.validate(p)
	if c.Retention.OrdersDays < 1 {
		p.Add("retention.orders_days", "must be at least 1 (got %d)", c.Retention.OrdersDays)
	}
	if c.Retention.EventsDays < 1 {
		p.Add("retention.events_days", "must be at least 1 (got %d)", c.Retention.EventsDays)
	}
	if c.Retention.Interval < time.Minute {
		p.Add("retention.interval", "must be at least 1m (got %s)", c.Retention.Interval)
	}
	if c.HTTP.Listen != "" {
		if err := HostPort(c.HTTP.Listen, false); err != nil {
			p.Wrap("http.listen", err)
		}
	}
	for i, o := range c.HTTP.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			p.Add(fmt.Sprintf("http.allowed_origins[%d]", i), "must be http://host[:port] or https://host[:port] (got %q)", o)
		}
	}
	c.HTTP.validate(p)
	if !slices.Contains(LogLevels, c.Log.Level) {
		p.Add("log.level", "must be one of %s (got %q)", strings.Join(LogLevels, ", "), c.Log.Level)
	}
	if !slices.Contains(LogFormats, c.Log.Format) {
		p.Add("log.format", "must be one of %s (got %q)", strings.Join(LogFormats, ", "), c.Log.Format)
	}
	patterns(p, "identifiers.parcel_patterns", c.Ident.ParcelPatterns)
	patterns(p, "identifiers.transit_patterns", c.Ident.TransitPatterns)
	patterns(p, "identifiers.seal_patterns", c.Ident.SealPatterns)

	if len(c.Stations) == 0 {
		p.Add("stations", "at least one station is required")
	}
	seen := map[string]int{}
	for i := range c.Stations {
		st := &c.Stations[i]
		path := stationPath(i, st.ID)
		if !nameRE.MatchString(st.ID) {
			p.Add(path+".id", "must match [A-Za-z0-9_-]{1,64} (got %q)", st.ID)
		} else if j, dup := seen[st.ID]; dup {
			p.Add(path+".id", "duplicate: %q is already the id of stations[%d]", st.ID, j)
		} else {
			seen[st.ID] = i
		}
		st.validate(p, path)
	}
}

func (ce *Central) validate(p *Problems) {
	scheme := ""
	switch {
	case ce.Broker != "" && len(ce.Brokers) > 0:
		p.Add("central.brokers", "set central.broker or central.brokers, not both (central.broker is a list of one)")
	case ce.Broker != "":
		scheme = brokerURL(p, "central.broker", ce.Broker)
	case len(ce.Brokers) > 0:
		seen := map[string]int{}
		for i, b := range ce.Brokers {
			key := fmt.Sprintf("central.brokers[%d]", i)
			s := brokerURL(p, key, b)
			if j, dup := seen[b]; dup {
				p.Add(key, "duplicate: %q is already central.brokers[%d]", b, j)
			}
			seen[b] = i
			switch {
			case s == "":
			case scheme == "":
				scheme = s
			case s != scheme:
				// One TLS setting (ca_file, cert_file, key_file) serves
				// every broker: a list is all tcp:// or all ssl://.
				p.Add(key, "%q: scheme %s:// differs from the first broker's %s:// (the brokers share one TLS setting: all tcp:// or all ssl://)", b, s, scheme)
			}
		}
	default:
		p.Add("central.broker", "required (tcp://host:port or ssl://host:port), or central.brokers for a list")
	}
	switch scheme {
	case "ssl":
		if ce.CAFile == "" {
			p.Add("central.ca_file", "required with an ssl:// broker")
		}
		if (ce.CertFile == "") != (ce.KeyFile == "") {
			p.Add("central.cert_file", "cert_file and key_file go together: set both or neither")
		}
	case "tcp":
		for _, k := range []struct{ key, v string }{{"ca_file", ce.CAFile}, {"cert_file", ce.CertFile}, {"key_file", ce.KeyFile}} {
			if k.v != "" {
				p.Add("central."+k.key, "not used with a tcp:// broker (TLS needs ssl://)")
			}
		}
	}
	if len(ce.Keys) == 0 {
		p.Add("central.keys", "at least one central key is required (kid: base64 of the 32-byte Ed25519 public key)")
	}
	kids := make([]string, 0, len(ce.Keys))
	for kid := range ce.Keys {
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	for _, kid := range kids {
		path := fmt.Sprintf("central.keys[%q]", kid)
		if strings.TrimSpace(kid) == "" {
			p.Add(path, "kid must not be empty")
		}
		raw, err := base64.StdEncoding.DecodeString(ce.Keys[kid])
		switch {
		case err != nil:
			p.Add(path, "not standard base64: %v", err)
		case len(raw) != 32:
			p.Add(path, "decodes to %d bytes, an Ed25519 public key is 32", len(raw))
		}
	}
	for _, d := range []struct {
		key string
		v   any
		neg bool
	}{
		{"gap_grace", ce.GapGrace, ce.GapGrace < 0},
		{"resync_timeout", ce.ResyncTimeout, ce.ResyncTimeout < 0},
		// lookup_timeout: negative is "off", not an error.
	} {
		if d.neg {
			p.Add("central."+d.key, "must not be negative (got %v)", d.v)
		}
	}
	if ce.AckTimeout != 0 && (ce.AckTimeout < time.Second || ce.AckTimeout > time.Hour) {
		p.Add("central.ack_timeout", "must be between 1s and 1h (got %v)", ce.AckTimeout)
	}
}

// brokerURL checks one broker URL under key and returns its scheme ("" if
// it is not a URL).
func brokerURL(p *Problems, key, b string) string {
	u, err := url.Parse(b)
	if err != nil || b == "" {
		p.Add(key, "%q is not a URL", b)
		return ""
	}
	scheme := u.Scheme
	if scheme != "tcp" && scheme != "ssl" {
		p.Add(key, "%q: scheme must be tcp:// or ssl://", b)
		scheme = ""
	}
	if err := HostPort(u.Host, true); err != nil {
		p.Wrap(key, err)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		p.Add(key, "%q: only scheme://host:port is allowed (credentials go in username and password)", b)
	}
	return scheme
}

func patterns(p *Problems, path string, pats []string) {
	for i, pat := range pats {
		if _, err := regexp.Compile(pat); err != nil {
			p.Wrap(fmt.Sprintf("%s[%d]", path, i), err)
		}
	}
}

func (st *Station) validate(p *Problems, path string) {
	if !slices.Contains(Roles, st.Role) {
		p.Add(path+".role", "must be one of %s (got %q)", strings.Join(Roles, ", "), st.Role)
	}
	if st.CloseAfter < 0 {
		p.Add(path+".close_after", "must not be negative (got %v)", st.CloseAfter)
	}
	st.Scanner.validate(p, ScannerKind, path+".scanner")
	if st.Scanner.Driver == HandheldDriver {
		// A person holds the scanner: nobody stands at a barrier, so a
		// handheld never opens a gate.
		if st.Role == RoleGate {
			p.Add(path+".role", "gate: a handheld station (scanner driver handheld) has role sort or arrival, never gate")
		}
		if st.Gate != nil && st.Gate.Driver != NoGate {
			p.Add(path+".gate", "a handheld station (scanner driver handheld) has no gate: remove the gate key")
		}
	}
	switch {
	case st.Gate != nil && st.Gate.Driver == NoGate && st.Role == RoleGate:
		var gates []string
		for _, d := range Drivers(GateKind) {
			if d != NoGate {
				gates = append(gates, d)
			}
		}
		p.Add(path+".gate.driver", "none: role gate needs a gate driver (%s)", strings.Join(gates, " or "))
	case st.Gate != nil:
		st.Gate.validate(p, GateKind, path+".gate")
	case st.Role == RoleGate:
		p.Add(path+".gate", "required for role gate")
	}
}

// HostPort checks a host:port address; needHost: the host may not be
// empty (an address to dial). The drivers check their addresses with it.
func HostPort(addr string, needHost bool) error {
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

// TokenProblem says what is wrong with an HTTP token, "" if nothing. A
// token goes in a header and a cookie: at least 16 characters, printable
// ASCII, none of them `"`, `,`, `;` or `\` (they end or quote a cookie).
func TokenProblem(t string) string {
	if len(t) < 16 {
		return "must be at least 16 characters"
	}
	if i := strings.IndexFunc(t, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`",;\`, r) }); i >= 0 {
		return fmt.Sprintf("must not contain spaces, control or non-ASCII characters, nor any of \" , ; \\ (character %d is %q)", i+1, t[i:i+1])
	}
	return ""
}

func (h *HTTP) validate(p *Problems) {
	if h.Token != "" {
		if msg := TokenProblem(h.Token); msg != "" {
			p.Add("http.token", "%s", msg)
		}
	}
	names := map[string]int{}
	seen := map[string]string{}
	if h.Token != "" {
		seen[h.Token] = "http.token"
	}
	for i, t := range h.Tokens {
		path := fmt.Sprintf("http.tokens[%d]", i)
		if !nameRE.MatchString(t.Name) {
			p.Add(path+".name", "must match [A-Za-z0-9_-]{1,64} (got %q)", t.Name)
		} else if j, dup := names[t.Name]; dup {
			p.Add(path+".name", "duplicate: %q is already the name of http.tokens[%d]", t.Name, j)
		} else {
			names[t.Name] = i
		}
		if !slices.Contains(HTTPRoles, t.Role) {
			p.Add(path+".role", "must be one of %s (got %q)", strings.Join(HTTPRoles, ", "), t.Role)
		}
		if msg := TokenProblem(t.Token); msg != "" {
			p.Add(path+".token", "%s", msg)
		} else if other, dup := seen[t.Token]; dup {
			p.Add(path+".token", "the same token as %s: each token has one role", other)
		} else {
			seen[t.Token] = path
		}
	}
	if (h.TLSCertFile == "") != (h.TLSKeyFile == "") {
		p.Add("http.tls_cert_file", "tls_cert_file and tls_key_file go together: set both or neither")
	} else if h.TLSCertFile != "" {
		if _, err := tls.LoadX509KeyPair(h.TLSCertFile, h.TLSKeyFile); err != nil {
			p.Add("http.tls_cert_file", "cannot load the certificate and key: %v", err)
		}
	}
	if h.MaxConns < 16 {
		p.Add("http.max_conns", "must be at least 16 (got %d)", h.MaxConns)
	}
	if h.StreamStall < time.Second {
		p.Add("http.stream_stall", "must be at least 1s (got %s)", h.StreamStall)
	}
}

// Loopback reports whether loopback clients are served as operator.
func (h HTTP) Loopback() bool { return h.TrustLoopback == nil || *h.TrustLoopback }
