package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults, applied by applyDefaults to keys left unset (zero).
const (
	DefaultBaud          = 9600
	DefaultPass          = "PASS\r\n"
	DefaultStop          = "STOP\r\n"
	DefaultAckTimeout    = 500 * time.Millisecond
	DefaultPulseMS       = 1000
	DefaultUnit          = 1
	DefaultGapGrace      = 2 * time.Second
	DefaultResyncTimeout = 30 * time.Second
	DefaultLookupTimeout = 300 * time.Millisecond
	DefaultCloseAfter    = 10 * time.Minute
	DefaultLogLevel      = "info"
	DefaultLogFormat     = "text"
	// Outbox bounds (see Outbox).
	DefaultOutboxMaxEvents       = 1_000_000
	DefaultOutboxMaxBytes        = 1 << 30
	DefaultOutboxAlarmPercent    = 80
	DefaultOutboxRedeliverWindow = 30 * time.Second
)

// Defaults of the scanner and gate driver keys (docs/drivers.md).
const (
	DefaultFraming           = "lines"
	DefaultMaxReaders        = 1
	DefaultReconnectMax      = 10 * time.Second
	DefaultCloseTimeout      = 10 * time.Second
	DefaultHeartbeatInterval = time.Second
	// DefaultWatchdog is the Modbus I/O module's communication watchdog
	// the gateway counts on (gate key watchdog): the module switches its
	// outputs off this long after the gateway's last request.
	DefaultWatchdog = 3 * time.Second
)

// Load reads, decodes, defaults and validates the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes data strictly (an unknown key is an error naming its line),
// applies the defaults and validates the result. The error of a file that
// decodes but does not validate joins every problem found.
func Parse(data []byte) (*Config, error) {
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decode: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		return nil, fmt.Errorf("decode: line %d: a second YAML document; the file must hold one", extra.Line)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	markExplicit(&root, c)
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// markExplicit records keys whose zero value is meaningful and so must not be
// defaulted: stations[i].gate.unit.
func markExplicit(root *yaml.Node, c *Config) {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	stations := mapValue(doc, "stations")
	if stations == nil || stations.Kind != yaml.SequenceNode {
		return
	}
	for i, st := range stations.Content {
		if i >= len(c.Stations) || c.Stations[i].Gate == nil {
			continue
		}
		if mapValue(mapValue(st, "gate"), "unit") != nil {
			c.Stations[i].Gate.unitSet = true
		}
	}
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// applyDefaults fills every unset key that has a default. It is the one place
// defaults live. Driver-specific defaults are given only to the driver that
// uses them, so that Validate can report keys set for another driver.
func (c *Config) applyDefaults() {
	if c.Retention.OrdersDays == 0 {
		c.Retention.OrdersDays = 30
	}
	if c.Retention.EventsDays == 0 {
		c.Retention.EventsDays = 30
	}
	if c.Retention.Interval == 0 {
		c.Retention.Interval = time.Hour
	}
	if c.Central.GapGrace == 0 {
		c.Central.GapGrace = DefaultGapGrace
	}
	if c.Central.ResyncTimeout == 0 {
		c.Central.ResyncTimeout = DefaultResyncTimeout
	}
	switch {
	case c.Central.LookupTimeout == 0:
		c.Central.LookupTimeout = DefaultLookupTimeout
	case c.Central.LookupTimeout < 0:
		c.Central.LookupTimeout = 0 // lookups disabled
	}
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	c.Outbox.applyDefaults()
	for i := range c.Stations {
		st := &c.Stations[i]
		if st.CloseAfter == 0 {
			st.CloseAfter = DefaultCloseAfter
		}
		st.Scanner.applyDefaults()
		g := st.Gate
		if g == nil || g.Driver == "none" {
			continue
		}
		if g.ReconnectMax == 0 {
			g.ReconnectMax = DefaultReconnectMax
		}
		switch g.Driver {
		case "serial":
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
		case "modbus":
			if g.Unit == 0 && !g.unitSet {
				g.Unit = DefaultUnit
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
	}
}

// applyDefaults fills a scanner's unset keys; tcp-server takes a deprecated
// address as its listen.
func (s *Scanner) applyDefaults() {
	if s.Framing == "" {
		s.Framing = DefaultFraming
	}
	if s.ReconnectMax == 0 {
		s.ReconnectMax = DefaultReconnectMax
	}
	switch s.Driver {
	case "serial":
		if s.Baud == 0 {
			s.Baud = DefaultBaud
		}
	case "tcp-server":
		if s.Listen == "" {
			s.Listen, s.Address = s.Address, ""
		}
		if s.MaxReaders == 0 {
			s.MaxReaders = DefaultMaxReaders
		}
	}
}

// Prepare applies the defaults and validates, as Load does after decoding:
// for configurations built in code, such as the demo's.
func (c *Config) Prepare() error {
	c.applyDefaults()
	return c.Validate()
}

// Digest identifies a configuration's content (for the audit log and
// status): the first 16 hex digits of the SHA-256 of its JSON form. It
// says whether two loads differ without writing out their secrets.
func (c *Config) Digest() string {
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
