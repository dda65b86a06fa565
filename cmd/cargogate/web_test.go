package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/gateway/audit"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/store"
)

// smallRcvBuf dials with a receive buffer of a few KiB.
var smallRcvBuf = net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	return serr
}}

// TestStreamStallCutsTheClient: a download whose client reads nothing is
// cut once a write has waited stream_stall.
func TestStreamStallCutsTheClient(t *testing.T) {
	done := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := sendPaced(w, io.LimitReader(zeros{}, 256<<20), 300*time.Millisecond)
		done <- err
	}))
	defer srv.Close()
	conn, err := smallRcvBuf.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the stream ended with %v, want the write deadline", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a client that reads nothing holds the stream")
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestTrickledRequestIsCut sends a request's headers a byte at a time:
// the server drops the connection within readHeaderTimeout, long before
// the headers could be complete.
func TestTrickledRequestIsCut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "token required", http.StatusUnauthorized)
	}), slog.New(slog.DiscardHandler))
	go srv.Serve(ln)
	defer srv.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A trickle of 4 s: twice the header timeout (the server's former
	// 5 s let all of it through).
	const trickle = 4 * time.Second
	header := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 40) + "\r\n\r\n"
	every := trickle / time.Duration(len(header))
	var cut atomic.Bool
	go func() {
		b := make([]byte, 1)
		conn.Read(b) // returns when the server closes
		cut.Store(true)
	}()
	for i := range len(header) {
		if cut.Load() {
			t.Logf("cut after %d of %d header bytes", i, len(header))
			return
		}
		conn.Write([]byte{header[i]})
		time.Sleep(every)
	}
	t.Fatalf("a request trickled over %s was held open to the end", trickle)
}

// TestConnectionCap: with every slot taken by idle connections, the next
// client waits; it is served once a slot frees.
func TestConnectionCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }),
		slog.New(slog.DiscardHandler))
	go srv.Serve(limitListener(ln, 2))
	defer srv.Close()
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	time.Sleep(100 * time.Millisecond) // both accepted
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, _ := c.Read(make([]byte, 64)); n > 0 {
		t.Fatal("a third connection was served over a cap of 2")
	}
	idle[0].Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 64)
	if n, err := c.Read(b); err != nil || !strings.Contains(string(b[:n]), "200 OK") {
		t.Fatalf("once a slot freed: %q %v", b[:n], err)
	}
}

// opsFixture is an operator API over real stores in a temporary directory.
func opsFixture(t *testing.T) (*opsAPI, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, ordersFile), store.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	jr, err := journal.Open(filepath.Join(dir, journalFile), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jr.Close() })
	aud, err := audit.Open(filepath.Join(dir, auditFile), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aud.Close() })
	go aud.Run(t.Context())
	for i := range 20 {
		aud.AddSync(context.Background(), audit.KindDecision, map[string]int{"n": i})
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	if _, err := aud.Checkpoint("PVG-W/g07", priv, time.Now()); err != nil {
		t.Fatal(err)
	}
	o := &opsAPI{store: st, journal: jr, audit: aud, pub: pub, dir: dir, stall: 5 * time.Second,
		log: slog.New(slog.DiscardHandler), verifyEvery: time.Hour}
	mux := http.NewServeMux()
	for _, r := range o.routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return o, srv
}

// TestAuditExportOverHTTP: lines with the chain hash and a trailer, and a
// Content-Length; an export that fails answers 500, not a 200 that looks
// complete.
func TestAuditExportOverHTTP(t *testing.T) {
	o, srv := opsFixture(t)
	resp, err := http.Get(srv.URL + "/api/audit/export")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(b)) || len(lines) != 21 ||
		!strings.Contains(lines[0], `"chain":"`) || !strings.HasPrefix(lines[20], `{"trailer":`) {
		t.Fatalf("export: %s, length %d, %d lines:\n%s", resp.Status, resp.ContentLength, len(lines), b)
	}
	o.audit.Close() // the export now fails
	resp, err = http.Get(srv.URL + "/api/audit/export")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("a failed export answered %s: %q", resp.Status, b)
	}
}

// TestAuditVerifyRateLimited: one verify per verifyEvery; the next gets
// 429 with Retry-After.
func TestAuditVerifyRateLimited(t *testing.T) {
	_, srv := opsFixture(t)
	resp, err := http.Get(srv.URL + "/api/audit/verify")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"Records": 20`) || strings.Contains(string(b), `"error"`) {
		t.Fatalf("verify: %s %s", resp.Status, b)
	}
	resp, err = http.Get(srv.URL + "/api/audit/verify")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a second verify at once: %s", resp.Status)
	}
}

// apiConfig points the CLI at srv.
func apiConfig(t *testing.T, srv *httptest.Server, dataDir string) *config.Config {
	return &config.Config{DataDir: dataDir, HTTP: config.HTTP{Listen: srv.Listener.Addr().String()}}
}

// TestCLINoOverallTimeout: a download that takes longer than the former
// 10 s overall timeout succeeds while bytes keep coming; one that stops
// for apiIdleTimeout fails, saying so.
func TestCLINoOverallTimeout(t *testing.T) {
	const chunks = 12
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(chunks))
		rc := http.NewResponseController(w)
		for i := range chunks {
			if r.URL.Path == "/stall" && i == 1 {
				<-r.Context().Done()
				return
			}
			w.Write([]byte{'x'})
			rc.Flush()
			time.Sleep(time.Second)
		}
	}))
	defer srv.Close()
	cfg := apiConfig(t, srv, "")
	var out bytes.Buffer
	if err := getAPI(cfg, "/slow", &out); err != nil || out.Len() != chunks {
		t.Fatalf("a %d s download: %v (%d bytes)", chunks, err, out.Len())
	}
	defer func(d time.Duration) { apiIdleTimeout = d }(apiIdleTimeout)
	apiIdleTimeout = 500 * time.Millisecond
	if err := getAPI(cfg, "/stall", &out); err == nil || !strings.Contains(err.Error(), "no data from the gateway") {
		t.Fatalf("a stalled download: %v", err)
	}
}

// TestCLIAuditExportNeedsTheTrailer: from a running gateway, an export
// that ends without its trailer line is reported incomplete.
func TestCLIAuditExportNeedsTheTrailer(t *testing.T) {
	dir := t.TempDir()
	aud, err := audit.Open(filepath.Join(dir, auditFile), slog.New(slog.DiscardHandler)) // held: the CLI must ask the API
	if err != nil {
		t.Fatal(err)
	}
	defer aud.Close()
	body := `{"chain":"00","record":{"index":0}}` + "\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	defer srv.Close()
	cfgPath := filepath.Join(dir, "cargogate.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`site: PVG-W
gateway: g07
data_dir: %s
central:
  broker: tcp://127.0.0.1:1883
  keys: {central-2026a: "rC+mC5uuU2Z1eTrPggYI2YJIVbTvtx+EgepIw9kCj5g="}
http:
  listen: %s
stations:
  - id: gate-3
    role: gate
    scanner: {driver: serial, port: /dev/ttyUSB0}
    gate: {driver: serial, port: /dev/ttyUSB1}
`, dir, srv.Listener.Addr())), 0o600)
	var out, errOut bytes.Buffer
	err = cmdAudit(context.Background(), []string{"export", "--config", cfgPath}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("an export without its trailer: %v\n%s", err, out.String())
	}
	body += `{"trailer":{"records":1,"log_size":1,"head":"00"}}` + "\n"
	out.Reset()
	if err := cmdAudit(context.Background(), []string{"export", "--config", cfgPath}, &out, &errOut); err != nil {
		t.Fatalf("a complete export: %v", err)
	}
}

// TestDownloadsBounded: with maxSpools downloads held by clients that
// read nothing, the next one gets 429 rather than another copy on disk.
func TestDownloadsBounded(t *testing.T) {
	o, srv := opsFixture(t)
	// Big enough that the held downloads block on the clients.
	for i := range 20000 {
		o.audit.Add(audit.KindDecision, map[string]any{"n": i, "pad": strings.Repeat("p", 200)})
	}
	for o.audit.Lost() == 0 {
		if size, _ := o.audit.Head(); size >= 20020 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range maxSpools {
		c, err := smallRcvBuf.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /api/backup?file=audit.db HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	for deadline := time.Now().Add(30 * time.Second); o.spools.Load() < maxSpools; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d spools running, want %d", o.spools.Load(), maxSpools)
		}
	}
	resp, err := http.Get(srv.URL + "/api/export/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 {
		t.Fatalf("a third download: %s", resp.Status)
	}
}
