package drivers

import (
	"fmt"
	"sync"

	"github.com/cargogate/cargogate/config"
)

// ScannerFactory builds a scanner from its configuration. It checks the
// configuration and has no side effects: it does not open ports.
type ScannerFactory func(cfg config.Scanner) (Scanner, error)

// GateFactory builds a gate from its configuration, like ScannerFactory.
type GateFactory func(cfg config.Gate) (Gate, error)

// Registry maps driver names to factories. The zero value is empty and ready;
// Default returns one holding the built-in drivers. It is safe for concurrent
// use.
type Registry struct {
	mu       sync.RWMutex
	scanners map[string]ScannerFactory
	gates    map[string]GateFactory
}

// Default returns a new registry with the built-in drivers, registered here
// and nowhere else.
func Default() *Registry {
	r := new(Registry)
	r.RegisterScanner("serial", newSerialScanner)
	r.RegisterScanner("tcp-client", newTCPClientScanner)
	r.RegisterScanner("tcp-server", newTCPServerScanner)
	r.RegisterGate("serial", newSerialGate)
	r.RegisterGate("modbus", newModbusGate)
	r.RegisterGate("none", newNoGate)
	return r
}

// newNoGate is driver "none": a station with screens only. It returns a nil
// Gate, which NewGate passes on, so that the caller wires no gate.
func newNoGate(config.Gate) (Gate, error) { return nil, nil }

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

// NewScanner builds the scanner named by cfg.Driver.
func (r *Registry) NewScanner(cfg config.Scanner) (Scanner, error) {
	r.mu.RLock()
	f, ok := r.scanners[cfg.Driver]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("scanner driver %q: %w", cfg.Driver, ErrUnknownDriver)
	}
	s, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("scanner driver %q: %w", cfg.Driver, err)
	}
	return s, nil
}

// NewGate builds the gate named by cfg.Driver. For driver "none" it returns
// (nil, nil): no gate, as if the station had no gate key.
func (r *Registry) NewGate(cfg config.Gate) (Gate, error) {
	r.mu.RLock()
	f, ok := r.gates[cfg.Driver]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("gate driver %q: %w", cfg.Driver, ErrUnknownDriver)
	}
	g, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("gate driver %q: %w", cfg.Driver, err)
	}
	return g, nil
}
