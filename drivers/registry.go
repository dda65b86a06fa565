package drivers

import (
	"fmt"
	"sync"

	"github.com/cargogate/cargogate/config"
)

// ScannerFactory builds a scanner from its driver's section (nil: a
// section with every key unset). It checks the section and has no side
// effects: it does not open ports.
type ScannerFactory func(section config.Section) (Scanner, error)

// GateFactory builds a gate from its driver's section, like ScannerFactory.
type GateFactory func(section config.Section) (Gate, error)

// Registry maps driver names to factories. The zero value is empty and ready;
// Default returns one holding the built-in drivers. It is safe for concurrent
// use.
type Registry struct {
	mu       sync.RWMutex
	scanners map[string]ScannerFactory
	gates    map[string]GateFactory
}

// builtin are the built-in drivers, registered here and nowhere else: each
// one's factory in Default's registry, its section with config (init), so
// that config.Load checks every driver's keys in any program that links
// this package. Registering opens nothing.
var builtin = []struct {
	kind    config.Kind
	name    string
	section func() config.Section
	scanner ScannerFactory
	gate    GateFactory
}{
	{config.ScannerKind, "serial", newSection[SerialScannerConfig], scanner(newSerialScanner), nil},
	{config.ScannerKind, "tcp-client", newSection[TCPClientConfig], scanner(newTCPClientScanner), nil},
	{config.ScannerKind, "tcp-server", newSection[TCPServerConfig], scanner(newTCPServerScanner), nil},
	{config.ScannerKind, config.HandheldDriver, newSection[HandheldConfig], scanner(newHandheld), nil},
	{config.ScannerKind, "hid", newSection[HIDConfig], scanner(newHIDScanner), nil},
	{config.GateKind, "serial", newSection[SerialGateConfig], nil, gate(newSerialGate)},
	{config.GateKind, "modbus", newSection[ModbusGateConfig], nil, gate(newModbusGate)},
	{config.GateKind, config.NoGate, newSection[NoGateConfig], nil, gate(newNoGate)},
}

func init() {
	for _, b := range builtin {
		config.RegisterSection(b.kind, b.name, b.section)
	}
}

// Default returns a new registry with the built-in drivers.
func Default() *Registry {
	r := new(Registry)
	for _, b := range builtin {
		if b.kind == config.ScannerKind {
			r.RegisterScanner(b.name, b.scanner)
		} else {
			r.RegisterGate(b.name, b.gate)
		}
	}
	return r
}

// section is a driver's section type: a struct whose pointer is a
// config.Section.
type section[C any] interface {
	*C
	config.Section
}

func newSection[C any, P section[C]]() config.Section { return P(new(C)) }

// sectionOf returns s as the driver's section type: nil is a section with
// every key unset; a section of another type is an error.
func sectionOf[C any, P section[C]](s config.Section) (C, error) {
	var zero C
	if s == nil {
		return zero, nil
	}
	c, ok := s.(P)
	if !ok || c == nil {
		return zero, fmt.Errorf("section %T: want %T", s, P(nil))
	}
	return *c, nil
}

// scanner and gate adapt a factory of a driver's section type.
func scanner[C any, P section[C]](f func(C) (Scanner, error)) ScannerFactory {
	return func(s config.Section) (Scanner, error) {
		c, err := sectionOf[C, P](s)
		if err != nil {
			return nil, err
		}
		return f(c)
	}
}

func gate[C any, P section[C]](f func(C) (Gate, error)) GateFactory {
	return func(s config.Section) (Gate, error) {
		c, err := sectionOf[C, P](s)
		if err != nil {
			return nil, err
		}
		return f(c)
	}
}

// newNoGate is driver "none": a station with screens only. It returns a nil
// Gate, which NewGate passes on, so that the caller wires no gate.
func newNoGate(NoGateConfig) (Gate, error) { return nil, nil }

// RegisterScanner adds a scanner driver. It panics on an empty or duplicate
// name, or a nil factory: registration is a programming step, not input.
func (r *Registry) RegisterScanner(name string, f ScannerFactory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.scanners == nil {
		r.scanners = make(map[string]ScannerFactory)
	}
	register(r.scanners, "scanner", name, f, f == nil)
}

// RegisterGate adds a gate driver; it panics like RegisterScanner.
func (r *Registry) RegisterGate(name string, f GateFactory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gates == nil {
		r.gates = make(map[string]GateFactory)
	}
	register(r.gates, "gate", name, f, f == nil)
}

func register[F any](m map[string]F, kind, name string, f F, isNil bool) {
	switch {
	case name == "":
		panic("drivers: register " + kind + " driver with an empty name")
	case isNil:
		panic(fmt.Sprintf("drivers: register %s driver %q: nil factory", kind, name))
	}
	if _, dup := m[name]; dup {
		panic(fmt.Sprintf("drivers: register %s driver %q twice", kind, name))
	}
	m[name] = f
}

// NewScanner builds the scanner named by cfg.Driver from cfg.Section.
func (r *Registry) NewScanner(cfg config.Device) (Scanner, error) {
	r.mu.RLock()
	f, ok := r.scanners[cfg.Driver]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("scanner driver %q: %w", cfg.Driver, ErrUnknownDriver)
	}
	s, err := f(cfg.Section)
	if err != nil {
		return nil, fmt.Errorf("scanner driver %q: %w", cfg.Driver, err)
	}
	return s, nil
}

// NewGate builds the gate named by cfg.Driver. For driver "none" it returns
// (nil, nil): no gate, as if the station had no gate key.
func (r *Registry) NewGate(cfg config.Device) (Gate, error) {
	r.mu.RLock()
	f, ok := r.gates[cfg.Driver]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("gate driver %q: %w", cfg.Driver, ErrUnknownDriver)
	}
	g, err := f(cfg.Section)
	if err != nil {
		return nil, fmt.Errorf("gate driver %q: %w", cfg.Driver, err)
	}
	return g, nil
}
