package main

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
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
