// Package opsapi is the operator HTTP API of a running gateway (whose
// files are locked): hot backups, event export, audit verify and export,
// and /readyz. Package main constructs it and registers its routes.
package opsapi

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cargogate/cargogate/gateway/audit"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/screens"
	"github.com/cargogate/cargogate/sync/link"
)

// API serves the operator commands against a running gateway (whose
// files are locked): hot backups, event export, audit verify and export.
// Its routes need the operator role (screens.NeedOperate).
//
// No response is written from inside a bbolt transaction: a client that
// reads slowly, or not at all, would hold the transaction open, and at the
// store's next remap every commit and then every new read (every scan)
// would wait for it. Each stream is first spooled to an unlinked temporary
// file in the data directory at disk speed, then sent from the file with a
// deadline on every write (stream_stall): a client that accepts nothing
// for that long is cut off.
type API struct {
	backups []Backup
	journal *journal.Journal
	audit   *audit.Log
	pub     ed25519.PublicKey
	dir     string        // where the spools go (the data directory)
	stall   time.Duration // per-write deadline of a stream
	log     *slog.Logger

	// spools counts the spools in flight: each holds a copy of a file in
	// the data directory, so at most maxSpools at once.
	spools atomic.Int32

	// verify is expensive (the whole chain): one at a time, and at most
	// once per verifyEvery.
	verifyMu    sync.Mutex
	verifyLast  time.Time
	verifyEvery time.Duration
}

// Backuper writes a consistent copy of its file, taken in one read
// transaction (the store, the journal and the audit log are).
type Backuper interface {
	Backup(w io.Writer) (int64, error)
}

// Backup is one file GET /api/backup?file=Name serves.
type Backup struct {
	Name string
	File Backuper
}

// Options are what New needs.
type Options struct {
	Backups     []Backup          // the files /api/backup serves, in the order its error lists them
	Journal     *journal.Journal  // GET /api/export/events
	Audit       *audit.Log        // GET /api/audit/verify and /api/audit/export
	Pub         ed25519.PublicKey // the checkpoints' key, for verify
	Dir         string            // where the spools go (the data directory)
	Stall       time.Duration     // per-write deadline of a stream (http.stream_stall)
	Log         *slog.Logger      // nil discards
	VerifyEvery time.Duration     // how often /api/audit/verify may run
}

// New makes the operator API.
func New(o Options) *API {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{backups: o.Backups, journal: o.Journal, audit: o.Audit, pub: o.Pub, dir: o.Dir, stall: o.Stall,
		log: log, verifyEvery: o.VerifyEvery}
}

// maxSpools bounds the downloads (backups, exports) running at once.
const maxSpools = 2

// Routes are the operator routes, each needing the operator role.
func (o *API) Routes() []screens.Route {
	op := func(pattern string, f http.HandlerFunc) screens.Route {
		return screens.Route{Pattern: pattern, Handler: f, Need: screens.NeedOperate}
	}
	return []screens.Route{
		op("GET /api/backup", o.backup),
		op("GET /api/export/events", o.exportEvents),
		op("GET /api/audit/verify", o.auditVerify),
		op("GET /api/audit/export", o.auditExport),
	}
}

func sinceParam(r *http.Request) (time.Time, error) {
	s := r.URL.Query().Get("since")
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339, s)
}

// spool runs fill (which reads the stores) into a temporary file, then
// sends the file with a Content-Length, so that a client cut off short
// knows it. A fill that fails answers 500 before any byte is sent.
func (o *API) spool(w http.ResponseWriter, r *http.Request, what, contentType string, fill func(io.Writer) error) {
	if o.spools.Add(1) > maxSpools {
		o.spools.Add(-1)
		w.Header().Set("Retry-After", "10")
		http.Error(w, fmt.Sprintf("%d downloads are running: try again later", maxSpools), http.StatusTooManyRequests)
		return
	}
	defer o.spools.Add(-1)
	f, err := os.CreateTemp(o.dir, ".spool-*")
	if err != nil {
		o.log.Error("spool", "what", what, "err", err)
		http.Error(w, "spool: "+err.Error(), http.StatusInternalServerError)
		return
	}
	os.Remove(f.Name()) // gone with the last handle, whatever happens next
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	var size int64
	if err == nil {
		size, err = f.Seek(0, io.SeekCurrent)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		o.log.Error("spool", "what", what, "err", err)
		http.Error(w, what+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Cache-Control", "no-store")
	if n, err := sendPaced(w, f, o.stall); err != nil {
		o.log.Warn("stream cut: the client took too long or went away", "what", what, "sent", n, "size", size,
			"remote", r.RemoteAddr, "err", err)
	}
}

// sendPaced copies src to w, giving each write stall to complete.
func sendPaced(w http.ResponseWriter, src io.Reader, stall time.Duration) (int64, error) {
	rc := http.NewResponseController(w)
	buf := make([]byte, 64<<10)
	var sent int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if err := rc.SetWriteDeadline(time.Now().Add(stall)); err != nil {
				return sent, err
			}
			m, err := w.Write(buf[:n])
			sent += int64(m)
			if err != nil {
				return sent, err
			}
		}
		if rerr == io.EOF {
			return sent, rc.Flush()
		}
		if rerr != nil {
			return sent, rerr
		}
	}
}

// backup sends a consistent copy of one file, taken in one read
// transaction into the spool.
func (o *API) backup(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("file")
	i := slices.IndexFunc(o.backups, func(b Backup) bool { return b.Name == name })
	if i < 0 {
		names := make([]string, len(o.backups))
		for j, b := range o.backups {
			names[j] = b.Name
		}
		http.Error(w, "file: one of "+strings.Join(names, ", "), http.StatusBadRequest)
		return
	}
	f := o.backups[i].File
	o.spool(w, r, "backup "+name, "application/octet-stream", func(out io.Writer) error {
		_, err := f.Backup(out)
		return err
	})
}

func (o *API) exportEvents(w http.ResponseWriter, r *http.Request) {
	since, err := sinceParam(r)
	if err != nil {
		http.Error(w, "since: "+err.Error(), http.StatusBadRequest)
		return
	}
	o.spool(w, r, "export events", "application/x-ndjson", func(out io.Writer) error {
		return o.journal.Export(out, since)
	})
}

// auditVerify verifies a snapshot of the audit log (so the log's commits
// never wait for the walk), one at a time and at most once per
// verifyEvery; others get 429.
func (o *API) auditVerify(w http.ResponseWriter, r *http.Request) {
	if !o.verifyMu.TryLock() {
		w.Header().Set("Retry-After", "10")
		http.Error(w, "an audit verify is running: try again later", http.StatusTooManyRequests)
		return
	}
	defer o.verifyMu.Unlock()
	if wait := o.verifyEvery - time.Since(o.verifyLast); !o.verifyLast.IsZero() && wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		http.Error(w, fmt.Sprintf("audit verify runs at most once per %s: try again in %s", o.verifyEvery, wait.Round(time.Second)), http.StatusTooManyRequests)
		return
	}
	o.verifyLast = time.Now()
	rep, err := o.verifySnapshot()
	out := map[string]any{"report": rep}
	if err != nil {
		out["error"] = err.Error()
	}
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(o.stall))
	writeJSONResp(w, out)
}

func (o *API) verifySnapshot() (audit.Report, error) {
	f, err := os.CreateTemp(o.dir, ".verify-*")
	if err != nil {
		return audit.Report{}, err
	}
	defer os.Remove(f.Name())
	bw := bufio.NewWriterSize(f, 1<<20)
	_, err = o.audit.Backup(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return audit.Report{}, fmt.Errorf("snapshot: %w", err)
	}
	return audit.VerifyFile(f.Name(), o.pub)
}

// auditExport: JSON lines with the chain hash, ending with the trailer
// line; a failed export answers 500, never a 200 that looks complete.
func (o *API) auditExport(w http.ResponseWriter, r *http.Request) {
	since, err := sinceParam(r)
	if err != nil {
		http.Error(w, "since: "+err.Error(), http.StatusBadRequest)
		return
	}
	o.spool(w, r, "audit export", "application/x-ndjson", func(out io.Writer) error {
		_, err := o.audit.Export(out, since)
		return err
	})
}

func writeJSONResp(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Readyz: 200 while the gateway can do its job (the stores take commits,
// the configuration was valid to start with). The link to central is
// reported, not required: the gateway decides offline.
func Readyz(lk *link.Link) http.Handler {
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
