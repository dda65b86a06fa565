package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Kind is the kind of a station's device section: its YAML key.
type Kind string

// Device kinds.
const (
	ScannerKind Kind = "scanner"
	GateKind    Kind = "gate"
)

// NoGate is the gate driver of a station with screens only: no gate.
const NoGate = "none"

// HandheldDriver is the scanner driver of a handheld station: the codes
// come from paired handheld devices through the gateway's page, and the
// station has no gate.
const HandheldDriver = "handheld"

// Device is a station's scanner or gate: the name of its driver, and the
// driver's own section, whose type and checks belong to the driver (package
// drivers), the way a telegraf plugin owns its configuration. config knows
// a section only through the Section interface and the type registered
// for the driver's name (RegisterSection).
type Device struct {
	// Driver names the driver, e.g. serial, tcp-client, modbus, none.
	Driver string `yaml:"driver"`
	// Section holds the driver's keys, decoded strictly from the file,
	// defaults applied (e.g. *drivers.SerialGateConfig). A configuration
	// built in code sets it, or leaves it nil: every key unset.
	Section Section `yaml:"-"`

	// node is the raw section while Parse decodes; nil after, so that
	// two loads of the same settings compare equal (reflect.DeepEqual),
	// whatever lines they stood on.
	node *yaml.Node
}

// Section is a driver's configuration section: a pointer to a struct whose
// fields carry yaml tags (`yaml:",inline"` for embedded common keys). Parse
// decodes the section's keys into it, refusing unknown ones, then calls
// SetDefaults, then Check.
type Section interface {
	// SetDefaults fills the keys left unset. It may be called more than
	// once.
	SetDefaults()
	// Check reports every problem of the section, defaults applied, each
	// naming its key (p.Add("baud", …)).
	Check(p *Problems)
}

// Warner is a Section whose valid settings can still be unsafe (a Modbus
// module without a watchdog): Warnings reports them like Check, each
// naming its key. Config.Warnings collects them.
type Warner interface {
	Warnings(p *Problems)
}

// sections are the registered drivers' section types, per kind, in the
// order registered.
var sections struct {
	sync.RWMutex
	m     map[Kind]map[string]func() Section
	names map[Kind][]string
}

// RegisterSection makes a driver's section known to Parse: newSection
// returns a new, empty section of the driver's type. Package drivers
// registers the built-in drivers. It panics on an empty or duplicate name,
// an unknown kind or a nil newSection: registration is a programming step,
// not input.
func RegisterSection(kind Kind, driver string, newSection func() Section) {
	sections.Lock()
	defer sections.Unlock()
	switch {
	case kind != ScannerKind && kind != GateKind:
		panic(fmt.Sprintf("config: register section of unknown kind %q", kind))
	case driver == "":
		panic("config: register " + string(kind) + " section with an empty driver name")
	case newSection == nil:
		panic(fmt.Sprintf("config: register %s section %q: nil constructor", kind, driver))
	}
	if sections.m == nil {
		sections.m = map[Kind]map[string]func() Section{}
		sections.names = map[Kind][]string{}
	}
	if sections.m[kind] == nil {
		sections.m[kind] = map[string]func() Section{}
	}
	if _, dup := sections.m[kind][driver]; dup {
		panic(fmt.Sprintf("config: register %s section %q twice", kind, driver))
	}
	sections.m[kind][driver] = newSection
	sections.names[kind] = append(sections.names[kind], driver)
}

// Drivers returns the registered driver names of kind, in the order
// registered.
func Drivers(kind Kind) []string {
	sections.RLock()
	defer sections.RUnlock()
	return slices.Clone(sections.names[kind])
}

func lookupSection(kind Kind, driver string) (func() Section, bool) {
	sections.RLock()
	defer sections.RUnlock()
	f, ok := sections.m[kind][driver]
	return f, ok
}

// sectionKeys returns the keys of a section type (struct fields' yaml
// names, inline structs flattened).
func sectionKeys(t reflect.Type) []string {
	var keys []string
	for _, f := range structFields(t) {
		keys = append(keys, f.key)
	}
	return keys
}

// otherDriver returns a driver of kind, other than driver, whose section
// has key, or "".
func otherDriver(kind Kind, driver, key string) string {
	for _, name := range Drivers(kind) {
		if name == driver {
			continue
		}
		f, _ := lookupSection(kind, name)
		if slices.Contains(sectionKeys(reflect.TypeOf(f())), key) {
			return name
		}
	}
	return ""
}

// UnmarshalYAML keeps the section's node for decodeSection, which knows
// the device's kind.
func (d *Device) UnmarshalYAML(n *yaml.Node) error {
	*d = Device{node: n}
	if v := mapValue(n, "driver"); v != nil {
		d.Driver = v.Value
	}
	return nil
}

// MarshalYAML writes the driver and its section's keys side by side, as
// the file holds them, so that a configuration built in code can be
// written out and loaded again.
func (d Device) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	if d.Section != nil {
		if err := n.Encode(d.Section); err != nil {
			return nil, err
		}
	}
	driver := []*yaml.Node{{Kind: yaml.ScalarNode, Value: "driver"}, {Kind: yaml.ScalarNode, Value: d.Driver}}
	n.Content = append(driver, n.Content...)
	return n, nil
}

// decodeSection decodes the kept node into the driver's section type;
// without a registered driver it leaves Section nil (Validate reports the
// driver).
func (d *Device) decodeSection(kind Kind) error {
	n := d.node
	d.node = nil
	newSection, ok := lookupSection(kind, d.Driver)
	if !ok || n == nil {
		return nil
	}
	keys := *n
	keys.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "driver" {
			keys.Content = append(keys.Content, n.Content[i], n.Content[i+1])
		}
	}
	s := newSection()
	if err := keys.Decode(s); err != nil {
		return err
	}
	d.Section = s
	return nil
}

// applyDefaults gives a registered driver without a section an empty one,
// then the section its defaults.
func (d *Device) applyDefaults(kind Kind) {
	if d.Section == nil {
		if newSection, ok := lookupSection(kind, d.Driver); ok {
			d.Section = newSection()
		}
	}
	if d.Section != nil {
		d.Section.SetDefaults()
	}
}

func (d *Device) validate(p *Problems, kind Kind, path string) {
	newSection, ok := lookupSection(kind, d.Driver)
	if !ok {
		names := Drivers(kind)
		if len(names) == 0 {
			p.Add(path+".driver", "%q: no %s drivers are registered (the program does not link package drivers)", d.Driver, kind)
			return
		}
		p.Add(path+".driver", "must be one of %s (got %q)", strings.Join(names, ", "), d.Driver)
		return
	}
	if d.Section == nil {
		d.applyDefaults(kind)
	}
	if want := reflect.TypeOf(newSection()); reflect.TypeOf(d.Section) != want {
		p.Add(path, "section %T given for driver %s, which takes %v", d.Section, d.Driver, want)
		return
	}
	d.Section.Check(p.Under(path))
}

// Problems collects the problems of a configuration, each naming its key
// path. Validate and the drivers' sections (Section.Check) report through
// it; Under gives a section its own prefix. The zero value is ready.
type Problems struct {
	prefix string
	list   *[]*KeyError
}

// KeyError is one problem of a configuration: the key path, the line of
// the file where Parse found the key (0: not known, or built in code), and
// what is wrong.
type KeyError struct {
	Path string
	Line int
	Err  error
}

func (e *KeyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %v", e.Line, e.Path, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }

func (p *Problems) init() {
	if p.list == nil {
		p.list = new([]*KeyError)
	}
}

func (p *Problems) path(key string) string {
	switch {
	case p.prefix == "":
		return key
	case key == "":
		return p.prefix
	case strings.HasPrefix(key, "["):
		return p.prefix + key
	}
	return p.prefix + "." + key
}

// Add reports a problem of key (a path below p's prefix; "" the prefix
// itself).
func (p *Problems) Add(key, format string, a ...any) {
	p.Wrap(key, fmt.Errorf(format, a...))
}

// Wrap reports err as a problem of key.
func (p *Problems) Wrap(key string, err error) {
	p.init()
	*p.list = append(*p.list, &KeyError{Path: p.path(key), Err: err})
}

// Under returns a Problems whose keys are below path, collecting into p.
func (p *Problems) Under(path string) *Problems {
	p.init()
	return &Problems{prefix: p.path(path), list: p.list}
}

// Errs returns the problems reported so far.
func (p *Problems) Errs() []*KeyError {
	if p.list == nil {
		return nil
	}
	return *p.list
}

// Err joins the problems reported so far (nil if none).
func (p *Problems) Err() error {
	var errs []error
	for _, e := range p.Errs() {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}
