package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"time"

	"github.com/simonvetter/modbus"
)

const modbusExamples = `  # gateway config: gate: {driver: modbus, address: 127.0.0.1:1502, open_coil: 0,
  #   alarm_coil: 1, closed_input: 0, heartbeat_register: 100}
  devsim modbus --listen 127.0.0.1:1502 --open-coil 0 --alarm-coil 1 --closed-input 0 --watchdog 3s
  # a gate that jams open after it opens (the gateway reports "gate left open")
  devsim modbus --listen 127.0.0.1:1502 --closed-input 0 --stuck-open
`

// ioSim is a Modbus TCP remote I/O module driving a gate: coils (outputs),
// one discrete input that reads true while the gate is closed, holding
// registers, and a communication watchdog that switches every coil off when
// no request came for a while (as many I/O modules do).
type ioSim struct {
	out                   *printer
	open, alarm, closedIn int // -1: not simulated
	openFor               time.Duration
	stuck                 bool
	watchdog              time.Duration

	mu       sync.Mutex
	coils    map[uint16]bool
	regs     map[uint16]uint16
	openTill time.Time // the gate reads open until then (zero: closed)
	jammed   bool
	last     time.Time // last request
	tripped  bool
	beating  map[uint16]bool // heartbeat registers seen
}

func runModbus(ctx context.Context, args []string, out *printer, stderr io.Writer) error {
	fs := flag.NewFlagSet("modbus", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:1502", "host:port to serve Modbus TCP on")
	open := fs.Int("open-coil", 0, "the coil that opens the gate (-1: none)")
	alarm := fs.Int("alarm-coil", 1, "the alarm coil, shown by name (-1: none)")
	closedIn := fs.Int("closed-input", 0, "the discrete input that reads true while the gate is closed (-1: none)")
	openFor := fs.Duration("open-for", 3*time.Second, "how long the gate stays open after its open coil goes off")
	stuck := fs.Bool("stuck-open", false, "the gate jams open the first time it opens")
	watchdog := fs.Duration("watchdog", 0, "switch every coil off after this long without a request (0: no watchdog)")
	if err := parse(fs, args, stderr, modbusExamples); err != nil {
		return helpOK(err)
	}
	s := &ioSim{out: out, open: *open, alarm: *alarm, closedIn: *closedIn, openFor: *openFor, stuck: *stuck,
		watchdog: *watchdog, coils: map[uint16]bool{}, regs: map[uint16]uint16{}, beating: map[uint16]bool{},
		last: time.Now()}
	ln, err := net.Listen("tcp", *listen) // resolve :0 and check the address before the server does
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + addr, Timeout: 5 * time.Minute,
		MaxClients: 8, Logger: log.New(io.Discard, "", 0)}, s)
	if err != nil {
		return fmt.Errorf("modbus server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("modbus server on %s: %w", addr, err)
	}
	defer srv.Stop()
	out.printf("modbus: I/O module on %s (gateway config: gate: {driver: modbus, address: %s, open_coil: %d, alarm_coil: %d, closed_input: %d})",
		addr, addr, s.open, s.alarm, s.closedIn)
	if s.watchdog <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(s.watchdog / 10)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s.checkWatchdog(now)
		}
	}
}

// checkWatchdog switches every coil off once no request came for the
// watchdog's time.
func (s *ioSim) checkWatchdog(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tripped || now.Sub(s.last) < s.watchdog {
		return
	}
	s.tripped = true
	s.out.printf("modbus: watchdog: no request for %v, every output switched off", s.watchdog)
	for c, on := range s.coils {
		if on {
			s.setCoil(c, false, now)
		}
	}
}

func (s *ioSim) seen(now time.Time) {
	s.last = now
	if s.tripped {
		s.tripped = false
		s.out.printf("modbus: watchdog: requests again")
	}
}

func (s *ioSim) name(c uint16) string {
	switch int(c) {
	case s.open:
		return fmt.Sprintf("coil %d (open)", c)
	case s.alarm:
		return fmt.Sprintf("coil %d (alarm)", c)
	}
	return fmt.Sprintf("coil %d", c)
}

// setCoil changes a coil, prints the change and moves the simulated gate
// (callers hold mu).
func (s *ioSim) setCoil(c uint16, on bool, now time.Time) {
	if s.coils[c] == on {
		return
	}
	s.coils[c] = on
	state := "off"
	if on {
		state = "ON"
	}
	s.out.printf("modbus: %s %s", s.name(c), state)
	if int(c) != s.open {
		return
	}
	if on {
		if s.closedIn >= 0 && s.openTill.IsZero() {
			s.out.printf("modbus: gate opens")
		}
		s.openTill = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) // open while the coil is on
		if s.stuck {
			s.jammed = true
		}
	} else {
		s.openTill = now.Add(s.openFor)
	}
}

// closed reports the simulated gate's closed input (callers hold mu).
func (s *ioSim) closed(now time.Time) bool {
	if s.jammed {
		return false
	}
	if !s.openTill.IsZero() && !now.Before(s.openTill) {
		s.openTill = time.Time{}
		s.out.printf("modbus: gate closed")
	}
	return s.openTill.IsZero()
}

func (s *ioSim) HandleCoils(req *modbus.CoilsRequest) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.seen(now)
	out := make([]bool, req.Quantity)
	for i := range req.Quantity {
		a := req.Addr + i
		if req.IsWrite {
			s.setCoil(a, req.Args[i], now)
		}
		out[i] = s.coils[a]
	}
	return out, nil
}

func (s *ioSim) HandleDiscreteInputs(req *modbus.DiscreteInputsRequest) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.seen(now)
	out := make([]bool, req.Quantity)
	for i := range req.Quantity {
		if int(req.Addr+i) == s.closedIn {
			out[i] = s.closed(now)
		}
	}
	return out, nil
}

func (s *ioSim) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen(time.Now())
	out := make([]uint16, req.Quantity)
	for i := range req.Quantity {
		a := req.Addr + i
		if req.IsWrite {
			s.regs[a] = req.Args[i]
			if !s.beating[a] {
				s.beating[a] = true
				s.out.printf("modbus: register %d is being written (a heartbeat?)", a)
			}
		}
		out[i] = s.regs[a]
	}
	return out, nil
}

func (s *ioSim) HandleInputRegisters(*modbus.InputRegistersRequest) ([]uint16, error) {
	return nil, modbus.ErrIllegalFunction
}
