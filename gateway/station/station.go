// Package station runs one scanning point: a line from its scanner is
// classified, decided from the local store, journalled durably, and only
// then told to the gate and the screens. One loop per station owns its
// devices, so a slow or dead device never holds up another station.
package station

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"golang.org/x/sync/errgroup"

	"github.com/cargogate/cargogate/drivers"
	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/ident"
	"github.com/cargogate/cargogate/gateway/rules"
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
	Device(station, device string, state drivers.State, detail string)
}

// Outcome is one decided scan, as shown on the screens.
type Outcome struct {
	Station  string           `json:"station"`
	Role     string           `json:"role"`
	EventID  string           `json:"event_id"`
	At       time.Time        `json:"at"`
	Code     string           `json:"code"`
	Subject  *customs.Subject `json:"subject,omitempty"`
	Pass     bool             `json:"pass"`
	Reason   string           `json:"reason"`
	Problem  string           `json:"problem,omitempty"` // why a code is invalid, or what failed
	BasisSeq uint64           `json:"basis_seq,omitempty"`
	Items    int              `json:"items,omitempty"`
	Blocking []rules.Blocked  `json:"blocking,omitempty"`
	Chain    []rules.Step     `json:"chain,omitempty"`
	Offline  bool             `json:"offline"`
	Gate     string           `json:"gate"` // "opened", "closed", "fault", "none"
	Latency  time.Duration    `json:"latency_ns"`
}

// Config is one station's wiring.
type Config struct {
	ID         string
	Role       string
	Classifier *ident.Classifier
	Scanner    drivers.Scanner
	Gate       drivers.Gate // nil: no gate at this station
	// LookupTimeout bounds a lookup; ≤ 0 disables lookups.
	LookupTimeout time.Duration
	// GateTimeout bounds telling the gate. Default 2s.
	GateTimeout time.Duration
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

	mu      sync.Mutex
	devices map[string]drivers.State
}

// New wires a station. link and obs may be nil.
func New(cfg Config, d Decider, j Journal, link Link, clk Clock, obs Observer, log *slog.Logger) *Station {
	if cfg.GateTimeout == 0 {
		cfg.GateTimeout = 2 * time.Second
	}
	return &Station{cfg: cfg, decider: d, journal: j, link: link, clock: clk, obs: obs,
		log: log.With("station", cfg.ID), devices: map[string]drivers.State{}}
}

// ID is the station's id.
func (s *Station) ID() string { return s.cfg.ID }

// Run reads and decides until ctx is done.
func (s *Station) Run(ctx context.Context) error {
	reads := make(chan drivers.Read, 64)
	changes := make(chan deviceChange, 16)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return s.cfg.Scanner.Run(ctx, func(r drivers.Read) {
			select {
			case reads <- r:
			case <-ctx.Done():
			}
		}, s.stateFunc(ctx, changes, "scanner"))
	})
	if s.cfg.Gate != nil {
		g.Go(func() error { return s.cfg.Gate.Run(ctx, s.stateFunc(ctx, changes, "gate")) })
	}
	g.Go(func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case r := <-reads:
				s.Handle(ctx, r)
			case c := <-changes:
				s.deviceChanged(ctx, c)
			}
		}
	})
	return g.Wait()
}

type deviceChange struct {
	device string
	state  drivers.State
	detail string
}

func (s *Station) stateFunc(ctx context.Context, ch chan<- deviceChange, device string) drivers.StateFunc {
	return func(st drivers.State, detail string) {
		select {
		case ch <- deviceChange{device, st, detail}:
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
	ev := customs.Event{ID: ulid.Make().String(), Kind: customs.EventDevice, Station: s.cfg.ID,
		At: time.Now().UTC(), Device: c.device, State: string(c.state), Detail: c.detail}
	if err := s.appendEvent(ctx, &ev); err != nil {
		s.log.Error("journal device event", "err", err)
	}
	if s.obs != nil {
		s.obs.Device(s.cfg.ID, c.device, c.state, c.detail)
	}
}

// Devices returns the last known state of the station's devices.
func (s *Station) Devices() map[string]drivers.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]drivers.State, len(s.devices))
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
func (s *Station) Handle(ctx context.Context, r drivers.Read) Outcome {
	start := time.Now()
	out := Outcome{Station: s.cfg.ID, Role: s.cfg.Role, At: r.At.UTC(), Reason: customs.ReasonError, Gate: "none"}
	if out.At.IsZero() {
		out.At = start.UTC()
	}
	var subj *customs.Subject
	var d rules.Decision
	if r.Overlong {
		out.Code = printable(r.Line)
		d = rules.Decision{Reason: customs.ReasonInvalidCode}
		out.Problem = "code longer than 512 bytes"
	} else {
		res := s.cfg.Classifier.Classify(r.Line, s.cfg.Role == "arrival")
		out.Code = res.Code
		switch res.Kind {
		case ident.KindSubject:
			sub := res.Subject
			subj = &sub
			d = s.decide(ctx, sub)
		case ident.KindSeal:
			// Seals are not subjects and are never decided (§7, §9); the
			// arrival flow records them.
			s.log.Info("seal scanned with no transit open", "seal", res.Seal)
			return Outcome{}
		default:
			d = rules.Decision{Reason: customs.ReasonInvalidCode}
			out.Problem = res.Problem
		}
	}
	out.Subject, out.Pass, out.Reason, out.BasisSeq = subj, d.Pass, d.Reason, d.BasisSeq
	out.Items, out.Blocking, out.Chain = d.Items, d.Blocking, d.Chain

	var applied uint64
	online := false
	if s.link != nil {
		applied, online = s.link.Watermark(), s.link.Online()
	}
	offline := !online
	out.Offline = offline
	ev := customs.Event{ID: ulid.Make().String(), Kind: customs.EventScan, Station: s.cfg.ID, Role: s.cfg.Role,
		At: out.At, Code: out.Code, Subject: subj, Decision: d.Verdict(), Reason: d.Reason, BasisSeq: d.BasisSeq,
		AppliedSeq: &applied, Offline: &offline}
	out.EventID = ev.ID
	if err := s.appendEvent(ctx, &ev); err != nil {
		// Not recorded, so not passed: the gate is told STOP.
		s.log.Error("journal scan event: deciding STOP", "code", out.Code, "err", err)
		out.Pass, out.Reason, out.Problem = false, customs.ReasonError, "cannot record the decision: "+err.Error()
	}
	if s.cfg.Gate != nil {
		out.Gate = s.tellGate(ctx, out.Pass)
	}
	out.Latency = time.Since(start)
	s.log.Debug("decided", "code", out.Code, "decision", ev.Decision, "reason", out.Reason, "latency", out.Latency)
	if s.obs != nil {
		s.obs.Decided(out)
	}
	return out
}

func (s *Station) decide(ctx context.Context, sub customs.Subject) rules.Decision {
	d := s.decider.Decide(sub, s.clock.Now())
	if d.Pass || d.Reason != customs.ReasonUnknown || s.link == nil || s.cfg.LookupTimeout <= 0 || !s.link.Online() {
		return d
	}
	lctx, cancel := context.WithTimeout(ctx, s.cfg.LookupTimeout)
	defer cancel()
	if err := s.link.Lookup(lctx, sub); err != nil {
		s.log.Debug("lookup", "subject", sub.String(), "err", err)
		return d
	}
	return s.decider.Decide(sub, s.clock.Now())
}

func (s *Station) tellGate(ctx context.Context, pass bool) string {
	gctx, cancel := context.WithTimeout(ctx, s.cfg.GateTimeout)
	defer cancel()
	if err := s.cfg.Gate.Signal(gctx, pass); err != nil {
		detail := fmt.Sprintf("gate not told %s: %v", map[bool]string{true: "PASS", false: "STOP"}[pass], err)
		s.deviceChanged(ctx, deviceChange{device: "gate", state: drivers.Fault, detail: detail})
		return "fault"
	}
	s.mu.Lock()
	st := s.devices["gate"]
	s.mu.Unlock()
	if st == drivers.Fault {
		s.deviceChanged(ctx, deviceChange{device: "gate", state: drivers.Up, detail: "gate answering again"})
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
