package main

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdNotify starts the gateway as systemd starts a Type=notify
// unit with WatchdogSec=6s ($NOTIFY_SOCKET, $WATCHDOG_USEC): it sends
// READY=1 once it answers, then WATCHDOG=1 (its link and station loops
// turning), and STOPPING=1 at SIGTERM; /metrics has cargogate_build_info.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "6000000")
	s := newSite(t)
	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a bound on a hang
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	if got := next(); got != "READY=1\nSTATUS=running" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if got := next(); got != "WATCHDOG=1" {
		t.Fatalf("second notification %q, want WATCHDOG=1", got)
	}
	r, err := authGet("http://" + s.gwHTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(body), "cargogate_build_info{") {
		t.Errorf("no cargogate_build_info in /metrics")
	}
	s.gw.Stop(20 * time.Second)
	for {
		got := next()
		if got == "STOPPING=1" {
			break
		}
		if got != "WATCHDOG=1" {
			t.Fatalf("notification %q while stopping", got)
		}
	}
}
