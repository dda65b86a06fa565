package opsapi

import (
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
	"syscall"
	"testing"
	"time"

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

// opsFixture is an operator API over real stores in a temporary directory.
func opsFixture(t *testing.T) (*API, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "orders.db"), store.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	jr, err := journal.Open(filepath.Join(dir, "events.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jr.Close() })
	aud, err := audit.Open(filepath.Join(dir, "audit.db"), slog.New(slog.DiscardHandler))
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
	o := New(Options{Backups: []Backup{{"orders.db", st}, {"events.db", jr}, {"audit.db", aud}}, Journal: jr, Audit: aud,
		Pub: pub, Dir: dir, Stall: 5 * time.Second, VerifyEvery: time.Hour})
	mux := http.NewServeMux()
	for _, r := range o.Routes() {
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
