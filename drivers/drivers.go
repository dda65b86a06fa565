// Package drivers talks to the field devices of a station: scanners, whose
// bytes it turns into code reads, and gate controllers, to which it sends
// PASS or STOP frames. It knows nothing of customs: bytes in, lines out;
// decisions in, frames out. Drivers are found by name in a Registry.
package drivers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/drivers/internal/backoff"
	"github.com/cargogate/cargogate/drivers/lines"
)

// State of a device, reported on every change (not on every failed attempt).
type State string

// Device states (protocol §3, device events).
const (
	Up    State = "up"
	Down  State = "down"
	Fault State = "fault"
)

// StateFunc is called by a driver when its device changes state. Calls for
// one device are never concurrent and come in order. It is called from a
// goroutine of its own, never under a driver's lock nor from Signal, so it
// may block for a while (a full channel) without holding the device up; it
// must return once the ctx given to Run is done, since Run waits for the
// reports it made before returning.
type StateFunc func(s State, detail string)

// MaxLine is the longest code that is not overlong (protocol §7).
const MaxLine = lines.MaxLine

// Read is one code read from a scanner.
type Read struct {
	// Line is the code without its terminator/STX/ETX framing; never empty.
	// It belongs to the receiver.
	Line []byte
	// Overlong: the line exceeded 512 bytes (Line holds the first 513 bytes
	// at most); the caller decides it invalid_code.
	Overlong bool
	// At is when the last byte arrived (the chunk holding it was read).
	At time.Time
}

// Scanner reads codes until ctx is done. It owns reopening its port with
// capped, jittered backoff (100ms doubling to reconnect_max, default 10s,
// ±20% jitter), reports Up/Down via state, and calls emit for each code (emit
// must not block long; calls are never concurrent). Run returns nil when ctx
// is done; it reports no state change on the way out.
type Scanner interface {
	Run(ctx context.Context, emit func(Read), state StateFunc) error
}

// Gate tells a gate controller a decision. Registry.NewGate returns a nil
// Gate for driver "none". Signal returns an error when the
// gate could not be told (device down, write error, missing ack); the caller
// treats that as a fault and the gate stays closed. Run owns the connection
// (open, reopen with backoff, report state) until ctx is done; Signal fails
// at once while Run is not running or the device is not open.
type Gate interface {
	Run(ctx context.Context, state StateFunc) error
	Signal(ctx context.Context, pass bool) error
}

// reporter passes a device's state to a StateFunc when it changes.
//
// set never blocks and never calls the StateFunc itself: the reports are
// queued and one goroutine at a time delivers them, in order. A driver may
// therefore set a state while holding its own locks, or from Signal, even
// when the StateFunc blocks for a while (a station whose bounded device
// channel is full while its loop waits in Signal): neither waits for the
// other. If reports pile up (more than maxQueuedReports undelivered) the
// oldest are dropped, never the latest, so the receiver always ends on the
// current state.
type reporter struct {
	fn StateFunc

	mu      sync.Mutex
	last    State // "" until the first report
	queue   []stateReport
	running chan struct{} // non-nil while a delivery goroutine runs; closed when it ends
}

type stateReport struct {
	s      State
	detail string
}

// maxQueuedReports bounds the reports waiting for a slow StateFunc.
const maxQueuedReports = 16

func newReporter(fn StateFunc) *reporter { return &reporter{fn: fn} }

// set reports s unless it is the current state.
func (r *reporter) set(s State, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s == r.last {
		return
	}
	r.last = s
	if r.fn == nil {
		return
	}
	r.queue = append(r.queue, stateReport{s, detail})
	if over := len(r.queue) - maxQueuedReports; over > 0 {
		r.queue = append(r.queue[:0], r.queue[over:]...)
	}
	if r.running == nil {
		done := make(chan struct{})
		r.running = done
		go r.deliver(done)
	}
}

func (r *reporter) deliver(done chan struct{}) {
	defer close(done)
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.running = nil
			r.mu.Unlock()
			return
		}
		x := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		r.fn(x.s, x.detail)
	}
}

// flush waits until every report set so far has been delivered. Run calls
// it on its way out, so that no report arrives after Run returned.
func (r *reporter) flush() {
	r.mu.Lock()
	done := r.running
	r.mu.Unlock()
	if done != nil {
		<-done
	}
}

func (r *reporter) state() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// debouncer drops a code identical to the previous one read within window.
// The window slides: a code held in front of a scanner that rereads it is
// dropped for as long as the rereads come closer than window.
type debouncer struct {
	window time.Duration
	last   []byte
	lastAt time.Time
	valid  bool
}

func (d *debouncer) drop(r Read) bool {
	if d.window <= 0 {
		return false
	}
	dup := d.valid && !r.Overlong && bytes.Equal(r.Line, d.last) && r.At.Sub(d.lastAt) < d.window
	d.last = append(d.last[:0], r.Line...)
	d.lastAt = r.At
	d.valid = !r.Overlong
	return dup
}

// scanOpts are the keys every scanner takes.
type scanOpts struct {
	framing      lines.Framing
	debounce     time.Duration
	reconnectMax time.Duration // the backoff's cap; 0: backoff.DefaultMax
	now          func() time.Time
}

func scanOptions(cfg config.Scanner) (scanOpts, error) {
	o := scanOpts{debounce: cfg.Debounce, reconnectMax: cfg.ReconnectMax, now: time.Now}
	var errs []error
	f, err := lines.ParseFraming(cfg.Framing)
	if err != nil {
		errs = append(errs, err)
	}
	o.framing = f
	if cfg.Debounce < 0 {
		errs = append(errs, fmt.Errorf("debounce %v: negative", cfg.Debounce))
	}
	if cfg.ReconnectMax < 0 {
		errs = append(errs, fmt.Errorf("reconnect_max %v: negative", cfg.ReconnectMax))
	}
	return o, errors.Join(errs...)
}

func (o scanOpts) backoff() backoff.Backoff { return backoff.Capped(o.reconnectMax) }

// stream returns a codeStream for one connection; deb and mu may be shared.
func (o scanOpts) stream(deb *debouncer, mu *sync.Mutex, emit func(Read)) *codeStream {
	return &codeStream{framer: lines.Framer{Framing: o.framing}, deb: deb, mu: mu, emit: emit}
}

// codeStream frames one stream's bytes into Reads, debounces them and emits
// them. Its emit may be shared between streams (tcp-server): mu, when set,
// serializes the debouncer and emit across them.
type codeStream struct {
	framer lines.Framer
	deb    *debouncer
	mu     *sync.Mutex
	emit   func(Read)
}

func (c *codeStream) feed(p []byte, at time.Time) {
	c.framer.Feed(p, func(l lines.Line) {
		r := Read{Line: l.Data, Overlong: l.Overlong, At: at}
		if c.mu != nil {
			c.mu.Lock()
			defer c.mu.Unlock()
		}
		if c.deb != nil && c.deb.drop(r) {
			return
		}
		c.emit(r)
	})
}
