// Package screens serves the gateway's pages and pushes decisions to them
// live over WebSocket. Files are embedded in the binary, so the pages work
// offline on the terminal LAN.
package screens

import (
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cargogate/cargogate/drivers"
	"github.com/cargogate/cargogate/gateway/station"
)

//go:embed static
var static embed.FS

// Hub fans outcomes out to every open screen. A screen that cannot keep up
// is dropped, never waited for: the scan path only enqueues.
type Hub struct {
	log      *slog.Logger
	snapshot func() any // the status document

	mu      sync.Mutex
	clients map[*client]struct{}
	recent  []station.Outcome // the last outcomes, newest last
	devices map[string]map[string]deviceState
}

type deviceState struct {
	State  drivers.State `json:"state"`
	Detail string        `json:"detail"`
	Since  time.Time     `json:"since"`
}

type client struct {
	send chan []byte
}

const recentMax = 200

// New returns a hub; snapshot gives the status document served on /api/status.
func New(log *slog.Logger, snapshot func() any) *Hub {
	return &Hub{log: log, snapshot: snapshot, clients: map[*client]struct{}{}, devices: map[string]map[string]deviceState{}}
}

var _ station.Observer = (*Hub)(nil)

// Decided records an outcome and pushes it to every screen.
func (h *Hub) Decided(o station.Outcome) {
	msg, err := json.Marshal(map[string]any{"type": "decision", "outcome": o})
	if err != nil {
		return
	}
	h.mu.Lock()
	h.recent = append(h.recent, o)
	if len(h.recent) > recentMax {
		h.recent = append(h.recent[:0], h.recent[len(h.recent)-recentMax:]...)
	}
	h.mu.Unlock()
	h.broadcast(msg)
}

// Device records a device change and pushes it to every screen.
func (h *Hub) Device(st, device string, state drivers.State, detail string) {
	h.mu.Lock()
	if h.devices[st] == nil {
		h.devices[st] = map[string]deviceState{}
	}
	h.devices[st][device] = deviceState{State: state, Detail: detail, Since: time.Now().UTC()}
	h.mu.Unlock()
	msg, _ := json.Marshal(map[string]any{"type": "device", "station": st, "device": device, "state": state, "detail": detail})
	h.broadcast(msg)
}

func (h *Hub) broadcast(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		select {
		case c.send <- msg:
		default:
			// Too slow: drop it rather than slow the gateway.
			delete(h.clients, c)
			close(c.send)
		}
	}
}

// Handler serves the pages, /api/status, /api/recent and /ws.
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(static, "static")
	mux.Handle("GET /", http.FileServerFS(sub))
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, h.snapshot())
	})
	mux.HandleFunc("GET /api/recent", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		out := append([]station.Outcome(nil), h.recent...)
		devs := map[string]map[string]deviceState{}
		for s, m := range h.devices {
			devs[s] = map[string]deviceState{}
			for d, v := range m {
				devs[s][d] = v
			}
		}
		h.mu.Unlock()
		writeJSON(w, map[string]any{"recent": out, "devices": devs})
	})
	mux.HandleFunc("GET /ws", h.serveWS)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 4096}

func (h *Hub) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &client{send: make(chan []byte, 64)}
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	conn.SetReadLimit(1024)
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(60 * time.Second)) })
	// Reader: only to see pongs and the close.
	go func() {
		defer conn.Close()
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				h.mu.Lock()
				if _, ok := h.clients[c]; ok {
					delete(h.clients, c)
					close(c.send)
				}
				h.mu.Unlock()
				return
			}
		}
	}()
	// The one writer of this connection.
	ping := time.NewTicker(20 * time.Second)
	defer ping.Stop()
	for {
		select {
		case msg, ok := <-c.send:
			conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if !ok {
				conn.WriteMessage(websocket.CloseMessage, nil)
				conn.Close()
				return
			}
			if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				conn.Close()
				return
			}
		case <-ping.C:
			conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				conn.Close()
				return
			}
		}
	}
}
