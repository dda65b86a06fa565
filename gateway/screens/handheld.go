package screens

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/scan"
)

// Handheld stations. A handheld device (a rugged Android phone whose
// built-in scanner types the code and Enter) opens /h/{station} with a
// token of role scan bound to that station. The page sends each code over
// its WebSocket with an id it makes; the hub hands it to the station's
// handheld scanner (Submitter) as a device.Read whose Ref names the device
// and the id, the station decides and journals it like a fixed scanner's
// line, and the outcome, carrying the Ref, comes back through Decided and
// is answered on the device's connection. The hub keeps the recent ids of
// each device with their outcome: a scan sent again (the answer lost to a
// Wi-Fi drop) is answered with the first outcome, never decided twice.

// Defaults of the handheld options.
const (
	DefaultScanRate      = 5.0 // scans a second, per device, on average
	DefaultScanBurst     = 10
	DefaultAnswerTimeout = 10 * time.Second
	// recentIDs is how many scan ids a device's retries are matched
	// against.
	recentIDs = 256
	// handheldReadLimit bounds one message from a handheld: a code of 512
	// bytes, escaped, and the envelope.
	handheldReadLimit = 4096
	maxScanID         = 64
	// maxInFlight bounds the scans of one connection waiting for their
	// answer; beyond it the connection is not read until one is answered
	// (a device repeating an id cannot make the gateway hold a goroutine
	// and a timer for each message).
	maxInFlight = 8
)

// Submitter is a handheld station's scanner: it passes a read to the
// station's loop (drivers.Handheld). Submit returns once the station has
// the read, or with ctx's error.
type Submitter interface {
	Submit(ctx context.Context, r device.Read) error
}

// handhelds are the handheld stations' scanners and their devices' scans.
type handhelds struct {
	mu      sync.Mutex
	bound   map[string]Submitter        // station → its scanner
	scans   map[string]*handheldScan    // ref (device/id) → the scan
	order   map[string][]string         // device → its refs, oldest first
	buckets map[string]*tokenBucket     // device → its rate limit
	conns   map[string]map[*client]bool // device → its open connections
}

type handheldScan struct {
	code string
	done chan struct{} // closed once out is set
	out  scan.Outcome
}

func newHandhelds() *handhelds {
	return &handhelds{bound: map[string]Submitter{}, scans: map[string]*handheldScan{}, order: map[string][]string{},
		buckets: map[string]*tokenBucket{}, conns: map[string]map[*client]bool{}}
}

// BindHandheld makes sub the scanner of handheld station st (again, after
// a reload rebuilt it).
func (h *Hub) BindHandheld(st string, sub Submitter) {
	h.hh.mu.Lock()
	h.hh.bound[st] = sub
	h.hh.mu.Unlock()
}

// resolve answers the handheld scan o is the outcome of.
func (hh *handhelds) resolve(o scan.Outcome) {
	hh.mu.Lock()
	defer hh.mu.Unlock()
	s := hh.scans[o.Ref]
	if s == nil {
		return
	}
	select {
	case <-s.done: // answered already
	default:
		s.out = o
		close(s.done)
	}
}

// begin returns the scan of ref, and whether it is new (to be submitted).
func (hh *handhelds) begin(dev, ref, code string) (*handheldScan, bool) {
	hh.mu.Lock()
	defer hh.mu.Unlock()
	if s := hh.scans[ref]; s != nil {
		return s, false
	}
	s := &handheldScan{code: code, done: make(chan struct{})}
	hh.scans[ref] = s
	refs := append(hh.order[dev], ref)
	if len(refs) > recentIDs {
		delete(hh.scans, refs[0])
		refs = refs[1:]
	}
	hh.order[dev] = refs
	return s, true
}

// forget drops a scan that never reached its station: sent again, it is
// submitted again.
func (hh *handhelds) forget(dev, ref string) {
	hh.mu.Lock()
	defer hh.mu.Unlock()
	delete(hh.scans, ref)
	refs := hh.order[dev]
	for i, r := range refs {
		if r == ref {
			hh.order[dev] = append(refs[:i:i], refs[i+1:]...)
			break
		}
	}
}

// allow takes one scan from dev's bucket.
func (hh *handhelds) allow(dev string, rate float64, burst int, now time.Time) bool {
	hh.mu.Lock()
	defer hh.mu.Unlock()
	b := hh.buckets[dev]
	if b == nil {
		b = &tokenBucket{tokens: float64(burst), at: now}
		hh.buckets[dev] = b
	}
	return b.take(rate, float64(burst), now)
}

// tokenBucket is a token bucket.
type tokenBucket struct {
	tokens float64
	at     time.Time
}

func (b *tokenBucket) take(rate, burst float64, now time.Time) bool {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*rate)
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// handheldStation reports whether st is a configured handheld station.
func (h *Hub) handheldStation(st string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stations[st]
	return s != nil && s.info.Handheld
}

// Devices lists the paired devices with their last use.
func (h *Hub) Devices() []PairedDevice { return h.tokens.list() }

func (h *Hub) audit(event string, fields map[string]any) {
	if h.opt.Audit != nil {
		h.opt.Audit(event, fields)
	}
}

// dropDevice closes the open connections of a device just unpaired.
func (h *Hub) dropDevice(name string) {
	h.hh.mu.Lock()
	cs := h.hh.conns[name]
	delete(h.hh.conns, name)
	h.hh.mu.Unlock()
	h.mu.Lock()
	for c := range cs {
		h.dropLocked(c, websocket.ClosePolicyViolation, "unpaired")
	}
	h.mu.Unlock()
}

func (h *Hub) handheldRoutes(mux *http.ServeMux) {
	scan := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, need(NeedScan, f)) }
	scan("GET /h/{id}", h.handheldOnly(h.page("handheld.html")))
	scan("GET /h/{id}/ws", h.handheldOnly(h.serveHandheldWS))
	// The page's files: a scan token reaches nothing under /static/.
	for _, f := range []string{"app.js", "handheld.js", "handheld.css"} {
		scan("GET /h/static/"+f, h.file(f))
	}
	mux.Handle("GET /api/devices", need(NeedView, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, h.Devices())
	})))
}

// handheldOnly lets through a device bound to the handheld station of the
// path.
func (h *Hub) handheldOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st := r.PathValue("id")
		if !h.handheldStation(st) {
			http.Error(w, "no such handheld station on this gateway", http.StatusNotFound)
			return
		}
		if who, _ := WhoFrom(r.Context()); who.Station != st {
			http.Error(w, "forbidden: this device is paired for station "+who.Station+", not "+st, http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

// file serves one embedded static file.
func (h *Hub) file(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "static/"+name)
	}
}

// scanMsg is what a handheld sends: a code and the id the page made for it.
type scanMsg struct {
	Type string `json:"type"` // "scan"
	ID   string `json:"id"`
	Code string `json:"code"`
}

// answerMsg answers one scan: its outcome, or why it was not decided
// (Refused: nothing was decided or journalled; scan again), or Pending:
// the station has the scan but did not answer in time, so it may be
// decided and journalled; the same id sent again gets its decision (a new
// id would decide and journal it a second time).
type answerMsg struct {
	Type    string        `json:"type"` // "answer"
	ID      string        `json:"id"`
	Outcome *scan.Outcome `json:"outcome,omitempty"`
	Repeat  bool          `json:"repeat,omitempty"` // answered from the first time this id was sent
	Refused string        `json:"refused,omitempty"`
	Pending bool          `json:"pending,omitempty"`
}

// serveHandheldWS is a handheld's connection: the station's screen
// messages (hello, transit, decisions) like a station screen, plus the
// answers to its own scans.
func (h *Hub) serveHandheldWS(w http.ResponseWriter, r *http.Request) {
	st := r.PathValue("id")
	who, _ := WhoFrom(r.Context())
	if !h.guard.originOK(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	if !h.hh.allow(who.Name, h.opt.ScanRate, h.opt.ScanBurst, h.opt.Now()) {
		http.Error(w, "too many requests from this device", http.StatusTooManyRequests)
		return
	}
	h.mu.Lock()
	full, closed := len(h.clients)+h.upgrading >= h.opt.MaxClients, h.closed
	h.mu.Unlock()
	if full || closed {
		http.Error(w, "too many screens open", http.StatusServiceUnavailable)
		return
	}
	up := websocket.Upgrader{ReadBufferSize: handheldReadLimit, WriteBufferSize: 8192, HandshakeTimeout: 5 * time.Second,
		CheckOrigin: func(*http.Request) bool { return true }} // checked above
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	c := &client{station: st, handheld: true, send: make(chan []byte, h.opt.SendBuffer)}
	// Known as the device's before it is served, and the device checked
	// again after: a revocation racing this connection closes it.
	h.hh.mu.Lock()
	if h.hh.conns[who.Name] == nil {
		h.hh.conns[who.Name] = map[*client]bool{}
	}
	h.hh.conns[who.Name][c] = true
	h.hh.mu.Unlock()
	defer func() {
		h.hh.mu.Lock()
		delete(h.hh.conns[who.Name], c)
		h.hh.mu.Unlock()
	}()
	h.mu.Lock()
	if h.closed || !h.tokens.pairedName(who.Name) {
		h.mu.Unlock()
		return
	}
	h.clients[c] = struct{}{}
	c.send <- h.helloLocked(st)
	h.mu.Unlock()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	inFlight := make(chan struct{}, maxInFlight)
	conn.SetReadLimit(handheldReadLimit)
	conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	go func() {
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				cancel()
				h.remove(c)
				return
			}
			conn.SetReadDeadline(time.Now().Add(pongWait))
			var m scanMsg
			if json.Unmarshal(b, &m) != nil || m.Type != "scan" {
				continue
			}
			select {
			case inFlight <- struct{}{}:
			case <-ctx.Done():
				h.remove(c)
				return
			}
			go func() {
				defer func() { <-inFlight }()
				h.handheldScan(ctx, c, who, st, m)
			}()
		}
	}()
	// A ping, and a message the page's script sees: it takes a connection
	// silent for 25 s as dropped.
	h.writeLoop(conn, c, []byte(`{"type":"alive"}`))
}

// handheldScan decides one scan of a handheld, once, and answers it.
func (h *Hub) handheldScan(ctx context.Context, c *client, who Who, st string, m scanMsg) {
	answer := func(a answerMsg) {
		a.Type, a.ID = "answer", m.ID
		b, _ := json.Marshal(a)
		h.mu.Lock()
		if _, ok := h.clients[c]; ok {
			h.sendLocked(c, b)
		}
		h.mu.Unlock()
	}
	if m.ID == "" || len(m.ID) > maxScanID || !nameRE(m.ID) {
		answer(answerMsg{Refused: "bad scan id"})
		return
	}
	if m.Code == "" {
		answer(answerMsg{Refused: "empty code"})
		return
	}
	ref := who.Name + "/" + m.ID
	s, fresh := h.hh.begin(who.Name, ref, m.Code)
	if fresh {
		if !h.hh.allow(who.Name, h.opt.ScanRate, h.opt.ScanBurst, h.opt.Now()) {
			h.hh.forget(who.Name, ref)
			answer(answerMsg{Refused: "too fast"})
			return
		}
		h.hh.mu.Lock()
		sub := h.hh.bound[st]
		h.hh.mu.Unlock()
		line := []byte(m.Code)
		rd := device.Read{Line: line, At: h.opt.Now(), Ref: ref}
		if len(line) > 512 {
			rd.Line, rd.Overlong = line[:513], true
		}
		err := errNoStation
		if sub != nil {
			sctx, cancel := context.WithTimeout(ctx, h.opt.AnswerTimeout)
			err = sub.Submit(sctx, rd)
			cancel()
		}
		if err != nil {
			// The station never had it: nothing decided, nothing journalled.
			h.hh.forget(who.Name, ref)
			h.log.Warn("handheld scan not submitted", "device", who.Name, "station", st, "err", err)
			answer(answerMsg{Refused: "no station"})
			return
		}
	} else if s.code != m.Code {
		answer(answerMsg{Refused: "id reused for another code"})
		return
	}
	t := time.NewTimer(h.opt.AnswerTimeout)
	defer t.Stop()
	select {
	case <-s.done:
		if testHookHandheldAnswer != nil && testHookHandheldAnswer(c) {
			return
		}
		o := s.out
		answer(answerMsg{Outcome: &o, Repeat: !fresh})
	case <-t.C:
		answer(answerMsg{Pending: true}) // may be decided: the same id sent again gets it
	case <-ctx.Done():
	}
}

// testHookHandheldAnswer, when set, runs before a decided scan is answered;
// true: the answer is not sent.
var testHookHandheldAnswer func(*client) bool
