package drivers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
)

func ptr(v int) *int { return &v }

// tune changes a running gate's settings, holding its lock.
func tune(g Gate, f func(g *modbusGate)) {
	mg := g.(*modbusGate)
	mg.lock(context.Background())
	defer mg.unlock()
	f(mg)
}

const openCoil, alarmCoil, closedIn = 16, 17, 4

func modbusCfg(m *ioModule) gateCfg {
	return gateCfg{Driver: "modbus", Address: m.addr, Unit: ptr(1), OpenCoil: ptr(openCoil), AlarmCoil: ptr(alarmCoil),
		PulseMS: 30, HeartbeatInterval: 20 * time.Millisecond, ReconnectMax: 20 * time.Millisecond}
}

func runModbusGate(t *testing.T, cfg gateCfg) (Gate, *recorder, func()) {
	t.Helper()
	g, err := Default().NewGate(cfg.device())
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := start(t, func(ctx context.Context) error { return g.Run(ctx, rec.state) })
	return g, rec, stop
}

// connected waits for Up and the safe state written at every connection:
// both coils off.
func connected(t *testing.T, m *ioModule, rec *recorder) {
	t.Helper()
	m.expectWrites(t, coilWrite{openCoil, false}, coilWrite{alarmCoil, false})
	rec.expectState(t, Up)
}

// PASS pulses the open coil, STOP the alarm coil; STOP never writes the open
// coil; a second PASS within the pulse extends it.
func TestModbusGatePulses(t *testing.T) {
	m := newIOModule(t)
	cfg := modbusCfg(m)
	cfg.HeartbeatInterval = time.Hour // only the pulses write coils
	g, rec, stop := runModbusGate(t, cfg)
	connected(t, m, rec)
	ctx := context.Background()

	if err := g.Signal(ctx, true); err != nil {
		t.Fatal(err)
	}
	m.expectWrites(t, coilWrite{openCoil, true}, coilWrite{openCoil, false})

	for range 3 {
		if err := g.Signal(ctx, false); err != nil {
			t.Fatal(err)
		}
		m.expectWrites(t, coilWrite{alarmCoil, true}, coilWrite{alarmCoil, false})
	}

	tune(g, func(g *modbusGate) { g.pulse = time.Hour }) // the second PASS comes within the first's pulse
	if err := g.Signal(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := g.Signal(ctx, true); err != nil {
		t.Fatal(err)
	}
	m.expectWrites(t, coilWrite{openCoil, true}, coilWrite{openCoil, true})
	m.noWrites(t)

	// Shutting down ends the pulse in progress.
	stop()
	m.expectWrites(t, coilWrite{openCoil, false})
	m.noWrites(t)
	rec.noState(t)
}

// The heartbeat register counts up; a heartbeat coil toggles.
func TestModbusGateHeartbeat(t *testing.T) {
	t.Run("register", func(t *testing.T) {
		m := newIOModule(t)
		cfg := modbusCfg(m)
		cfg.HeartbeatRegister = ptr(100)
		_, rec, _ := runModbusGate(t, cfg)
		connected(t, m, rec)
		var last uint16
		for i := range 5 {
			select {
			case v := <-m.regWrites:
				if i > 0 && v != last+1 {
					t.Fatalf("heartbeat %d after %d", v, last)
				}
				last = v
			case <-time.After(wait):
				t.Fatal("no heartbeat")
			}
		}
	})
	t.Run("coil", func(t *testing.T) {
		m := newIOModule(t)
		cfg := modbusCfg(m)
		cfg.HeartbeatCoil = ptr(7)
		_, rec, _ := runModbusGate(t, cfg)
		m.expectWrites(t, coilWrite{openCoil, false}, coilWrite{alarmCoil, false}, coilWrite{7, true})
		rec.expectState(t, Up)
		m.expectWrites(t, coilWrite{7, false}, coilWrite{7, true}, coilWrite{7, false})
	})
}

// The module goes away with no pulse on: Down (the heartbeat notices, with
// no Signal), Signal fails at once, and once it is back the gate is Up with
// both coils switched off first.
func TestModbusGateServerDown(t *testing.T) {
	m := newIOModule(t)
	g, rec, _ := runModbusGate(t, modbusCfg(m))
	connected(t, m, rec)
	m.stop()
	rec.expectState(t, Down)
	if err := g.Signal(context.Background(), false); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Signal while down: %v, want ErrNotOpen", err)
	}
	m.start(t, m.addr)
	connected(t, m, rec)
	if err := g.Signal(context.Background(), false); err != nil {
		t.Fatalf("Signal after the module came back: %v", err)
	}
	m.expectWrites(t, coilWrite{alarmCoil, true})
}

// The link drops in the middle of a PASS pulse: the open coil may still be
// on, and nothing can switch it off until a reconnect. The gate is at fault
// with its coil state unknown (not merely down), the detail saying what
// ends the pulse (the module's watchdog, or nothing); once the module is
// back, both coils are switched off before anything else, and only then is
// the gate Up.
func TestModbusGateLinkLostMidPulse(t *testing.T) {
	for _, tc := range []struct {
		name     string
		watchdog *time.Duration
		detail   string
	}{
		{"default watchdog", nil, "the module's watchdog switches it off 3s after the last request"},
		{"no watchdog", new(time.Duration), "no module watchdog: it stays on until the gateway reconnects"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newIOModule(t)
			cfg := modbusCfg(m)
			cfg.PulseMS = 3_600_000
			cfg.Watchdog = tc.watchdog
			g, rec, _ := runModbusGate(t, cfg)
			connected(t, m, rec)
			if err := g.Signal(context.Background(), true); err != nil {
				t.Fatal(err)
			}
			m.expectWrites(t, coilWrite{openCoil, true})

			m.stop() // the link drops mid-pulse; the module keeps its coil on
			detail := rec.expectState(t, Fault)
			for _, want := range []string{fmt.Sprintf("coil %d state unknown", openCoil), tc.detail} {
				if !strings.Contains(detail, want) {
					t.Fatalf("fault detail %q lacks %q", detail, want)
				}
			}
			if err := g.Signal(context.Background(), false); !errors.Is(err, ErrNotOpen) {
				t.Fatalf("Signal while the link is down: %v, want ErrNotOpen", err)
			}
			if !m.coil(openCoil) {
				t.Fatal("the module's open coil went off by itself")
			}

			m.start(t, m.addr)
			connected(t, m, rec) // off, off: the first writes of the new connection; then Up
			if m.coil(openCoil) {
				t.Fatal("open coil still on after the reconnect")
			}
		})
	}
}

// The module refuses to switch the open coil off when the gateway reconnects
// after a pulse cut short: the gate stays at fault and the write is retried
// until the coil is off.
func TestModbusGateReconnectOffRefused(t *testing.T) {
	m := newIOModule(t)
	cfg := modbusCfg(m)
	cfg.PulseMS = 3_600_000
	g, rec, _ := runModbusGate(t, cfg)
	connected(t, m, rec)
	if err := g.Signal(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	m.expectWrites(t, coilWrite{openCoil, true})
	m.stop()
	rec.expectState(t, Fault) // the open coil's state unknown (TestModbusGateLinkLostMidPulse)

	m.set(func(m *ioModule) { m.refuse[openCoil] = modbus.ErrServerDeviceBusy })
	m.start(t, m.addr)
	m.expectWrites(t, coilWrite{alarmCoil, false}) // the open coil's off was refused
	m.set(func(m *ioModule) { delete(m.refuse, openCoil) })
	m.expectWrites(t, coilWrite{openCoil, false}) // retried
	rec.expectState(t, Up)
	if m.coil(openCoil) {
		t.Fatal("open coil still on")
	}
}

// A coil write that times out may have reached the module: Signal fails
// with ErrStateUnknown (not a plain error the station would take for "the
// gate stayed closed"), the gate is at fault with its coil state unknown,
// and the reconnection switches the coil off first.
func TestModbusGateWriteTimeoutStateUnknown(t *testing.T) {
	m := newIOModule(t)
	cfg := modbusCfg(m)
	cfg.HeartbeatInterval = time.Hour // only the pulses write coils
	cfg.PulseMS = 3_600_000
	g, rec, _ := runModbusGate(t, cfg)
	connected(t, m, rec)

	release := make(chan struct{})
	m.set(func(m *ioModule) { m.stall[openCoil] = release })
	err := g.Signal(context.Background(), true)
	m.set(func(m *ioModule) { delete(m.stall, openCoil) })
	close(release)
	if !errors.Is(err, ErrStateUnknown) {
		t.Fatalf("Signal whose write timed out: %v, want ErrStateUnknown", err)
	}
	m.expectWrites(t, coilWrite{openCoil, true}) // it did reach the module
	detail := rec.expectState(t, Fault)
	if !strings.Contains(detail, fmt.Sprintf("coil %d state unknown", openCoil)) {
		t.Fatalf("fault detail %q", detail)
	}
	connected(t, m, rec)
	if m.coil(openCoil) {
		t.Fatal("open coil still on after the reconnect")
	}
}

// Nothing listens at the address: Down, and Signal fails at once.
func TestModbusGateUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	g, rec, _ := runModbusGate(t, gateCfg{Driver: "modbus", Address: addr, OpenCoil: ptr(0), AlarmCoil: ptr(1), ReconnectMax: 20 * time.Millisecond})
	detail := rec.expectState(t, Down)
	if !strings.Contains(detail, addr) {
		t.Errorf("Down detail %q does not name the address", detail)
	}
	if err := g.Signal(context.Background(), true); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Signal: %v, want ErrNotOpen", err)
	}
	rec.noState(t)
}

// The module refuses the open coil (an exception, e.g. a wrong address in
// the configuration): Signal fails, the gate is at fault, the connection is
// kept; once the coil is accepted the gate is Up again.
func TestModbusGateException(t *testing.T) {
	m := newIOModule(t)
	g, rec, _ := runModbusGate(t, modbusCfg(m))
	connected(t, m, rec)
	m.set(func(m *ioModule) { m.refuse[openCoil] = modbus.ErrIllegalDataAddress })
	err := g.Signal(context.Background(), true)
	if err == nil || !strings.Contains(err.Error(), "illegal data address") {
		t.Fatalf("refused Signal: %v", err)
	}
	rec.expectState(t, Fault)

	// STOP does not use the open coil: it works meanwhile.
	if err := g.Signal(context.Background(), false); err != nil {
		t.Fatalf("STOP while the open coil is refused: %v", err)
	}
	rec.expectState(t, Up)
	m.set(func(m *ioModule) { delete(m.refuse, openCoil) })
	if err := g.Signal(context.Background(), true); err != nil {
		t.Fatalf("Signal after the fix: %v", err)
	}
	rec.noState(t)
}

// A pulse the module refuses to end keeps the gate at fault and is retried
// until the coil goes off.
func TestModbusGatePulseEndRefused(t *testing.T) {
	m := newIOModule(t)
	g, rec, _ := runModbusGate(t, modbusCfg(m))
	connected(t, m, rec)
	if err := g.Signal(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	m.expectWrites(t, coilWrite{openCoil, true})
	m.set(func(m *ioModule) { m.refuse[openCoil] = modbus.ErrServerDeviceBusy })
	rec.expectState(t, Fault)
	m.set(func(m *ioModule) { delete(m.refuse, openCoil) })
	m.expectWrites(t, coilWrite{openCoil, false})
	rec.expectState(t, Up)
}

// With closed_input: a gate that still reads open close_timeout after its
// open pulse ended was left open: a fault, and every Signal fails, until it
// reads closed. A gate open within close_timeout of a PASS is fine.
func TestModbusGateLeftOpen(t *testing.T) {
	m := newIOModule(t)
	m.set(func(m *ioModule) { m.inputs[closedIn] = true })
	cfg := modbusCfg(m)
	cfg.ClosedInput = ptr(closedIn)
	cfg.CloseTimeout = time.Hour
	g, rec, _ := runModbusGate(t, cfg)
	connected(t, m, rec)
	ctx := context.Background()

	// PASS, the gate opens, and STOP comes for the next item while it is
	// still open: within close_timeout, so no fault.
	if err := g.Signal(ctx, true); err != nil {
		t.Fatal(err)
	}
	m.set(func(m *ioModule) { m.inputs[closedIn] = false })
	if err := g.Signal(ctx, false); err != nil {
		t.Fatalf("STOP while the gate closes after a PASS: %v", err)
	}
	rec.noState(t)

	// The gate is forced open with no PASS: left open.
	tune(g, func(g *modbusGate) { g.closeTimeout = 0 })
	m.set(func(m *ioModule) { m.inputs[closedIn] = false })
	detail := rec.expectState(t, Fault)
	if !strings.Contains(detail, "left open") {
		t.Errorf("Fault detail %q", detail)
	}
	if err := g.Signal(ctx, false); !errors.Is(err, ErrGateOpen) {
		t.Fatalf("STOP with the gate left open: %v, want ErrGateOpen", err)
	}
	m.set(func(m *ioModule) { m.inputs[closedIn] = true })
	rec.expectState(t, Up)
	if err := g.Signal(ctx, false); err != nil {
		t.Fatalf("STOP once closed: %v", err)
	}
}

// STOP reads the gate back at once: a gate left open is reported by the
// STOP itself, not only at the next heartbeat.
func TestModbusGateStopReadsBack(t *testing.T) {
	m := newIOModule(t)
	cfg := modbusCfg(m)
	cfg.ClosedInput = ptr(closedIn)
	cfg.CloseTimeout = time.Millisecond
	cfg.HeartbeatInterval = time.Hour
	m.set(func(m *ioModule) { m.inputs[closedIn] = true })
	g, rec, _ := runModbusGate(t, cfg)
	connected(t, m, rec)
	m.set(func(m *ioModule) { m.inputs[closedIn] = false })
	if err := g.Signal(context.Background(), false); !errors.Is(err, ErrGateOpen) {
		t.Fatalf("STOP: %v, want ErrGateOpen", err)
	}
	rec.expectState(t, Fault)
}

// noisyServer accepts Modbus connections and answers every request with
// reply(request): garbage, half a frame, or nothing.
func noisyServer(t *testing.T, reply func(req []byte) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 260)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(reply(buf[:n])); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A controller that answers with noise is never Up, Signal fails, and Run
// still stops promptly.
func TestModbusGateNoise(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	var rmu sync.Mutex
	for _, tc := range []struct {
		name  string
		reply func(req []byte) []byte
	}{
		{"random bytes", func([]byte) []byte {
			rmu.Lock()
			defer rmu.Unlock()
			b := make([]byte, 1+r.IntN(300))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			return b
		}},
		{"half a frame then silence", func(req []byte) []byte { return req[:min(len(req), 5)] }},
		{"64 KiB", func([]byte) []byte { return make([]byte, 64<<10) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := noisyServer(t, tc.reply)
			g, rec, stop := runModbusGate(t, gateCfg{Driver: "modbus", Address: addr, OpenCoil: ptr(0), AlarmCoil: ptr(1),
				ReconnectMax: 20 * time.Millisecond})
			rec.expectState(t, Down)
			if err := g.Signal(context.Background(), true); err == nil {
				t.Fatal("Signal to a noisy controller succeeded")
			}
			stop()
			for {
				select {
				case e := <-rec.states:
					if e.s == Up {
						t.Fatalf("noisy controller reported up: %s", e.detail)
					}
					continue
				default:
				}
				break
			}
		})
	}
}

func TestModbusGateConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     gateCfg
		wantErr string
	}{
		{"ok", gateCfg{Address: "h:502", OpenCoil: ptr(0), AlarmCoil: ptr(1)}, ""},
		{"no address", gateCfg{OpenCoil: ptr(0), AlarmCoil: ptr(1)}, "address"},
		{"no open coil", gateCfg{Address: "h:502", AlarmCoil: ptr(1)}, "open_coil"},
		{"same coils", gateCfg{Address: "h:502", OpenCoil: ptr(1), AlarmCoil: ptr(1)}, "alarm_coil"},
		{"heartbeat coil", gateCfg{Address: "h:502", OpenCoil: ptr(0), AlarmCoil: ptr(1), HeartbeatCoil: ptr(0)}, "heartbeat_coil"},
		{"coil range", gateCfg{Address: "h:502", OpenCoil: ptr(70000), AlarmCoil: ptr(1)}, "0..65535"},
		{"unit", gateCfg{Address: "h:502", OpenCoil: ptr(0), AlarmCoil: ptr(1), Unit: ptr(256)}, "unit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Driver = "modbus"
			_, err := Default().NewGate(tc.cfg.device())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// Driver none is no gate: NewGate returns nil and no error, so the station
// is wired without one.
func TestGateNone(t *testing.T) {
	g, err := Default().NewGate(gateCfg{Driver: "none"}.device())
	if err != nil || g != nil {
		t.Fatalf("NewGate(none) = %v, %v; want nil, nil", g, err)
	}
}
