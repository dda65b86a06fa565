package central

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// maxOrdersBody bounds a POST /orders body.
const maxOrdersBody = 64 << 20

// Handler serves central's HTTP API:
//
//	POST /orders               JSON lines or a JSON array of §3 orders without seq
//	                           → 200 {"first":N,"last":M}; invalid input → 400, nothing issued;
//	                           ?publish=false: recorded in the ledger only (see Record)
//	GET  /audit?gateway=g07    → Audit: the gateway's PASS scans checked against the ledger
//	GET  /check?kind=parcel&id=…&seq=N&applied=W&at=RFC3339
//	                           → {"ok":true} or {"ok":false,"why":…} (see CheckPass)
//	GET  /head                 → {"site":…,"seq":N}
//	GET  /events?gateway=g07   → JSON array of events in received order (no gateway: all)
//	GET  /stats                → Stats
//	GET  /status?gateway=g07   → the gateway's latest status, 404 if none
//	                             (no gateway: an object of every gateway's status)
//	GET  /fleet/               → the fleet view (internal/fleet): the page,
//	                             /fleet/api/fleet and /fleet/metrics
func (c *Central) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /fleet/", http.StripPrefix("/fleet", c.fleet.Handler()))
	mux.Handle("GET /fleet", http.RedirectHandler("/fleet/", http.StatusMovedPermanently))
	mux.HandleFunc("POST /orders", c.postOrders)
	mux.HandleFunc("GET /head", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"site": c.opts.Site, "seq": c.Head()})
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		gw := r.URL.Query().Get("gateway")
		if gw != "" && !customs.NameRE.MatchString(gw) {
			httpError(w, http.StatusBadRequest, "gateway: must match [A-Za-z0-9_-]{1,64}")
			return
		}
		writeJSON(w, http.StatusOK, c.Events(gw))
	})
	mux.HandleFunc("GET /audit", func(w http.ResponseWriter, r *http.Request) {
		gw := r.URL.Query().Get("gateway")
		if gw != "" && !customs.NameRE.MatchString(gw) {
			httpError(w, http.StatusBadRequest, "gateway: must match [A-Za-z0-9_-]{1,64}")
			return
		}
		a, err := c.Audit(gw)
		if err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, a)
	})
	mux.HandleFunc("GET /check", c.getCheck)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.Stats())
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		gw := r.URL.Query().Get("gateway")
		if gw == "" {
			writeJSON(w, http.StatusOK, c.GatewayStatuses())
			return
		}
		s, ok := c.GatewayStatus(gw)
		if !ok {
			httpError(w, http.StatusNotFound, "no status received from gateway "+gw)
			return
		}
		writeJSON(w, http.StatusOK, s)
	})
	return mux
}

func (c *Central) postOrders(w http.ResponseWriter, r *http.Request) {
	orders, err := ParseOrders(http.MaxBytesReader(w, r.Body, maxOrdersBody), maxOrdersBody)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	issue := c.Issue
	if r.URL.Query().Get("publish") == "false" {
		issue = c.Record
	}
	first, last, err := issue(r.Context(), orders)
	switch {
	case errors.Is(err, ErrInvalidOrder), errors.Is(err, ErrNoOrders):
		httpError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		c.log.Error("POST /orders", "err", err)
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"first": first, "last": last})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func (c *Central) getCheck(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s := customs.Subject{Kind: customs.Kind(q.Get("kind")), ID: q.Get("id")}
	if err := s.Validate(); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	seq, err := strconv.ParseUint(q.Get("seq"), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, "seq: "+err.Error())
		return
	}
	at := time.Now()
	if v := q.Get("at"); v != "" {
		if at, err = time.Parse(time.RFC3339Nano, v); err != nil {
			httpError(w, http.StatusBadRequest, "at: "+err.Error())
			return
		}
	}
	var applied uint64
	if v := q.Get("applied"); v != "" {
		if applied, err = strconv.ParseUint(v, 10, 64); err != nil {
			httpError(w, http.StatusBadRequest, "applied: "+err.Error())
			return
		}
	}
	if err := c.CheckPass(s, seq, applied, at); err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "why": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}
