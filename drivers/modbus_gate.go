package drivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/cargogate/cargogate/internal/backoff"
)

// modbusTimeout bounds one Modbus request (write a coil, read an input). A
// Signal waits for at most one request in flight before its own, so it
// returns within about 2·modbusTimeout plus, for STOP with closed_input, one
// more read.
const modbusTimeout = 500 * time.Millisecond

// modbusRetry is how soon a coil that could not be switched off (the
// controller answered with an exception) is tried again.
const modbusRetry = 100 * time.Millisecond

// modbusGate is a gate controller (a PLC or a remote I/O module) on Modbus TCP
// (driver "modbus"). PASS pulses the open coil, STOP the alarm coil; STOP
// never writes the open coil (protocol §8).
type modbusGate struct {
	addr               string
	unit               uint8
	open, alarm        uint16
	closedInput        *uint16
	pulse              time.Duration
	closeTimeout       time.Duration // with closedInput: open this long after a pulse ends = left open
	heartbeat          time.Duration
	hbRegister, hbCoil *uint16
	reconnectMax       time.Duration
	watchdog           time.Duration // the module's communication watchdog, as configured; 0: none
	timeout            time.Duration // per request
	now                func() time.Time

	// io is held (capacity 1) by whoever talks to the controller: Run's
	// loop or a Signal. It guards every field below.
	io     chan struct{}
	conn   *modbusConn // nil while not connected
	rep    *reporter
	offAt  [2]time.Time // when the open [0] and alarm [1] coils go off; zero: off
	opened time.Time    // when the last open pulse ends (or ended)
	left   bool         // the gate reads open although it should be closed
	// The controller's exceptions (it answered, refusing), each cleared by
	// the next good answer to the same kind of request: to a Signal, to
	// switching a coil off, to a heartbeat.
	sigErr, offErr, beatErr error
	// unknown says why a coil may be on although the gateway cannot switch
	// it off (a coil write that may have reached the module, a link lost
	// mid-pulse); "" when every coil is known to be off or pulsing under
	// control. Cleared once a connection has switched every coil off.
	unknown string
	hbCount uint16
	wake    chan struct{} // capacity 1: offAt changed
}

var _ Gate = (*modbusGate)(nil)

// modbusConn is one connection to the controller. broken is closed when a
// request fails in a way that leaves the connection unusable.
type modbusConn struct {
	c      *modbus.ModbusClient
	broken chan struct{}
	err    error
}

func (c *modbusConn) fail(err error) {
	if c.err == nil { // callers hold io
		c.err = err
		close(c.broken)
	}
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func u16(p *int) *uint16 {
	if p == nil {
		return nil
	}
	v := uint16(*p)
	return &v
}

func newModbusGate(cfg ModbusGateConfig) (Gate, error) {
	var errs []error
	if err := checkAddress("address", cfg.Address); err != nil {
		errs = append(errs, err)
	}
	unit := ptrOr(cfg.Unit, DefaultUnit)
	if unit < 0 || unit > 255 {
		errs = append(errs, fmt.Errorf("unit %d: must be 0..255", unit))
	}
	addr := func(key string, p *int, required bool) {
		switch {
		case p == nil && required:
			errs = append(errs, errors.New(key+": missing"))
		case p != nil && (*p < 0 || *p > 65535):
			errs = append(errs, fmt.Errorf("%s %d: must be 0..65535", key, *p))
		}
	}
	addr("open_coil", cfg.OpenCoil, true)
	addr("alarm_coil", cfg.AlarmCoil, true)
	addr("closed_input", cfg.ClosedInput, false)
	addr("heartbeat_register", cfg.HeartbeatRegister, false)
	addr("heartbeat_coil", cfg.HeartbeatCoil, false)
	if cfg.OpenCoil != nil && cfg.AlarmCoil != nil && *cfg.OpenCoil == *cfg.AlarmCoil {
		errs = append(errs, fmt.Errorf("alarm_coil %d: the same as open_coil", *cfg.AlarmCoil))
	}
	if hc := cfg.HeartbeatCoil; hc != nil && ((cfg.OpenCoil != nil && *hc == *cfg.OpenCoil) || (cfg.AlarmCoil != nil && *hc == *cfg.AlarmCoil)) {
		errs = append(errs, fmt.Errorf("heartbeat_coil %d: the same as open_coil or alarm_coil", *hc))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"pulse_ms", time.Duration(cfg.PulseMS) * time.Millisecond},
		{"close_timeout", cfg.CloseTimeout},
		{"heartbeat_interval", cfg.HeartbeatInterval},
		{"reconnect_max", cfg.ReconnectMax},
		{"watchdog", ptrOr(cfg.Watchdog, 0)},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v: negative", d.key, d.v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	g := &modbusGate{
		addr: cfg.Address, unit: uint8(unit),
		open: uint16(*cfg.OpenCoil), alarm: uint16(*cfg.AlarmCoil), closedInput: u16(cfg.ClosedInput),
		pulse: time.Duration(cfg.PulseMS) * time.Millisecond, closeTimeout: cfg.CloseTimeout,
		heartbeat: cfg.HeartbeatInterval, hbRegister: u16(cfg.HeartbeatRegister), hbCoil: u16(cfg.HeartbeatCoil),
		reconnectMax: cfg.ReconnectMax, watchdog: DefaultWatchdog, timeout: modbusTimeout, now: time.Now,
		io: make(chan struct{}, 1), wake: make(chan struct{}, 1),
	}
	if g.pulse == 0 {
		g.pulse = DefaultPulseMS * time.Millisecond
	}
	if g.closeTimeout == 0 {
		g.closeTimeout = DefaultCloseTimeout
	}
	if g.heartbeat == 0 {
		g.heartbeat = DefaultHeartbeatInterval
	}
	if cfg.Watchdog != nil {
		g.watchdog = *cfg.Watchdog
	}
	return g, nil
}

func (g *modbusGate) lock(ctx context.Context) error {
	select {
	case g.io <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *modbusGate) unlock() { <-g.io }

// isException reports whether err is the controller's answer (a Modbus
// exception): the connection is fine, the request was refused. Any other
// error (timeout, closed socket, garbled frame) leaves the connection in an
// unknown state, so it is dropped and reopened.
func isException(err error) bool {
	var me modbus.Error
	if !errors.As(err, &me) {
		return false
	}
	switch me {
	case modbus.ErrIllegalFunction, modbus.ErrIllegalDataAddress, modbus.ErrIllegalDataValue,
		modbus.ErrServerDeviceFailure, modbus.ErrAcknowledge, modbus.ErrServerDeviceBusy,
		modbus.ErrMemoryParityError, modbus.ErrGWPathUnavailable, modbus.ErrGWTargetFailedToRespond:
		return true
	}
	return false
}

// failed records a request's error (callers hold io) in *fault if it is an
// exception; anything else breaks the connection. It returns err with what.
func (g *modbusGate) failed(c *modbusConn, fault *error, what string, err error) error {
	err = fmt.Errorf("%s: %w", what, err)
	if isException(err) {
		*fault = err
	} else {
		c.fail(err)
	}
	return err
}

// update reports Up or Fault from what is known (callers hold io).
func (g *modbusGate) update() {
	if g.conn == nil || g.conn.err != nil {
		return // Run reports Down
	}
	switch {
	case g.left:
		g.rep.set(Fault, fmt.Sprintf("gate left open: closed_input %d reads open", *g.closedInput))
	case g.offErr != nil:
		g.rep.set(Fault, g.offErr.Error())
	case g.unknown != "":
		g.rep.set(Fault, g.unknown)
	case g.sigErr != nil:
		g.rep.set(Fault, g.sigErr.Error())
	case g.beatErr != nil:
		g.rep.set(Fault, g.beatErr.Error())
	default:
		g.rep.set(Up, "connected to "+g.addr)
	}
}

// sawClosed records a reading of the closed input at t (callers hold io). The
// gate may read open for closeTimeout after an open pulse ends: someone or
// something is passing.
func (g *modbusGate) sawClosed(closed bool, t time.Time) {
	g.left = !closed && t.After(g.opened.Add(g.closeTimeout))
}

// Run connects to the controller, switches both coils off, reports Up, and
// then ends pulses on time and keeps a heartbeat (a request every heartbeat
// interval: the heartbeat register or coil written, the closed input read)
// until the connection fails or ctx is done. A failed connection is
// reported Down and reopened after the backoff. When ctx is done a pulse in
// progress is ended before the connection is closed (best effort: an I/O
// module with a watchdog drops it anyway once the heartbeat stops).
func (g *modbusGate) Run(ctx context.Context, state StateFunc) error {
	rep := newReporter(state)
	defer rep.flush()
	bo := backoff.Capped(g.reconnectMax)
	for ctx.Err() == nil {
		c, err := g.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			g.down(rep, err.Error())
			if !bo.Wait(ctx) {
				break
			}
			continue
		}
		opened := g.now()
		err = g.serve(ctx, c, rep)

		if g.lock(context.Background()) == nil {
			if ctx.Err() != nil && c.err == nil {
				g.offNow(c)
			}
			if c.err != nil && g.unknown == "" {
				for i, coil := range []uint16{g.open, g.alarm} {
					if !g.offAt[i].IsZero() {
						g.unknown = fmt.Sprintf("coil %d state unknown: the link was lost while it was on (%v)", coil, c.err)
						break
					}
				}
			}
			g.conn = nil
			g.offAt = [2]time.Time{}
			g.unlock()
		}
		c.c.Close()
		if err == nil || ctx.Err() != nil { // shutting down: no Down to report
			break
		}
		g.down(rep, err.Error())
		if g.now().Sub(opened) > bo.Cap() {
			bo.Reset()
		}
		if !bo.Wait(ctx) {
			break
		}
	}
	return nil
}

// down reports the gate Down with detail, or at Fault while a coil may be
// on (g.unknown): a gate that may be open is not merely unreachable.
func (g *modbusGate) down(rep *reporter, detail string) {
	if g.lock(context.Background()) != nil {
		return
	}
	unknown := g.unknown
	g.unlock()
	if unknown == "" {
		rep.set(Down, detail)
		return
	}
	if g.watchdog > 0 {
		unknown += fmt.Sprintf("; the module's watchdog switches it off %v after the last request", g.watchdog)
	} else {
		unknown += "; no module watchdog: it stays on until the gateway reconnects"
	}
	rep.set(Fault, unknown+"; reconnecting: "+detail)
}

// connect opens a connection. The client library's dial (5s timeout) does
// not take a context, so it runs in a goroutine that connect waits for even
// when ctx ends first.
func (g *modbusGate) connect(ctx context.Context) (*modbusConn, error) {
	mc, err := modbus.NewClient(&modbus.ClientConfiguration{URL: "tcp://" + g.addr, Timeout: g.timeout,
		Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		return nil, fmt.Errorf("modbus %s: %w", g.addr, err)
	}
	done := make(chan error, 1)
	go func() { done <- mc.Open() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		if <-done == nil {
			mc.Close()
		}
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", g.addr, err)
	}
	if err := mc.SetUnitId(g.unit); err != nil {
		mc.Close()
		return nil, fmt.Errorf("modbus %s: unit %d: %w", g.addr, g.unit, err)
	}
	return &modbusConn{c: mc, broken: make(chan struct{})}, nil
}

// serve runs one connection: the safe state first, then pulses and
// heartbeats. It returns nil when ctx is done, else why the connection broke.
func (g *modbusGate) serve(ctx context.Context, c *modbusConn, rep *reporter) error {
	if err := g.lock(ctx); err != nil {
		return nil
	}
	g.conn, g.rep, g.left = c, rep, false
	g.sigErr, g.offErr, g.beatErr = nil, nil, nil
	// Whatever a previous run or a lost link left on, the gate starts closed
	// and silent: both coils off before anything else. A coil the module
	// refuses to switch off is retried (endPulses) until it goes off.
	now := g.now()
	for i, coil := range []uint16{g.open, g.alarm} {
		if err := c.c.WriteCoil(coil, false); err != nil {
			g.failed(c, &g.offErr, fmt.Sprintf("coil %d off", coil), err)
			if c.err != nil {
				break
			}
			g.offAt[i] = now.Add(modbusRetry)
		}
	}
	if c.err == nil && g.offAt == [2]time.Time{} {
		g.unknown = ""
	}
	if c.err == nil {
		g.beat(c)
	}
	if c.err != nil {
		g.unlock()
		return c.err
	}
	g.update()
	g.unlock()

	t := time.NewTimer(0)
	defer t.Stop()
	nextBeat := g.now().Add(g.heartbeat)
	for {
		if err := g.lock(ctx); err != nil {
			return nil
		}
		now := g.now()
		g.endPulses(c, now)
		if c.err == nil && !now.Before(nextBeat) {
			g.beat(c)
			nextBeat = now.Add(g.heartbeat)
		}
		next := nextBeat
		for _, at := range g.offAt {
			if !at.IsZero() && at.Before(next) {
				next = at
			}
		}
		if c.err == nil {
			g.update()
		}
		broken := c.err // read under io: a Signal may break c
		g.unlock()
		if broken != nil {
			return broken
		}
		t.Reset(max(next.Sub(g.now()), 0))
		select {
		case <-ctx.Done():
			return nil
		case <-c.broken:
			return c.err
		case <-g.wake:
		case <-t.C:
		}
	}
}

// endPulses switches off the coils whose pulse is over (callers hold io). A
// coil the controller refuses to switch off is tried again soon.
func (g *modbusGate) endPulses(c *modbusConn, now time.Time) {
	for i, coil := range []uint16{g.open, g.alarm} {
		at := g.offAt[i]
		if at.IsZero() || now.Before(at) || c.err != nil {
			continue
		}
		if err := c.c.WriteCoil(coil, false); err != nil {
			g.failed(c, &g.offErr, fmt.Sprintf("end pulse: coil %d off", coil), err)
			g.offAt[i] = now.Add(modbusRetry)
			continue
		}
		g.offAt[i] = time.Time{}
		g.offErr = nil
	}
	if c.err == nil && g.offAt == [2]time.Time{} {
		g.unknown = "" // every coil that may have been on is off
	}
}

// offNow switches off the coils still pulsing (callers hold io).
func (g *modbusGate) offNow(c *modbusConn) {
	for i, coil := range []uint16{g.open, g.alarm} {
		if !g.offAt[i].IsZero() {
			c.c.WriteCoil(coil, false) // best effort, on the way out
		}
	}
}

// beat is one heartbeat (callers hold io): the heartbeat register written
// with a counter, or the heartbeat coil toggled, and the closed input read;
// with neither set, the open coil is read back, so that a dead connection is
// noticed before the next Signal needs it.
func (g *modbusGate) beat(c *modbusConn) {
	g.hbCount++
	var err error
	what := "heartbeat"
	switch {
	case g.hbRegister != nil:
		what = fmt.Sprintf("heartbeat: register %d", *g.hbRegister)
		err = c.c.WriteRegister(*g.hbRegister, g.hbCount)
	case g.hbCoil != nil:
		what = fmt.Sprintf("heartbeat: coil %d", *g.hbCoil)
		err = c.c.WriteCoil(*g.hbCoil, g.hbCount%2 == 1)
	case g.closedInput == nil:
		what = fmt.Sprintf("heartbeat: read coil %d", g.open)
		_, err = c.c.ReadCoil(g.open)
	}
	if err != nil {
		g.failed(c, &g.beatErr, what, err)
		return
	}
	if g.closedInput != nil {
		closed, err := c.c.ReadDiscreteInput(*g.closedInput)
		if err != nil {
			g.failed(c, &g.beatErr, fmt.Sprintf("read closed_input %d", *g.closedInput), err)
			return
		}
		g.sawClosed(closed, g.now())
	}
	g.beatErr = nil
}

// Signal pulses the open coil (pass) or the alarm coil (STOP) for pulse_ms:
// it switches the coil on and leaves switching it off to Run. A signal while
// the same coil is still on extends its pulse. It fails at once when not
// connected; otherwise it returns within about three Modbus timeouts or when
// ctx is done. With closed_input, STOP reads the gate back; a gate that reads
// open longer than close_timeout after the last open pulse is left open,
// and every Signal fails with ErrGateOpen (the coils are still pulsed) until
// it reads closed again.
func (g *modbusGate) Signal(ctx context.Context, pass bool) error {
	word, coil, i := "stop", g.alarm, 1
	if pass {
		word, coil, i = "pass", g.open, 0
	}
	fail := func(err error) error { return fmt.Errorf("gate %s: %s: %w", g.addr, word, err) }
	if err := g.lock(ctx); err != nil {
		return fail(err)
	}
	defer g.unlock()
	c := g.conn
	if c == nil || c.err != nil {
		return fail(ErrNotOpen)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := c.c.WriteCoil(coil, true); err != nil {
		err = g.failed(c, &g.sigErr, fmt.Sprintf("coil %d on", coil), err)
		if c.err != nil {
			// Not the module's refusal: a timeout or a garbled or lost
			// answer. The write may have reached the module, so the coil
			// may be on: state unknown, at fault until a new connection has
			// switched it off.
			g.unknown = fmt.Sprintf("coil %d state unknown: writing it on failed (%v) and may have reached the module", coil, err)
			g.rep.set(Fault, g.unknown)
			return fail(fmt.Errorf("%w: %w", ErrStateUnknown, err))
		}
		g.update()
		return fail(err)
	}
	now := g.now()
	g.offAt[i] = now.Add(g.pulse)
	if pass {
		g.opened = g.offAt[i]
	}
	select {
	case g.wake <- struct{}{}:
	default:
	}
	g.sigErr = nil
	if !pass && g.closedInput != nil {
		closed, err := c.c.ReadDiscreteInput(*g.closedInput)
		if err != nil {
			err = g.failed(c, &g.sigErr, fmt.Sprintf("read closed_input %d", *g.closedInput), err)
			g.update()
			return fail(err)
		}
		g.sawClosed(closed, now)
	}
	g.update()
	if g.left {
		return fail(ErrGateOpen)
	}
	return nil
}
