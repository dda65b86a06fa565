package screens

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cargogate/cargogate/gateway/scan"
)

// WebSocket timing and limits.
const (
	writeWait = 2 * time.Second  // one message to one screen; slower is dropped
	pongWait  = 30 * time.Second // a screen silent this long (no pong) is gone
	pingEvery = 10 * time.Second
	readLimit = 512 // the pages send nothing but control frames
)

// testHookUpgrade, when set, runs between the cap check and the upgrade.
var testHookUpgrade func()

// client is one open screen. The hub writes to send; the connection's own
// writer (serveWS) is the only goroutine that writes to the connection.
type client struct {
	station string   // "" = every station (supervisor, lookup, index)
	cred    [32]byte // the SHA-256 of its token (zero: trusted loopback)
	// handheld: a handheld device's page, which hears of its own station
	// only (not the overview: a scan token sees no other station).
	handheld bool
	send     chan []byte
	// code and reason are the close frame sent when the hub drops the
	// client; set before send is closed.
	code   int
	reason string
}

// broadcastLocked queues msg for every screen showing st ("" = all). A
// screen whose queue is full is dropped. h.mu is held.
func (h *Hub) broadcastLocked(msg []byte, st string) {
	for c := range h.clients {
		if st != "" && c.station != "" && c.station != st || st == "" && c.handheld {
			continue
		}
		h.sendLocked(c, msg)
	}
}

// sendLocked queues msg for c, or drops c when its queue is full. h.mu is
// held.
func (h *Hub) sendLocked(c *client, msg []byte) {
	select {
	case c.send <- msg:
	default:
		h.slow.Add(1)
		h.log.Warn("screen too slow: dropped", "station", c.station)
		h.dropLocked(c, websocket.CloseTryAgainLater, "too slow")
	}
}

// broadcastTransitLocked queues the arrival state of st for the screens
// of that station (the all-stations screens read the overview's brief).
// h.mu is held.
func (h *Hub) broadcastTransitLocked(st string) {
	s := h.stations[st]
	if s == nil {
		return
	}
	msg, err := json.Marshal(struct {
		Type    string `json:"type"`
		Station string `json:"station"`
		TransitState
	}{"transit", st, s.transitStateLocked()})
	if err != nil {
		h.log.Error("encode transit", "err", err)
		return
	}
	for c := range h.clients {
		if c.station == st {
			h.sendLocked(c, msg)
		}
	}
}

// dropLocked unregisters c and tells its writer to close. h.mu is held.
func (h *Hub) dropLocked(c *client, code int, reason string) {
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	c.code, c.reason = code, reason
	close(c.send)
}

// dropRevoked closes the screens whose token no longer lets them in (a
// device unpaired, or paired again with a new token): a revoked kiosk
// stops receiving the decisions at once.
func (h *Hub) dropRevoked() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if c.cred != ([32]byte{}) && !h.tokens.valid(c.cred) {
			h.log.Info("screen closed: its token was revoked", "station", c.station)
			h.dropLocked(c, websocket.ClosePolicyViolation, "token revoked")
		}
	}
}

func (h *Hub) remove(c *client) {
	h.mu.Lock()
	h.dropLocked(c, websocket.CloseNormalClosure, "")
	h.mu.Unlock()
}

// closeAll closes every screen ("going away") and refuses new ones.
func (h *Hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		h.dropLocked(c, websocket.CloseGoingAway, "gateway stopping")
	}
}

// hello is the first message on a connection: what the screen shows
// before the next scan, so a page that reconnects misses nothing.
type hello struct {
	Type     string                 `json:"type"`
	Station  *StationInfo           `json:"station,omitempty"`
	Stations []StationInfo          `json:"stations"`
	Recent   []scan.Outcome         `json:"recent"` // newest last
	Devices  map[string]DeviceState `json:"devices,omitempty"`
	Gate     *GateState             `json:"gate_state,omitempty"`
	// Arrival is the station's arrival state (open transit, stopped
	// items, last closed transit), for the screens of one station.
	Arrival *TransitState `json:"arrival,omitempty"`
}

func (h *Hub) helloLocked(st string) []byte {
	m := hello{Type: "hello", Stations: []StationInfo{}, Recent: []scan.Outcome{}}
	for _, id := range h.order {
		m.Stations = append(m.Stations, h.stations[id].info)
	}
	if s := h.stations[st]; s != nil {
		info, gate := s.info, s.gate
		m.Station, m.Gate = &info, &gate
		m.Recent = append(m.Recent, s.recent...)
		m.Devices = map[string]DeviceState{}
		for d, v := range s.devices {
			m.Devices[d] = v
		}
		ts := s.transitStateLocked()
		m.Arrival = &ts
	} else {
		m.Recent = append(m.Recent, h.recent...)
	}
	b, _ := json.Marshal(m)
	return b
}

// serveWS upgrades a screen's connection (?station=ID to follow one
// station) once its Origin is allowed, then owns writing to it: queued
// messages, pings every pingEvery, and the close frame.
func (h *Hub) serveWS(w http.ResponseWriter, r *http.Request) {
	st := r.URL.Query().Get("station")
	if st != "" && !h.knownStation(st) {
		http.Error(w, "no such station on this gateway", http.StatusNotFound)
		return
	}
	if !h.guard.originOK(r) {
		h.log.Warn("websocket refused: origin not allowed", "origin", r.Header.Get("Origin"), "host", r.Host, "remote", r.RemoteAddr)
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	h.mu.Lock()
	full, closed := len(h.clients)+h.upgrading >= h.opt.MaxClients, h.closed
	if !full && !closed {
		h.upgrading++ // the slot is taken with the check: concurrent upgrades cannot pass the cap
	}
	h.mu.Unlock()
	if full || closed {
		http.Error(w, "too many screens open", http.StatusServiceUnavailable)
		return
	}
	reserved := true
	defer func() {
		if reserved {
			h.mu.Lock()
			h.upgrading--
			h.mu.Unlock()
		}
	}()
	if testHookUpgrade != nil {
		testHookUpgrade()
	}
	first := h.Overview()
	first.Screens++ // this one
	ov, err := json.Marshal(struct {
		Type     string   `json:"type"`
		Overview Overview `json:"overview"`
	}{"overview", first})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	up := websocket.Upgrader{ReadBufferSize: readLimit, WriteBufferSize: 8192, HandshakeTimeout: 5 * time.Second,
		CheckOrigin: func(*http.Request) bool { return true }} // checked above, with the allow-list
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade answered the client
	}
	defer conn.Close()
	who, _ := WhoFrom(r.Context())
	c := &client{station: st, cred: who.cred, send: make(chan []byte, h.opt.SendBuffer)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "gateway stopping"), time.Now().Add(writeWait))
		return
	}
	if c.cred != ([32]byte{}) && !h.tokens.valid(c.cred) { // revoked while upgrading
		h.mu.Unlock()
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "token revoked"), time.Now().Add(writeWait))
		return
	}
	h.upgrading--
	reserved = false
	h.clients[c] = struct{}{}
	c.send <- h.helloLocked(st)
	c.send <- ov
	h.mu.Unlock()

	conn.SetReadLimit(readLimit)
	conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	go func() {
		// The reader: sees pongs and the close; anything else is ignored.
		for {
			if _, _, err := conn.NextReader(); err != nil {
				h.remove(c)
				return
			}
		}
	}()
	h.writeLoop(conn, c, nil)
}

// writeLoop sends c's messages and a ping every pingEvery (with alive, if
// set, as a text message the page's script sees) until c is closed or a
// write fails.
func (h *Hub) writeLoop(conn *websocket.Conn, c *client, alive []byte) {
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case msg, ok := <-c.send:
			conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, c.reason))
				return
			}
			if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				h.remove(c)
				return
			}
		case <-ping.C:
			conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				h.remove(c)
				return
			}
			if alive == nil {
				continue
			}
			if err := conn.WriteMessage(websocket.TextMessage, alive); err != nil {
				h.remove(c)
				return
			}
		}
	}
}
