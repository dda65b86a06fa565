package drivers

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

func accept(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(wait))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c net.Conn, chunks ...string) {
	t.Helper()
	for _, s := range chunks {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTCPClientScanner(t *testing.T) {
	base := runtime.NumGoroutine()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rec, stop := runScanner(t, scannerCfg{Driver: "tcp-client", Address: ln.Addr().String()})

	c := accept(t, ln)
	rec.expectState(t, Up)
	send(t, c, "RR1234", "56785CN\r", "\nA\rB\n", "\x02C\x03\r\n", "unterminated")
	rec.expectReads(t, "RR123456785CN", "A", "B", "C")

	// The scanner side drops the connection: Down, then it reconnects.
	c.Close()
	rec.expectState(t, Down)
	c2 := accept(t, ln)
	rec.expectState(t, Up)
	send(t, c2, "D\r\n")
	rec.expectReads(t, "D") // the unterminated code died with its connection

	stop()
	rec.noState(t)
	c2.Close()
	ln.Close()
	settles(t, base)
}

func TestTCPClientScannerRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	rec, stop := runScanner(t, scannerCfg{Driver: "tcp-client", Address: addr})
	rec.expectState(t, Down)

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	defer ln.Close()
	c := accept(t, ln)
	rec.expectState(t, Up)
	send(t, c, "X\r")
	rec.expectReads(t, "X")
	stop()
}

func runServerScanner(t *testing.T, cfg scannerCfg) (*recorder, string, func()) {
	t.Helper()
	cfg.Driver = "tcp-server"
	if cfg.Listen == "" && cfg.Address == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := Default().NewScanner(cfg.device())
	if err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	s.(*tcpServerScanner).listening = func(a net.Addr) { addrc <- a.String() }
	rec := newRecorder()
	stop := start(t, func(ctx context.Context) error { return s.Run(ctx, rec.emit, rec.state) })
	select {
	case addr := <-addrc:
		return rec, addr, stop
	case <-time.After(wait):
		t.Fatal("tcp-server scanner not listening")
	}
	return nil, "", nil
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTCPServerScanner(t *testing.T) {
	base := runtime.NumGoroutine()
	rec, addr, stop := runServerScanner(t, scannerCfg{MaxReaders: 2})
	rec.expectState(t, Down) // listening, no scanner yet

	c1 := dial(t, addr)
	rec.expectState(t, Up)
	send(t, c1, "A\r", "\nB")
	send(t, c1, "\n")
	rec.expectReads(t, "A", "B")

	// A second scanner on its own connection, with its own framing: a
	// partial code on c1 does not mix with c2's.
	c2 := dial(t, addr)
	send(t, c1, "PART")
	send(t, c2, "\x02C\x03")
	rec.expectReads(t, "C")
	send(t, c1, "IAL\r")
	rec.expectReads(t, "PARTIAL")

	c1.Close()
	send(t, c2, "D\r")
	rec.expectReads(t, "D")
	rec.noState(t) // c2 still connected
	c2.Close()
	rec.expectState(t, Down)

	c3 := dial(t, addr)
	rec.expectState(t, Up)
	send(t, c3, "E\r")
	rec.expectReads(t, "E")
	stop() // closes c3's server side
	settles(t, base)
}

func TestTCPServerScannerDebounce(t *testing.T) {
	rec, addr, stop := runServerScanner(t, scannerCfg{Address: "127.0.0.1:0", Debounce: 1 << 62})
	rec.expectState(t, Down)
	c := dial(t, addr)
	rec.expectState(t, Up)
	send(t, c, "A\rA\rB\rA\r")
	rec.expectReads(t, "A", "B", "A")
	stop()
	rec.noReads(t)
}

// With max_readers 1 (the default), a reader connecting again replaces its
// old connection (which may linger half-open after a power cycle): the old
// one is closed, the device stays up.
func TestTCPServerScannerReplaces(t *testing.T) {
	rec, addr, stop := runServerScanner(t, scannerCfg{})
	rec.expectState(t, Down)
	c1 := dial(t, addr)
	rec.expectState(t, Up)
	send(t, c1, "A\r", "PARTIAL")
	rec.expectReads(t, "A")

	c2 := dial(t, addr)
	c1.SetReadDeadline(time.Now().Add(wait))
	if n, err := c1.Read(make([]byte, 1)); err == nil {
		t.Fatalf("old connection still open: read %d bytes", n)
	}
	send(t, c2, "B\r")
	rec.expectReads(t, "B") // the partial code died with c1
	rec.noState(t)
	stop()
}

// A listen address in use: down, retried with backoff, up once it is free.
func TestTCPServerScannerListenRetried(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := busy.Addr().String()
	s, err := Default().NewScanner(scannerCfg{Driver: "tcp-server", Listen: addr, ReconnectMax: 20 * time.Millisecond}.device())
	if err != nil {
		t.Fatal(err)
	}
	listening := make(chan struct{}, 1)
	s.(*tcpServerScanner).listening = func(net.Addr) { listening <- struct{}{} }
	rec := newRecorder()
	stop := start(t, func(ctx context.Context) error { return s.Run(ctx, rec.emit, rec.state) })
	detail := rec.expectState(t, Down)
	if !strings.Contains(detail, "listen") {
		t.Errorf("Down detail %q does not say listen", detail)
	}
	busy.Close()
	select {
	case <-listening:
	case <-time.After(wait):
		t.Fatal("tcp-server never listened again")
	}
	c := dial(t, addr)
	rec.expectState(t, Up)
	send(t, c, "X\n")
	rec.expectReads(t, "X")
	stop()
}
