package main

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/cargogate/cargogate/internal/testenv"
)

// TestReview19_NoHTTP2UnderTLS: with http.tls_cert_file the server must
// not negotiate HTTP/2. An HTTP/2 connection is not bound by
// ReadHeaderTimeout: a client with no token that completes the handshake
// and sends no request keeps its connection (and a slot of
// http.max_conns) for the whole IdleTimeout (60 s) instead of 2 s, so a
// few slots a second lock every screen out. The pages and the API need
// nothing of HTTP/2, and the WebSocket is HTTP/1.1 anyway.
func TestReview19_NoHTTP2UnderTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testenv.NewCA(t, dir, "screens-ca")
	cert, key := ca.Issue(t, "gateway-screens", "127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "token required", http.StatusUnauthorized)
	}), slog.New(slog.DiscardHandler))
	srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	go srv.ServeTLS(ln, cert, key)
	defer srv.Close()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p == "h2" {
		t.Fatalf("the server negotiated %q", p)
	}
}

// TestReview19_StaleSpoolsRemovedAtStart: /api/audit/verify snapshots
// audit.db into a named temporary file in data_dir for the length of the
// walk (a backup or export spool, and the paired devices' file, are named
// for an instant too). A gateway killed meanwhile leaves a full copy of
// the log behind, and each such crash another: the next start removes
// them, and nothing else.
func TestReview19_StaleSpoolsRemovedAtStart(t *testing.T) {
	s := newSite(t)
	s.gw.Kill()
	data := filepath.Join(s.dir, "gw")
	stale := []string{".verify-1234", ".spool-5678", ".paired-9012"}
	for _, name := range append(stale, "notes.txt") {
		if err := os.WriteFile(filepath.Join(data, name), make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.startGateway()
	for _, name := range stale {
		if _, err := os.Stat(filepath.Join(data, name)); err == nil {
			t.Errorf("%s left in data_dir after a restart", name)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "notes.txt")); err != nil {
		t.Errorf("a file of the operator's was removed: %v", err)
	}
}
