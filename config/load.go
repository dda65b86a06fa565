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
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults, applied by applyDefaults to keys left unset (zero).
const (
	DefaultGapGrace      = 2 * time.Second
	DefaultResyncTimeout = 30 * time.Second
	DefaultLookupTimeout = 300 * time.Millisecond
	DefaultCloseAfter    = 10 * time.Minute
	DefaultLogLevel      = "info"
	DefaultLogFormat     = "text"
	// DefaultHTTPMaxConns leaves room for DefaultMaxScreens WebSockets
	// and as many requests.
	DefaultHTTPMaxConns    = 512
	DefaultHTTPStreamStall = 30 * time.Second
	// Outbox bounds (see Outbox).
	DefaultOutboxMaxEvents    = 1_000_000
	DefaultOutboxMaxBytes     = 1 << 30
	DefaultOutboxAlarmPercent = 80
	DefaultAckTimeout         = 30 * time.Second
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

// Parse decodes data strictly, applies the defaults and validates the
// result. Its error joins every problem found, decoding and values alike,
// each a *KeyError naming its key path and, where known, its line: an
// unknown key (with the nearest valid one), a value of the wrong type
// (with the form expected), a value out of bounds. A syntax error, or a
// second document, is the only error alone.
func Parse(data []byte) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, syntaxError(data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(data, err)
		}
		return nil, fmt.Errorf("decode: line %d: a second YAML document; the file must hold one", extra.Line)
	}
	c := &Config{}
	w := newWalker()
	if doc := document(&root); doc != nil {
		// The walk reports every key and type problem and takes the
		// offending nodes out, so that what remains decodes.
		w.walk(doc, reflect.TypeOf(c).Elem(), "")
		if err := doc.Decode(c); err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
	}
	for i := range c.Stations {
		st := &c.Stations[i]
		path := stationPath(i, st.ID)
		if err := st.Scanner.decodeSection(ScannerKind); err != nil {
			w.add(path+".scanner", 0, err)
		}
		if st.Gate != nil {
			if err := st.Gate.decodeSection(GateKind); err != nil {
				w.add(path+".gate", 0, err)
			}
		}
	}
	c.applyDefaults()
	var p Problems
	c.validate(&p)
	if err := w.merge(p.Errs()); err != nil {
		return nil, err
	}
	return c, nil
}

// document returns the top node of a parsed file, nil for an empty one.
func document(root *yaml.Node) *yaml.Node {
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) != 1 {
			return nil
		}
		return root.Content[0]
	}
	if root.Kind == 0 {
		return nil
	}
	return root
}

func stationPath(i int, id string) string { return fmt.Sprintf("stations[%d] (%q)", i, id) }

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
// defaults live, but for the drivers' sections, whose defaults are their
// drivers' (Section.SetDefaults).
func (c *Config) applyDefaults() {
	if c.HTTP.MaxConns == 0 {
		c.HTTP.MaxConns = DefaultHTTPMaxConns
	}
	if c.HTTP.StreamStall == 0 {
		c.HTTP.StreamStall = DefaultHTTPStreamStall
	}
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
	// Negative means no lookup and stays negative, so that the value
	// survives Prepare again and a write-out and load (0 would read back
	// as unset, the default).
	if c.Central.AckTimeout == 0 {
		c.Central.AckTimeout = DefaultAckTimeout
	}
	if c.Central.LookupTimeout == 0 {
		c.Central.LookupTimeout = DefaultLookupTimeout
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
		st.Scanner.applyDefaults(ScannerKind)
		if st.Gate != nil {
			st.Gate.applyDefaults(GateKind)
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

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError is a YAML syntax error in the form of the other problems:
// "line N: YAML syntax: …", and, where the line is indented with a tab
// (which YAML forbids, and the parser reports in words of its own), the
// fix.
func syntaxError(data []byte, err error) error {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("YAML syntax: %w", err)
	}
	msg := fmt.Sprintf("line %s: YAML syntax: %s", m[1], m[2])
	if n, _ := strconv.Atoi(m[1]); n > 0 {
		lines := strings.Split(string(data), "\n")
		if n <= len(lines) {
			l := lines[n-1]
			if strings.Contains(l[:len(l)-len(strings.TrimLeft(l, " \t"))], "\t") {
				msg += "; the line is indented with a tab: indent with spaces"
			}
		}
	}
	return errors.New(msg)
}
