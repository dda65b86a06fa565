// Package screens serves the gateway's pages (a screen per station, a gate
// screen, an arrival screen per arrival station, the supervisor overview
// and the lookup) and pushes decisions to them live over WebSocket. Files are embedded in the binary, so the pages
// work offline on the terminal LAN with no build step.
//
// The scan path only enqueues: Decided and Device hand the outcome to the
// hub's own loop (Run), which keeps the state the pages need, counts
// decisions over the last hour and fans each message out to every open
// screen. A screen that cannot keep up is dropped, never waited for.
package screens

import (
	"context"
	"embed"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cargogate/cargogate/gateway/arrival"
	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/scan"
	"github.com/cargogate/cargogate/gateway/station"
)

//go:embed static
var static embed.FS

// Defaults of Options.
const (
	DefaultMaxClients  = 256
	DefaultSendBuffer  = 256
	DefaultOutboxAlarm = 1000
	DefaultClockAlarm  = 10 * time.Second
	// recentPerStation is how many scans a station screen lists.
	recentPerStation = 20
	// recentAll is how many scans the overview lists, all stations together.
	recentAll = 20
	// inBuffer is how many outcomes and device changes may wait for the hub
	// loop; beyond that they are dropped (counted), never waited for.
	inBuffer = 4096
	// overviewEvery is how often the overview is pushed to open screens.
	overviewEvery = time.Second
)

// StationInfo is a configured station, as the pages list it.
type StationInfo struct {
	ID   string `json:"id"`
	Role string `json:"role"` // arrival, sort or gate
	Gate bool   `json:"gate"` // a gate controller is configured
	// Handheld: the station's scanner is handheld devices (/h/{id}).
	Handheld bool `json:"handheld,omitempty"`
}

// Options configure a Hub. The zero value of every field is usable.
type Options struct {
	// Log receives the hub's own log lines. Nil: discarded.
	Log *slog.Logger
	// Status returns the status document served on /api/status; the
	// overview reads link, clock_behind_s and stations from it. It is
	// called at most once a second by the hub, plus once per request.
	// Nil: an empty document.
	Status func() any
	// Stations are the configured stations, in configuration order.
	Stations []StationInfo
	// Inspector answers the lookup screen. Nil: /api/inspect answers 501.
	Inspector Inspector
	// Routes are further handlers (metrics, health, operator API) served
	// behind the same Host, token and Origin checks, each needing its
	// permission.
	Routes []Route
	// AllowedOrigins are origins (scheme://host[:port]) other than the
	// page's own from which a browser may open the WebSocket; their hosts
	// are also accepted in the Host header. Empty: same origin only, and a
	// Host header must name an IP address or localhost.
	AllowedOrigins []string
	// Tokens let clients in (Authorization: Bearer), each with its role.
	// Screens are paired instead: a one-time pairing link (POST /api/pair)
	// sets a cookie with a token minted for the device.
	Tokens []Credential
	// PairedFile keeps the paired devices' tokens (their SHA-256 only)
	// across restarts. Empty: in memory only.
	PairedFile string
	// PairingTTL is how long a pairing link may wait to be opened.
	// Default DefaultPairingTTL.
	PairingTTL time.Duration
	// NoLoopback serves loopback clients like any other (a token needed);
	// by default they are served as operator.
	NoLoopback bool
	// MaxClients caps the open WebSockets; one more is refused with 503.
	// Default DefaultMaxClients.
	MaxClients int
	// SendBuffer is how many messages may wait for one screen before it is
	// dropped as too slow. Default DefaultSendBuffer; at least 4.
	SendBuffer int
	// OutboxAlarm is the outbox depth, in events, at which the overview
	// raises "outbox filling". Default DefaultOutboxAlarm.
	OutboxAlarm int
	// ClockAlarm is how far the wall clock may lag the time floor before
	// the overview raises "clock trouble". Default DefaultClockAlarm.
	ClockAlarm time.Duration
	// Now is the clock for the last-hour counts and the "since" times.
	// Default time.Now.
	Now func() time.Time
	// Audit records pairings and revocations (what, and its fields). Nil:
	// logged only.
	Audit func(event string, fields map[string]any)
	// ScanRate and ScanBurst limit the scans of one handheld device: on
	// average ScanRate a second, ScanBurst at once. Defaults
	// DefaultScanRate and DefaultScanBurst.
	ScanRate  float64
	ScanBurst int
	// AnswerTimeout bounds the wait for a handheld scan's decision.
	// Default DefaultAnswerTimeout.
	AnswerTimeout time.Duration
}

// Route is a further handler and the permission it needs.
type Route struct {
	Pattern string // a ServeMux pattern
	Handler http.Handler
	Need    Need
}

// Hub keeps what the screens show and fans outcomes out to them.
type Hub struct {
	opt     Options
	log     *slog.Logger
	in      chan item
	guard   *guard
	tokens  *tokens
	initErr error
	dropped atomic.Uint64 // outcomes or device changes lost because in was full
	slow    atomic.Uint64 // screens dropped for being too slow

	mu      sync.Mutex
	closed  bool
	clients map[*client]struct{}
	// upgrading counts the WebSockets past the cap check and not yet
	// registered: they hold a slot.
	upgrading int
	stations  map[string]*stationState
	order     []string          // station ids: configured first, then seen
	recent    []scan.Outcome    // newest last, all stations
	counts    window            // decisions over the last hour
	record    *Alarm            // the journal refused the last scan
	overview  []byte            // the last overview message pushed
	scans     map[string]uint64 // scans seen per station, for tests and the overview

	hh *handhelds // the handheld stations' devices (handheld.go)
}

// item is one thing the scan path handed to the hub.
type item struct {
	outcome *scan.Outcome
	device  *deviceChange
}

type deviceChange struct {
	station, device string
	state           device.State
	detail          string
}

// DeviceState is a device's last reported state.
type DeviceState struct {
	State  device.State `json:"state"`
	Detail string       `json:"detail,omitempty"`
	Since  time.Time    `json:"since"`
}

// GateState is what the gate controller was last told, or its fault.
type GateState struct {
	State string    `json:"state"` // closed, opened, fault (not told: closed), unknown (may be open) or none
	Since time.Time `json:"since,omitzero"`
}

type stationState struct {
	info    StationInfo
	recent  []scan.Outcome // newest last
	devices map[string]DeviceState
	gate    GateState
	// At arrival stations (transit.go).
	transit *arrival.View
	stopped []StoppedItem
	arrival *ArrivalResult
}

// New returns a hub. Run must be running for outcomes to reach the
// screens.
func New(opt Options) *Hub {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Status == nil {
		opt.Status = func() any { return map[string]any{} }
	}
	if opt.MaxClients <= 0 {
		opt.MaxClients = DefaultMaxClients
	}
	if opt.SendBuffer <= 0 {
		opt.SendBuffer = DefaultSendBuffer
	}
	opt.SendBuffer = max(opt.SendBuffer, 4) // room for the hello and the first overview
	if opt.OutboxAlarm <= 0 {
		opt.OutboxAlarm = DefaultOutboxAlarm
	}
	if opt.ClockAlarm <= 0 {
		opt.ClockAlarm = DefaultClockAlarm
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.PairingTTL <= 0 {
		opt.PairingTTL = DefaultPairingTTL
	}
	if opt.ScanRate <= 0 {
		opt.ScanRate = DefaultScanRate
	}
	if opt.ScanBurst <= 0 {
		opt.ScanBurst = DefaultScanBurst
	}
	if opt.AnswerTimeout <= 0 {
		opt.AnswerTimeout = DefaultAnswerTimeout
	}
	tk, err := newTokens(opt.Tokens, opt.PairedFile)
	if err != nil {
		tk, _ = newTokens(opt.Tokens, "") // Err reports it; nothing paired gets in
	}
	h := &Hub{opt: opt, log: opt.Log.With("part", "screens"), in: make(chan item, inBuffer), tokens: tk, initErr: err,
		guard: newGuard(opt.AllowedOrigins, tk, opt.NoLoopback), clients: map[*client]struct{}{},
		stations: map[string]*stationState{}, scans: map[string]uint64{}, hh: newHandhelds()}
	for _, si := range opt.Stations {
		h.stationLocked(si.ID).info = si
	}
	return h
}

var _ station.Observer = (*Hub)(nil)

// Err reports a problem New met reading Options.PairedFile.
func (h *Hub) Err() error { return h.initErr }

// Decided hands an outcome to the hub. It never blocks: when the hub is
// that far behind, the outcome is dropped from the screens (the event is
// journalled regardless) and counted.
func (h *Hub) Decided(o scan.Outcome) {
	if o.Ref != "" {
		h.hh.resolve(o) // a handheld waits for it: answered directly, never dropped
	}
	h.enqueue(item{outcome: &o})
}

// Device hands a device change to the hub. It never blocks.
func (h *Hub) Device(st, device string, state device.State, detail string) {
	h.enqueue(item{device: &deviceChange{st, device, state, detail}})
}

func (h *Hub) enqueue(it item) {
	select {
	case h.in <- it:
	default:
		h.dropped.Add(1)
	}
}

// Run applies what the stations report and pushes it, and the overview
// every second, to the open screens, until ctx is done; it then closes
// every screen's connection ("going away"), so the pages reconnect to the
// next gateway, and refuses new ones.
func (h *Hub) Run(ctx context.Context) error {
	tick := time.NewTicker(overviewEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			h.closeAll()
			return nil
		case it := <-h.in:
			h.apply(it)
		case <-tick.C:
			h.pushOverview()
		}
	}
}

// apply records one item and fans it out.
func (h *Hub) apply(it item) {
	now := h.opt.Now().UTC()
	switch {
	case it.outcome != nil:
		o := *it.outcome
		msg, err := json.Marshal(struct {
			Type    string       `json:"type"`
			Outcome scan.Outcome `json:"outcome"`
		}{"decision", o})
		if err != nil {
			h.log.Error("encode outcome", "err", err)
			return
		}
		h.mu.Lock()
		// The arrival state first, so that an arrival screen has the
		// transit (its foreign seals) when the scan's row arrives.
		if h.recordOutcome(o, now) {
			h.broadcastTransitLocked(o.Station)
		}
		if listed(o) {
			h.broadcastLocked(msg, o.Station)
		}
		h.mu.Unlock()
	case it.device != nil:
		d := it.device
		msg, err := json.Marshal(struct {
			Type    string      `json:"type"`
			Station string      `json:"station"`
			Device  string      `json:"device"`
			State   DeviceState `json:"state"`
			Gate    *GateState  `json:"gate_state,omitempty"`
		}{Type: "device", Station: d.station, Device: d.device, State: DeviceState{d.state, d.detail, now}})
		if err != nil {
			return
		}
		h.mu.Lock()
		s := h.stationLocked(d.station)
		prev, seen := s.devices[d.device]
		if !seen || prev.State != d.state {
			s.devices[d.device] = DeviceState{State: d.state, Detail: d.detail, Since: now}
		} else {
			prev.Detail = d.detail
			s.devices[d.device] = prev
		}
		if d.device == "gate" {
			s.gateFromDevice(d.state, now)
		}
		h.broadcastLocked(msg, d.station)
		h.mu.Unlock()
	}
}

// recordOutcome keeps an outcome in the recent lists, the counts and the
// arrival state, and reports whether the arrival state changed. Only
// decided scans count, set the gate or raise alarms: a seal scan (not
// decided, Pass false) and a transit closing are listed, never counted as
// STOP. h.mu is held.
func (h *Hub) recordOutcome(o scan.Outcome, now time.Time) (transitChanged bool) {
	s := h.stationLocked(o.Station)
	transitChanged = s.applyTransit(o)
	if !listed(o) {
		return transitChanged
	}
	s.recent = appendCapped(s.recent, forList(o), recentPerStation)
	h.recent = appendCapped(h.recent, forList(o), recentAll)
	if !isDecision(o) {
		return transitChanged
	}
	h.scans[o.Station]++
	h.counts.add(now, o.Station, o.Pass, o.Reason)
	switch o.Gate {
	case "opened", "closed", "fault", "unknown":
		// Since is the last signal: each PASS opens the gate anew.
		s.gate = GateState{State: o.Gate, Since: now}
	}
	if isRecordFailure(o) {
		if h.record == nil {
			h.record = &Alarm{Kind: AlarmStoreNotWritable, Station: o.Station, Device: "events", Since: now, Detail: o.Problem}
		}
	} else {
		h.record = nil
	}
	return transitChanged
}

// gateFromDevice folds the gate device's state into the gate state: a gate
// that is down or in fault is shown as fault until it answers again.
func (s *stationState) gateFromDevice(st device.State, now time.Time) {
	switch st {
	case device.Down, device.Fault:
		// A gate whose state is unknown (a signal that may have reached it)
		// stays so: "fault" would say it stayed closed.
		if s.gate.State != "fault" && s.gate.State != "unknown" {
			s.gate = GateState{State: "fault", Since: now}
		}
	case device.Up:
		// Up again after unknown: the driver switched its outputs off first.
		if s.gate.State == "fault" || s.gate.State == "unknown" || s.gate.State == "none" || s.gate.State == "" {
			// Nothing told since it came back: it stays closed (§8).
			s.gate = GateState{State: "closed", Since: now}
		}
	}
}

// isDecision reports whether o is a decided scan (not a seal scan nor an
// arrival closing).
func isDecision(o scan.Outcome) bool { return o.Kind == "" || o.Kind == "scan" }

// listed reports whether o belongs in the lists of scans: decisions, seal
// scans and transits closing. Other kinds only update the state they carry.
func listed(o scan.Outcome) bool { return isDecision(o) || o.Kind == "seal" || o.Kind == "arrival" }

// stationLocked returns the state of a station, made on first sight.
func (h *Hub) stationLocked(id string) *stationState {
	s := h.stations[id]
	if s == nil {
		s = &stationState{info: StationInfo{ID: id}, devices: map[string]DeviceState{}, gate: GateState{State: "none"}}
		h.stations[id] = s
		h.order = append(h.order, id)
	}
	if s.info.Gate && s.gate.State == "none" {
		s.gate = GateState{State: "closed"}
	}
	return s
}

func appendCapped(list []scan.Outcome, o scan.Outcome, n int) []scan.Outcome {
	list = append(list, o)
	if len(list) > n {
		list = append(list[:0], list[len(list)-n:]...)
	}
	return list
}

// knownStation reports whether id is a configured or seen station.
func (h *Hub) knownStation(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.stations[id]
	return ok
}

// Handler serves the pages, the JSON API and the WebSocket, behind the
// Host, token and Origin checks.
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	view := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, need(NeedView, f)) }
	operate := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, need(NeedOperate, f)) }
	mux.Handle("GET /static/", need(NeedView, http.FileServerFS(static)))
	view("GET /{$}", h.page("index.html"))
	view("GET /supervisor", h.page("supervisor.html"))
	operate("GET /lookup", h.page("lookup.html"))
	view("GET /station/{id}", h.stationPage("station.html"))
	view("GET /gate/{id}", h.stationPage("gate.html"))
	view("GET /arrival/{id}", h.stationPage("arrival.html"))
	view("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, h.opt.Status())
	})
	view("GET /api/overview", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, h.Overview())
	})
	view("GET /api/recent", h.serveRecent)
	view("GET /api/whoami", func(w http.ResponseWriter, r *http.Request) {
		who, _ := WhoFrom(r.Context())
		writeJSON(w, http.StatusOK, who)
	})
	operate("GET /api/inspect", h.serveInspect)
	operate("POST /api/pair", h.serveMintPairing)
	operate("POST /api/unpair", h.serveRevoke)
	view("GET /ws", h.serveWS)
	h.handheldRoutes(mux)
	mux.HandleFunc("GET /pair", h.servePair)
	for _, rt := range h.opt.Routes {
		mux.Handle(rt.Pattern, need(rt.Need, rt.Handler))
	}
	return h.guard.wrap(mux)
}

// page serves one embedded HTML file.
func (h *Hub) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := static.ReadFile("static/" + name)
		if err != nil {
			http.Error(w, "page missing from the build", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b)
	}
}

// stationPage serves a page about one station, 404 for a station the
// gateway does not have.
func (h *Hub) stationPage(name string) http.HandlerFunc {
	serve := h.page(name)
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.knownStation(r.PathValue("id")) {
			http.Error(w, "no such station on this gateway", http.StatusNotFound)
			return
		}
		serve(w, r)
	}
}

// serveRecent answers the last scans and the devices, of one station with
// ?station=, else of all.
func (h *Hub) serveRecent(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("station")
	h.mu.Lock()
	out := struct {
		Recent  []scan.Outcome                    `json:"recent"`
		Devices map[string]map[string]DeviceState `json:"devices"`
	}{Devices: map[string]map[string]DeviceState{}}
	if s := h.stations[id]; s != nil {
		out.Recent = append(out.Recent, s.recent...)
	} else if id == "" {
		out.Recent = append(out.Recent, h.recent...)
	}
	for sid, s := range h.stations {
		if id != "" && sid != id {
			continue
		}
		m := map[string]DeviceState{}
		for d, v := range s.devices {
			m[d] = v
		}
		out.Devices[sid] = m
	}
	h.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
