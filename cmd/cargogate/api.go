package main

import (
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/cargogate/cargogate/drivers"
	"github.com/cargogate/cargogate/gateway/audit"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/station"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/sync/link"
)

// opsAPI serves the operator commands against a running gateway (whose
// files are locked): hot backups, event export, audit verify and export.
// It sits behind the screens' Host, token and Origin checks.
type opsAPI struct {
	store   *store.Store
	journal *journal.Journal
	audit   *audit.Log
	pub     ed25519.PublicKey
}

func (o *opsAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/backup", o.backup)
	mux.HandleFunc("GET /api/export/events", o.exportEvents)
	mux.HandleFunc("GET /api/audit/verify", o.auditVerify)
	mux.HandleFunc("GET /api/audit/export", o.auditExport)
	return mux
}

func sinceParam(r *http.Request) (time.Time, error) {
	s := r.URL.Query().Get("since")
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339, s)
}

// backup streams a consistent copy of one file from a read transaction
// (a second handle on the file would wait on bbolt's lock).
func (o *opsAPI) backup(w http.ResponseWriter, r *http.Request) {
	files := map[string]interface {
		Backup(w io.Writer) (int64, error)
	}{ordersFile: o.store, journalFile: o.journal, auditFile: o.audit}
	name := r.URL.Query().Get("file")
	f, ok := files[name]
	if !ok {
		http.Error(w, "file: one of "+ordersFile+", "+journalFile+", "+auditFile, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if _, err := f.Backup(w); err != nil {
		slog.Error("backup", "file", name, "err", err)
	}
}

func (o *opsAPI) exportEvents(w http.ResponseWriter, r *http.Request) {
	since, err := sinceParam(r)
	if err != nil {
		http.Error(w, "since: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	exportEvents(o.journal, w, since)
}

func (o *opsAPI) auditVerify(w http.ResponseWriter, r *http.Request) {
	rep, err := o.audit.Verify(o.pub)
	out := map[string]any{"report": rep}
	if err != nil {
		out["error"] = err.Error()
	}
	writeJSONResp(w, out)
}

func (o *opsAPI) auditExport(w http.ResponseWriter, r *http.Request) {
	since, err := sinceParam(r)
	if err != nil {
		http.Error(w, "since: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	o.audit.Export(w, since)
}

func writeJSONResp(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// readyz: 200 while the gateway can do its job (the stores take commits,
// the configuration was valid to start with). The link to central is
// reported, not required: the gateway decides offline.
func readyz(lk *link.Link) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := lk.Snapshot()
		body := map[string]any{"ready": s.Ready, "store_writable": s.StoreWritable, "outbox_writable": s.OutboxWritable,
			"link_online": s.Online, "alarms": s.Alarms}
		if !s.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		writeJSONResp(w, body)
	})
}

// auditObserver appends every decision and device change to the audit log.
type auditObserver struct{ log *audit.Log }

func (a auditObserver) Decided(o station.Outcome) {
	rec := map[string]any{"station": o.Station, "role": o.Role, "event_id": o.EventID, "at": o.At, "code": o.Code,
		"subject": o.Subject, "pass": o.Pass, "reason": o.Reason, "basis_seq": o.BasisSeq, "offline": o.Offline, "gate": o.Gate}
	kind := audit.KindDecision
	switch o.Kind {
	case "seal":
		rec["seal"] = o.Seal
	case "arrival":
		rec["arrival"] = o.Arrival
	}
	rec["kind"] = o.Kind
	a.log.Add(kind, rec)
}

func (a auditObserver) Device(st, dev string, state drivers.State, detail string) {
	a.log.Add(audit.KindDevice, map[string]any{"station": st, "device": dev, "state": state, "detail": detail})
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
