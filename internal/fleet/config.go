package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/gateway/customs"
)

// Config is the fleet view's own configuration file (docs/fleet.md):
// small, apart from any gateway's, read once at start.
type Config struct {
	// Site is the terminal site whose gateways are shown.
	Site string `yaml:"site"`
	// Broker is where the statuses are read; the keys are those of a
	// gateway's central section.
	Broker BrokerConfig `yaml:"broker"`
	// Gateways are the site's gateways: name → base64 of its 32-byte
	// Ed25519 public key (`cargogate keys` on the gateway prints it).
	Gateways map[string]string `yaml:"gateways"`
	// CentralKeys verify central's retained head (kid → base64 key), the
	// head the lag is measured against; empty: the highest head_seq a
	// gateway reports.
	CentralKeys map[string]string `yaml:"central_keys"`
	// OfflineAfter: silent this long (or never seen this long after the
	// start), a gateway raises the offline alarm. Default 5m; at least 1m
	// (a gateway sends its status at least every 30 s).
	OfflineAfter time.Duration `yaml:"offline_after"`
	// OutboxWarn: an oldest unacknowledged event older than this ranks the
	// gateway as a warning. Default 2m.
	OutboxWarn time.Duration `yaml:"outbox_warn"`
	HTTP       HTTPConfig    `yaml:"http"`
}

// BrokerConfig is the MQTT connection.
type BrokerConfig struct {
	URL      string `yaml:"url"` // tcp://host:port or ssl://host:port
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// HTTPConfig is the page's server: the keys and rules of a gateway's
// http section (docs/security.md), roles screens and operator (both may
// view; nothing here operates).
type HTTPConfig struct {
	Listen         string             `yaml:"listen"`
	Token          string             `yaml:"token"`
	Tokens         []config.HTTPToken `yaml:"tokens"`
	AllowedOrigins []string           `yaml:"allowed_origins"`
	TrustLoopback  *bool              `yaml:"trust_loopback"`
	TLSCertFile    string             `yaml:"tls_cert_file"`
	TLSKeyFile     string             `yaml:"tls_key_file"`
}

// LoadConfig reads and checks a fleet configuration file. Its error names
// every key that is wrong (joined).
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(data)
}

// ParseConfig decodes strictly (an unknown key is an error), applies the
// defaults and validates.
func ParseConfig(data []byte) (*Config, error) {
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if c.OfflineAfter == 0 {
		c.OfflineAfter = DefaultOfflineAfter
	}
	if c.OutboxWarn == 0 {
		c.OutboxWarn = DefaultOutboxWarn
	}
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if !customs.NameRE.MatchString(c.Site) {
		bad("site", "must match [A-Za-z0-9_-]{1,64} (got %q)", c.Site)
	}
	if u, err := url.Parse(c.Broker.URL); c.Broker.URL == "" || err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl") || config.HostPort(u.Host, true) != nil {
		bad("broker.url", "required: tcp://host:port or ssl://host:port (got %q)", c.Broker.URL)
	} else if u.Scheme == "ssl" && c.Broker.CAFile == "" {
		bad("broker.ca_file", "required with an ssl:// broker")
	}
	if (c.Broker.CertFile == "") != (c.Broker.KeyFile == "") {
		bad("broker.cert_file", "cert_file and key_file go together: set both or neither")
	}
	if len(c.Gateways) == 0 {
		bad("gateways", "at least one gateway is required (name: base64 of its public key, as `cargogate keys` prints it)")
	}
	keys := func(section string, m map[string]string, names bool) {
		ks := make([]string, 0, len(m))
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		owner := map[string]string{} // key → the first path with it
		for _, k := range ks {
			path := fmt.Sprintf("%s[%q]", section, k)
			if names && !customs.NameRE.MatchString(k) {
				bad(path, "a gateway name must match [A-Za-z0-9_-]{1,64}")
			}
			if strings.TrimSpace(k) == "" {
				bad(path, "must not be empty")
			}
			if raw, err := base64.StdEncoding.DecodeString(m[k]); err != nil {
				bad(path, "not standard base64: %v", err)
			} else if len(raw) != ed25519.PublicKeySize {
				bad(path, "decodes to %d bytes, an Ed25519 public key is 32", len(raw))
			} else if first, dup := owner[string(raw)]; dup && names {
				bad(path, "the same key as %s: each gateway has its own (`cargogate keys` on it prints it)", first)
			} else {
				owner[string(raw)] = path
			}
		}
	}
	keys("gateways", c.Gateways, true)
	keys("central_keys", c.CentralKeys, false)
	if c.OfflineAfter < time.Minute {
		bad("offline_after", "must be at least 1m: a gateway sends its status at least every 30 s (got %v)", c.OfflineAfter)
	}
	if c.OutboxWarn < time.Second {
		bad("outbox_warn", "must be at least 1s (got %v)", c.OutboxWarn)
	}
	h := c.HTTP
	if err := config.HostPort(h.Listen, false); err != nil {
		bad("http.listen", "required: host:port (%v)", err)
	}
	if h.Token != "" {
		if msg := config.TokenProblem(h.Token); msg != "" {
			bad("http.token", "%s", msg)
		}
	}
	for i, o := range h.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			bad(fmt.Sprintf("http.allowed_origins[%d]", i), "must be http://host[:port] or https://host[:port] (got %q)", o)
		}
	}
	names, seen := map[string]int{}, map[string]string{}
	if h.Token != "" {
		seen[h.Token] = "http.token"
	}
	for i, t := range h.Tokens {
		path := fmt.Sprintf("http.tokens[%d]", i)
		if !customs.NameRE.MatchString(t.Name) {
			bad(path+".name", "must match [A-Za-z0-9_-]{1,64} (got %q)", t.Name)
		} else if j, dup := names[t.Name]; dup {
			bad(path+".name", "duplicate: %q is already the name of http.tokens[%d]", t.Name, j)
		} else {
			names[t.Name] = i
		}
		if t.Role != config.RoleScreens && t.Role != config.RoleOperator {
			bad(path+".role", "must be screens or operator (got %q)", t.Role)
		}
		if msg := config.TokenProblem(t.Token); msg != "" {
			bad(path+".token", "%s", msg)
		} else if other, dup := seen[t.Token]; dup {
			bad(path+".token", "the same token as %s: each token is one name's", other)
		} else {
			seen[t.Token] = path
		}
	}
	if (h.TLSCertFile == "") != (h.TLSKeyFile == "") {
		bad("http.tls_cert_file", "tls_cert_file and tls_key_file go together: set both or neither")
	} else if h.TLSCertFile != "" {
		if _, err := tls.LoadX509KeyPair(h.TLSCertFile, h.TLSKeyFile); err != nil {
			bad("http.tls_cert_file", "cannot load the certificate and key: %v", err)
		}
	}
	return c, errors.Join(errs...)
}

// Options returns the Fleet's options of c (validated).
func (c *Config) Options() (Options, error) {
	o := Options{Site: c.Site, Gateways: map[string]ed25519.PublicKey{}, OfflineAfter: c.OfflineAfter, OutboxWarn: c.OutboxWarn}
	for name, k := range c.Gateways {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			return o, fmt.Errorf("gateways[%q]: %w", name, err)
		}
		o.Gateways[name] = ed25519.PublicKey(raw)
	}
	if len(c.CentralKeys) > 0 {
		o.CentralKeys = map[string]ed25519.PublicKey{}
		for kid, k := range c.CentralKeys {
			raw, err := base64.StdEncoding.DecodeString(k)
			if err != nil {
				return o, fmt.Errorf("central_keys[%q]: %w", kid, err)
			}
			o.CentralKeys[kid] = ed25519.PublicKey(raw)
		}
	}
	return o, nil
}
