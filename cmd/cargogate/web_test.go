package main

import (
	"bytes"
	"context"
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
	"testing"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/gateway/audit"
)

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
