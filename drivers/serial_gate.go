package drivers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cargogate/cargogate/internal/backoff"
)

// The defaults of the frames, baud and ack timeout (SerialGateConfig) are
// applied again here to the zero values of a section built in code.
const (
	// gateWriteTimeout bounds writing one frame. Signal never blocks longer
	// than gateWriteTimeout + the ack timeout.
	gateWriteTimeout = 500 * time.Millisecond
	// gateRxKeep is how many received bytes are kept while waiting for an ack.
	gateRxKeep = 4096
)

// serialGate is a gate controller on a serial port that takes ASCII or binary
// frames (driver "serial").
type serialGate struct {
	port            string
	baud            int
	pass, stop, ack []byte
	ackTimeout      time.Duration
	writeTimeout    time.Duration
	reconnectMax    time.Duration // backoff cap; 0: backoff.DefaultMax
	signal          sync.Mutex    // serializes Signal: one frame (and its ack) at a time

	mu   sync.Mutex // guards conn and rep
	conn *gateConn  // nil while the port is not open
	rep  *reporter
}

var _ Gate = (*serialGate)(nil)

func newSerialGate(cfg SerialGateConfig) (Gate, error) {
	baud, err := checkSerial(cfg.Port, cfg.Baud)
	if err != nil {
		return nil, err
	}
	if cfg.ReconnectMax < 0 {
		return nil, fmt.Errorf("reconnect_max %v: negative", cfg.ReconnectMax)
	}
	g := &serialGate{port: cfg.Port, baud: baud, ackTimeout: cfg.AckTimeout, writeTimeout: gateWriteTimeout,
		reconnectMax: cfg.ReconnectMax}
	if g.ackTimeout <= 0 {
		g.ackTimeout = DefaultAckTimeout
	}
	var errs []error
	frame := func(key, text, def string) []byte {
		if text == "" {
			text = def
		}
		b, err := DecodeFrame(text)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		case len(b) == 0 && def != "":
			errs = append(errs, fmt.Errorf("%s: empty frame", key))
		}
		return b
	}
	g.pass = frame("pass", cfg.Pass, DefaultPass)
	g.stop = frame("stop", cfg.Stop, DefaultStop)
	if cfg.Ack != "" {
		g.ack = frame("ack", cfg.Ack, "")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return g, nil
}

// gateConn is one opening of the port: Run's read loop fills rx, Signal
// writes frames and waits in rx for the ack.
type gateConn struct {
	p      *serialPort
	notify chan struct{} // capacity 1: rx grew
	broken chan struct{} // closed once the connection is lost
	once   sync.Once
	err    error // why it was lost; set before broken is closed

	mu      sync.Mutex
	rx      []byte
	closed  bool           // no more writes may start
	writers sync.WaitGroup // writes in flight, waited for before the port is closed
}

func newGateConn(p *serialPort) *gateConn {
	return &gateConn{p: p, notify: make(chan struct{}, 1), broken: make(chan struct{})}
}

func (c *gateConn) fail(err error) {
	c.once.Do(func() { c.err = err; close(c.broken) })
}

func (c *gateConn) push(b []byte) {
	c.mu.Lock()
	c.rx = append(c.rx, b...)
	if over := len(c.rx) - gateRxKeep; over > 0 {
		c.rx = append(c.rx[:0], c.rx[over:]...)
	}
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *gateConn) drain() {
	c.mu.Lock()
	c.rx = c.rx[:0]
	c.mu.Unlock()
	select {
	case <-c.notify:
	default:
	}
}

func (c *gateConn) received(ack []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Contains(c.rx, ack)
}

// write writes b within timeout. The write runs in its own goroutine so that
// a port that stops draining cannot hold the caller; Run waits for it before
// closing the port (tarm/serial ports are opened without flow control, so a
// write drains at the baud rate or fails).
func (c *gateConn) write(b []byte, timeout time.Duration) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrNotOpen
	}
	c.writers.Add(1)
	c.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		defer c.writers.Done()
		_, err := c.p.write(b)
		done <- err
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("write %s: %w after %v", c.p.name, ErrWriteTimeout, timeout)
	}
}

// shut stops new writes and waits for those in flight.
func (c *gateConn) shut() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.writers.Wait()
}

// Run opens the port, reads what the controller sends (acks) until the port
// fails, reports Down, waits its backoff and reopens, until ctx is done.
// Signal reports Fault on a missing ack and Up again on the next good one.
func (g *serialGate) Run(ctx context.Context, state StateFunc) error {
	rep := newReporter(state)
	defer rep.flush()
	bo := backoff.Capped(g.reconnectMax)
	for ctx.Err() == nil {
		p, err := openSerial(g.port, g.baud)
		if err != nil {
			rep.set(Down, err.Error())
			if !bo.Wait(ctx) {
				break
			}
			continue
		}
		c := newGateConn(p)
		opened := time.Now()
		g.mu.Lock()
		g.conn, g.rep = c, rep
		// set only queues the report (it never waits for the StateFunc), so
		// it may be made under g.mu: a station whose device channel is full
		// while it waits for g.mu in Signal is not held up by it.
		rep.set(Up, "opened "+g.port)
		g.mu.Unlock()

		err = g.readLoop(ctx, c)

		g.mu.Lock()
		g.conn = nil
		g.mu.Unlock()
		c.fail(fmt.Errorf("%s closed: %w", g.port, ErrNotOpen)) // wakes a Signal waiting for its ack
		c.shut()
		p.close()
		if err == nil || ctx.Err() != nil { // shutting down: no Down to report
			break
		}
		rep.set(Down, err.Error())
		if time.Since(opened) > bo.Cap() {
			bo.Reset()
		}
		if !bo.Wait(ctx) {
			break
		}
	}
	return nil
}

// readLoop returns nil when ctx is done, else why the connection was lost.
func (g *serialGate) readLoop(ctx context.Context, c *gateConn) error {
	buf := make([]byte, 256)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.broken:
			return c.err
		default:
		}
		n, err := c.p.read(buf)
		if n > 0 {
			c.push(buf[:n])
		}
		if err != nil {
			return err
		}
	}
}

// Signal writes the PASS or STOP frame and, with an ack configured, waits for
// it. It fails at once when the port is not open; otherwise it returns within
// the write timeout plus the ack timeout, or when ctx is done. A write error
// drops the connection (Run reopens it, reporting Down); a missing ack reports
// Fault but keeps it.
func (g *serialGate) Signal(ctx context.Context, pass bool) error {
	g.signal.Lock()
	defer g.signal.Unlock()
	word, frame := "stop", g.stop
	if pass {
		word, frame = "pass", g.pass
	}
	g.mu.Lock()
	c := g.conn
	g.mu.Unlock()
	if c == nil {
		return fmt.Errorf("gate %s: %s: %w", g.port, word, ErrNotOpen)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gate %s: %s: %w", g.port, word, err)
	}
	c.drain()
	if err := c.write(frame, g.writeTimeout); err != nil {
		c.fail(err)
		return fmt.Errorf("gate %s: %s: %w", g.port, word, err)
	}
	if len(g.ack) == 0 {
		g.report(c, Up, "frame written")
		return nil
	}
	t := time.NewTimer(g.ackTimeout)
	defer t.Stop()
	for !c.received(g.ack) {
		select {
		case <-c.notify:
		case <-t.C:
			err := fmt.Errorf("%w within %v", ErrAckTimeout, g.ackTimeout)
			g.report(c, Fault, fmt.Sprintf("%s: %v", word, err))
			return fmt.Errorf("gate %s: %s: %w", g.port, word, err)
		case <-c.broken:
			return fmt.Errorf("gate %s: %s: %w", g.port, word, c.err)
		case <-ctx.Done():
			return fmt.Errorf("gate %s: %s: waiting for ack: %w", g.port, word, ctx.Err())
		}
	}
	g.report(c, Up, "ack received")
	return nil
}

// report sets the state on behalf of c, unless c was replaced meanwhile (so a
// late ack cannot report Up after Run reported the port Down).
func (g *serialGate) report(c *gateConn, s State, detail string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == c {
		g.rep.set(s, detail)
	}
}
