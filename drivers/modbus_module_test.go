package drivers

import (
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
)

// ioModule is a Modbus TCP remote I/O module played in-process by a real
// simonvetter/modbus server: coils the gateway writes, discrete inputs the
// test sets, holding registers, and exceptions on demand.
type ioModule struct {
	mu        sync.Mutex
	coils     map[uint16]bool
	inputs    map[uint16]bool
	regs      map[uint16]uint16
	refuse    map[uint16]error         // coil → the exception its writes get
	stall     map[uint16]chan struct{} // coil → its writes are applied, then answered once the channel is closed
	writes    chan coilWrite           // every coil write, in order
	regWrites chan uint16              // every heartbeat register value
	srv       *modbus.ModbusServer
	addr      string
}

type coilWrite struct {
	coil uint16
	on   bool
}

func newIOModule(t *testing.T) *ioModule {
	t.Helper()
	m := &ioModule{coils: map[uint16]bool{}, inputs: map[uint16]bool{}, regs: map[uint16]uint16{},
		refuse: map[uint16]error{}, stall: map[uint16]chan struct{}{}, writes: make(chan coilWrite, 10000), regWrites: make(chan uint16, 10000)}
	m.start(t, "127.0.0.1:0")
	t.Cleanup(m.stop)
	return m
}

// start serves on addr ("127.0.0.1:0" picks a port, kept by restarts).
func (m *ioModule) start(t *testing.T, addr string) {
	t.Helper()
	if addr == "127.0.0.1:0" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close()
	}
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + addr, Timeout: time.Minute,
		MaxClients: 4, Logger: log.New(io.Discard, "", 0)}, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("modbus server on %s: %v", addr, err)
	}
	m.mu.Lock()
	m.srv, m.addr = srv, addr
	m.mu.Unlock()
}

// stop stops the server and closes every connection: the module is gone.
func (m *ioModule) stop() {
	m.mu.Lock()
	srv := m.srv
	m.srv = nil
	m.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

func (m *ioModule) set(f func(m *ioModule)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

func (m *ioModule) HandleCoils(req *modbus.CoilsRequest) ([]bool, error) {
	m.mu.Lock()
	out := make([]bool, req.Quantity)
	var stall chan struct{}
	for i := range req.Quantity {
		a := req.Addr + i
		if err := m.refuse[a]; err != nil {
			m.mu.Unlock()
			return nil, err
		}
		if req.IsWrite {
			m.coils[a] = req.Args[i]
			m.writes <- coilWrite{a, req.Args[i]}
			if m.stall[a] != nil {
				stall = m.stall[a]
			}
		}
		out[i] = m.coils[a]
	}
	m.mu.Unlock()
	if stall != nil {
		<-stall // the write took effect; its answer is late
	}
	return out, nil
}

func (m *ioModule) coil(a uint16) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.coils[a]
}

func (m *ioModule) HandleDiscreteInputs(req *modbus.DiscreteInputsRequest) ([]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]bool, req.Quantity)
	for i := range req.Quantity {
		out[i] = m.inputs[req.Addr+i]
	}
	return out, nil
}

func (m *ioModule) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]uint16, req.Quantity)
	for i := range req.Quantity {
		a := req.Addr + i
		if req.IsWrite {
			m.regs[a] = req.Args[i]
			m.regWrites <- req.Args[i]
		}
		out[i] = m.regs[a]
	}
	return out, nil
}

func (m *ioModule) HandleInputRegisters(*modbus.InputRegistersRequest) ([]uint16, error) {
	return nil, modbus.ErrIllegalFunction
}

// expectWrites fails unless the next coil writes are want.
func (m *ioModule) expectWrites(t *testing.T, want ...coilWrite) {
	t.Helper()
	for i, w := range want {
		select {
		case got := <-m.writes:
			if got != w {
				t.Fatalf("coil write %d: %+v, want %+v", i, got, w)
			}
		case <-time.After(wait):
			t.Fatalf("coil write %d: none within %v, want %+v", i, wait, w)
		}
	}
}

func (m *ioModule) noWrites(t *testing.T) {
	t.Helper()
	select {
	case got := <-m.writes:
		t.Fatalf("unexpected coil write %+v", got)
	default:
	}
}
