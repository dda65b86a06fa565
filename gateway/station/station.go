// Package station runs one scanning point: a line from its scanner is
// classified, decided from the local store, journalled durably, and only
// then told to the gate and the screens. One loop per station owns its
// devices, so a slow or dead device never holds up another station.
package station

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"golang.org/x/sync/errgroup"

	"github.com/cargogate/cargogate/gateway/arrival"
	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/ident"
	"github.com/cargogate/cargogate/gateway/rules"
	"github.com/cargogate/cargogate/gateway/scan"
	"github.com/cargogate/cargogate/internal/liveness"
	"github.com/cargogate/cargogate/internal/tstime"
)

// Decider decides a subject from the local store at a given time.
type Decider interface {
	Decide(s customs.Subject, now time.Time) rules.Decision
}

// Journal commits an event durably before anyone is told of it.
type Journal interface {
	Append(ctx context.Context, data []byte) (uint64, error)
}

// Link is what a station needs of the central link: whether it is up, the
// watermark, and a bounded lookup for unknown subjects (§4).
type Link interface {
	Online() bool
	Watermark() uint64
	// Lookup asks central about s and returns once the reply is applied,
	// or with an error when ctx ends first.
	Lookup(ctx context.Context, s customs.Subject) error
}

// Clock gives the time decisions are judged at.
type Clock interface {
	Now() time.Time
}

// Observer hears of outcomes and device changes (the screens, metrics).
// Calls must not block.
type Observer interface {
	Decided(o Outcome)
	Device(station, device string, state device.State, detail string)
}

// Outcome is one decided scan: scan.Outcome, which the screens show.
type Outcome = scan.Outcome

// Config is one station's wiring.
type Config struct {
	ID         string
	Role       string
	Classifier *ident.Classifier
	Scanner    device.Scanner
	Gate       device.Gate // nil: no gate at this station
	// LookupTimeout bounds a lookup; ≤ 0 disables lookups.
	LookupTimeout time.Duration
	// GateTimeout bounds telling the gate. Default 2s.
	GateTimeout time.Duration
	// Arrival tracks the open transit at an arrival station; nil elsewhere.
	Arrival *arrival.Tracker
	// Time is the clock of event times, latency, the close_after tick and
	// the lookup and gate timeouts (wall time); nil: the real one.
	// Decisions are judged at Clock's time.
	Time tstime.Clock
	// Liveness, if set, has the station loop's heartbeat ("station ID"),
	// ticked on each turn (at least every second): the systemd watchdog is
	// fed only while it turns.
	Liveness *liveness.Registry
}

// Station is one scanning point.
type Station struct {
	cfg     Config
	decider Decider
	journal Journal
	link    Link
	clock   Clock
	obs     Observer
	log     *slog.Logger

	lookup atomic.Pointer[time.Duration] // set by SetLookupTimeout; nil: cfg.LookupTimeout

	mu      sync.Mutex
	devices map[string]device.State

	cls atomic.Pointer[ident.Classifier] // set by SetClassifier; nil: cfg.Classifier

	arrivalFailed map[string]bool // arrival events whose append failed, logged once (used by the loop only)
}

// New wires a station. link and obs may be nil; a nil log discards.
func New(cfg Config, d Decider, j Journal, link Link, clk Clock, obs Observer, log *slog.Logger) *Station {
	if cfg.GateTimeout == 0 {
		cfg.GateTimeout = 2 * time.Second
	}
	cfg.Time = tstime.Or(cfg.Time)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Station{cfg: cfg, decider: d, journal: j, link: link, clock: clk, obs: obs,
		log: log.With("station", cfg.ID), devices: map[string]device.State{}}
}

// ID is the station's id.
func (s *Station) ID() string { return s.cfg.ID }

// Run reads and decides until ctx is done.
func (s *Station) Run(ctx context.Context) error {
	reads := make(chan device.Read, 64)
	changes := make(chan deviceChange, 16)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return s.cfg.Scanner.Run(ctx, func(r device.Read) {
			select {
			case reads <- r:
			case <-ctx.Done():
			}
		}, s.stateFunc(ctx, changes, "scanner"))
	})
	if s.cfg.Gate != nil {
		g.Go(func() error { return s.cfg.Gate.Run(ctx, s.stateFunc(ctx, changes, "gate")) })
	}
	// Arrival events closed but not journalled (a refused append, or a
	// restart between closing and journalling) are journalled first.
	s.retryArrivals(ctx)
	if a := s.cfg.Arrival; a != nil && a.Current() != nil && s.obs != nil {
		// A transit left open by a restart: show it on the screens again.
		if v, err := a.View(); err == nil {
			s.obs.Decided(Outcome{Kind: "transit", Station: s.cfg.ID, Role: s.cfg.Role, At: s.cfg.Time.Now().UTC(), Gate: "none", Transit: v})
		}
	}
	g.Go(func() error {
		beat := s.cfg.Liveness.Beat("station " + s.cfg.ID)
		defer beat.Stop()
		tick, tickC := s.cfg.Time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			beat.Tick()
			select {
			case <-ctx.Done():
				return nil
			case r := <-reads:
				s.Handle(ctx, r)
			case c := <-changes:
				s.deviceChanged(ctx, c)
			case now := <-tickC:
				// close_after counts wall time from the last line read,
				// downtime included (§9): the open record's time survives
				// restarts.
				if a := s.cfg.Arrival; a != nil && a.Due(now) {
					s.closeTransit(ctx, now)
				}
				s.retryArrivals(ctx)
			}
		}
	})
	return g.Wait()
}

type deviceChange struct {
	device string
	state  device.State
	detail string
}

func (s *Station) stateFunc(ctx context.Context, ch chan<- deviceChange, name string) device.StateFunc {
	return func(st device.State, detail string) {
		select {
		case ch <- deviceChange{name, st, detail}:
		case <-ctx.Done():
		}
	}
}

// deviceChanged journals a device event when a device's state changes.
func (s *Station) deviceChanged(ctx context.Context, c deviceChange) {
	s.mu.Lock()
	prev, seen := s.devices[c.device]
	s.devices[c.device] = c.state
	s.mu.Unlock()
	if seen && prev == c.state {
		return
	}
	s.log.Info("device state", "device", c.device, "state", c.state, "detail", c.detail)
	ev := customs.Event{ID: newID(), Kind: customs.EventDevice, Station: s.cfg.ID,
		At: s.cfg.Time.Now().UTC(), Device: c.device, State: string(c.state), Detail: c.detail}
	if err := s.appendEvent(ctx, &ev); err != nil {
		s.log.Error("journal device event", "err", err)
	}
	if s.obs != nil {
		s.obs.Device(s.cfg.ID, c.device, c.state, c.detail)
	}
}

// Devices returns the last known state of the station's devices.
func (s *Station) Devices() map[string]device.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]device.State, len(s.devices))
	for k, v := range s.devices {
		out[k] = v
	}
	return out
}

func (s *Station) appendEvent(ctx context.Context, ev *customs.Event) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = s.journal.Append(ctx, data)
	return err
}

// Handle decides one read and tells the gate. It is the scan path: no
// network but the bounded lookup, and the event is durable before the gate
// or anyone else hears of the decision.
func (s *Station) Handle(ctx context.Context, r device.Read) Outcome {
	start := s.cfg.Time.Now()
	out := Outcome{Kind: "scan", Station: s.cfg.ID, Role: s.cfg.Role, At: r.At.UTC(), Reason: customs.ReasonError, Gate: "none", Ref: r.Ref}
	if out.At.IsZero() {
		out.At = start.UTC()
	}
	// applied_seq is read before deciding: every order up to it was in the
	// store the decision read. Read after, it could name orders applied
	// meanwhile, which the audit would take as known to the decision.
	var applied uint64
	if s.link != nil {
		applied = s.link.Watermark()
	}
	var subj *customs.Subject
	var d rules.Decision
	if r.Overlong {
		out.Code = printable(r.Line)
		d = rules.Decision{Reason: customs.ReasonInvalidCode}
		out.Problem = "code longer than 512 bytes"
	} else {
		v := judge(s.classifier(), r.Line, s.cfg.Role == "arrival",
			func(sub customs.Subject) rules.Decision { return s.decide(ctx, sub) })
		out.Code = v.Code
		if v.Kind == ident.KindSeal {
			// Seals are not subjects and are never decided (§7, §9): they
			// count on the open transit and appear in its arrival event.
			return s.seal(ctx, v.Seal, out)
		}
		subj, d, out.Problem = v.Subject, v.Decision, v.Problem
	}
	out.Subject, out.Pass, out.Reason, out.BasisSeq = subj, d.Pass, d.Reason, d.BasisSeq
	out.Items, out.Blocking, out.Chain = d.Items, d.Blocking, d.Chain

	online := false
	if s.link != nil {
		online = s.link.Online()
	}
	offline := !online
	out.Offline = offline
	ev := customs.Event{ID: newID(), Kind: customs.EventScan, Station: s.cfg.ID, Role: s.cfg.Role,
		At: out.At, Code: out.Code, Subject: subj, Decision: d.Verdict(), Reason: d.Reason, BasisSeq: d.BasisSeq,
		AppliedSeq: &applied, Offline: &offline}
	out.EventID = ev.ID
	if err := s.appendEvent(ctx, &ev); err != nil {
		// Not recorded, so not passed: the gate is told STOP.
		s.log.Error("journal scan event: deciding STOP", "code", out.Code, "err", err)
		out.Pass, out.Reason, out.Problem = false, customs.ReasonError, "cannot record the decision: "+err.Error()
	}
	// At an arrival station the count is committed before anyone is told,
	// like the event: a restart right after the gate frame must not lose it.
	if a := s.cfg.Arrival; a != nil {
		if subj != nil {
			s.arrivalScan(ctx, *subj, &out)
		} else if err := a.Touch(s.cfg.Time.Now()); err != nil {
			// close_after counts from the last line read, readable or not.
			s.log.Error("arrival", "err", err)
		}
	}
	if s.cfg.Gate != nil {
		out.Gate = s.tellGate(ctx, out.Pass)
	}
	out.Latency = tstime.Since(s.cfg.Time, start)
	s.log.Debug("decided", "code", out.Code, "decision", ev.Decision, "reason", out.Reason, "latency", out.Latency)
	if s.obs != nil {
		s.obs.Decided(out)
	}
	return out
}

// arrivalScan counts a decided scan against the open transit, or opens and
// closes transits (§9), after the scan's own event is journalled.
func (s *Station) arrivalScan(ctx context.Context, subj customs.Subject, out *Outcome) {
	a, now := s.cfg.Arrival, s.cfg.Time.Now()
	var err error
	if subj.Kind == customs.Transit {
		var ev *customs.Event
		if ev, err = a.ScanTransit(subj, now, s.offline(), newID); err == nil && ev != nil {
			s.retryArrivals(ctx) // this one, after any still pending
		}
	} else {
		err = a.Count(subj, now)
	}
	if err != nil {
		s.log.Error("arrival", "transit", subj.String(), "err", err)
	}
	if out.Transit, err = a.View(); err != nil {
		s.log.Error("arrival view", "err", err)
	}
}

// ReasonSealIgnored is a seal scan's reason when it was not recorded: no
// transit open, or not an arrival station. The screens say so, so that
// staff scan the transit document first instead of trusting the seal.
const ReasonSealIgnored = "seal_not_recorded"

func (s *Station) seal(ctx context.Context, seal string, out Outcome) Outcome {
	out.Kind, out.Seal, out.Reason = "seal", seal, "seal"
	a := s.cfg.Arrival
	if a == nil {
		s.log.Info("seal scanned at a station that is not an arrival station: ignored", "seal", seal)
		out.Reason = ReasonSealIgnored
		return out
	}
	if err := a.Seal(seal, s.cfg.Time.Now()); err != nil {
		s.log.Info("seal scanned with no transit open: ignored", "seal", seal, "err", err)
		out.Reason = ReasonSealIgnored
	}
	out.Transit, _ = a.View()
	if s.obs != nil {
		s.obs.Decided(out)
	}
	return out
}

// closeTransit closes the open transit after close_after without a scan.
func (s *Station) closeTransit(ctx context.Context, now time.Time) {
	ev, err := s.cfg.Arrival.Close(now, s.offline(), newID)
	if err != nil {
		s.log.Error("arrival close", "err", err)
		return
	}
	if ev != nil {
		s.retryArrivals(ctx) // this one, after any still pending
	}
}

func (s *Station) offline() bool { return s.link == nil || !s.link.Online() }

// arrived journals an arrival event closed by the tracker (and kept there,
// pending), then drops it from the tracker and shows it. An event the
// journal refuses stays pending and is appended again, under the same id,
// at every tick until the journal takes it (retryArrivals): the removal
// never precedes the durable event.
func (s *Station) arrived(ctx context.Context, ev *customs.Event) bool {
	if err := s.appendEvent(ctx, ev); err != nil {
		if s.arrivalFailed == nil {
			s.arrivalFailed = map[string]bool{}
		}
		if !s.arrivalFailed[ev.ID] { // logged once, not at every retry
			s.arrivalFailed[ev.ID] = true
			s.log.Error("journal arrival event: kept, retried every second", "transit", ev.Transit.String(),
				"event_id", ev.ID, "err", err)
		}
		return false
	}
	if s.arrivalFailed[ev.ID] {
		delete(s.arrivalFailed, ev.ID)
		s.log.Info("arrival event journalled after a retry", "transit", ev.Transit.String(), "event_id", ev.ID)
	}
	if err := s.cfg.Arrival.Journalled(ev.ID); err != nil {
		// Still pending: appended again later under the same id, which
		// central drops as a duplicate.
		s.log.Error("arrival: drop the journalled event", "event_id", ev.ID, "err", err)
	}
	s.log.Info("transit closed", "transit", ev.Transit.String(), "expected", *ev.Expected, "counted", *ev.Counted,
		"missing", len(ev.Missing), "extra", len(ev.Extra), "seals_ok", *ev.SealsOK)
	offline := ev.Offline != nil && *ev.Offline
	if s.obs != nil {
		s.obs.Decided(Outcome{Kind: "arrival", Station: s.cfg.ID, Role: s.cfg.Role, EventID: ev.ID, At: ev.At,
			Subject: ev.Transit, Reason: "arrival", Arrival: ev, Gate: "none", Offline: offline})
	}
	return true
}

// retryArrivals journals the arrival events still pending, oldest first,
// stopping at the first the journal refuses.
func (s *Station) retryArrivals(ctx context.Context) {
	a := s.cfg.Arrival
	if a == nil {
		return
	}
	for _, ev := range a.Pending() {
		if ctx.Err() != nil || !s.arrived(ctx, ev) {
			return
		}
	}
}

func newID() string { return ulid.Make().String() }

func (s *Station) decide(ctx context.Context, sub customs.Subject) rules.Decision {
	d := s.decider.Decide(sub, s.clock.Now())
	timeout := s.LookupTimeout()
	if d.Pass || d.Reason != customs.ReasonUnknown || s.link == nil || timeout <= 0 || !s.link.Online() {
		return d
	}
	lctx, cancel := tstime.WithTimeout(ctx, s.cfg.Time, timeout)
	defer cancel()
	if err := s.link.Lookup(lctx, sub); err != nil {
		s.log.Debug("lookup", "subject", sub.String(), "err", err)
		return d
	}
	return s.decider.Decide(sub, s.clock.Now())
}

func (s *Station) tellGate(ctx context.Context, pass bool) string {
	gctx, cancel := tstime.WithTimeout(ctx, s.cfg.Time, s.cfg.GateTimeout)
	defer cancel()
	if err := s.cfg.Gate.Signal(gctx, pass); err != nil {
		word := map[bool]string{true: "PASS", false: "STOP"}[pass]
		if errors.Is(err, device.ErrStateUnknown) {
			// The signal may have reached the gate: it must not be shown as
			// closed. An alarm for the operator, a fault until the driver
			// has switched its outputs off again.
			detail := fmt.Sprintf("gate state unknown after %s: %v", word, err)
			s.log.Error("ALARM: "+detail, "pass", pass)
			s.deviceChanged(ctx, deviceChange{device: "gate", state: device.Fault, detail: detail})
			return "unknown"
		}
		detail := fmt.Sprintf("gate not told %s: %v", word, err)
		s.deviceChanged(ctx, deviceChange{device: "gate", state: device.Fault, detail: detail})
		return "fault"
	}
	s.mu.Lock()
	st := s.devices["gate"]
	s.mu.Unlock()
	if st == device.Fault {
		s.deviceChanged(ctx, deviceChange{device: "gate", state: device.Up, detail: "gate answering again"})
	}
	if pass {
		return "opened"
	}
	return "closed"
}

func printable(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, string(b)) + "…"
}

// SetClassifier swaps the identifier patterns (config reload) without
// stopping the station.
func (s *Station) SetClassifier(c *ident.Classifier) { s.cls.Store(c) }

func (s *Station) classifier() *ident.Classifier {
	if c := s.cls.Load(); c != nil {
		return c
	}
	return s.cfg.Classifier
}
