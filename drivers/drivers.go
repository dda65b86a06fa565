// Package drivers talks to the field devices of a station: scanners, whose
// bytes it turns into code reads, and gate controllers, to which it sends
// PASS or STOP frames. It knows nothing of customs: bytes in, lines out;
// decisions in, frames out. Drivers are found by name in a Registry.
package drivers

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cargogate/cargogate/drivers/lines"
	dev "github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/internal/backoff"
)

// The types a station shares with its devices live in gateway/device, so
// that the station depends on no device library; drivers implements them.
type (
	// State of a device: device.State.
	State = dev.State
	// StateFunc hears of a device's state changes: device.StateFunc.
	StateFunc = dev.StateFunc
	// Read is one code read from a scanner: device.Read.
	Read = dev.Read
	// Scanner reads codes: device.Scanner.
	Scanner = dev.Scanner
	// Gate tells a gate controller a decision: device.Gate. Registry.NewGate
	// returns a nil Gate for driver "none".
	Gate = dev.Gate
)

// Device states (protocol §3, device events).
const (
	Up    = dev.Up
	Down  = dev.Down
	Fault = dev.Fault
)

// MaxLine is the longest code that is not overlong (protocol §7).
const MaxLine = lines.MaxLine

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

func scanOptions(cfg ScanConfig) (scanOpts, error) {
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
