package sdnotify

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listen is a fake systemd: a unixgram socket named by $NOTIFY_SOCKET.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	// A bound on a hang, not an assertion on time.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

// READY=1 reaches the socket named by $NOTIFY_SOCKET as one datagram;
// without the variable Notify does nothing and no error.
func TestNotify(t *testing.T) {
	c := listen(t)
	if err := Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify("READY=1"); err != nil {
		t.Fatalf("no socket: %v", err)
	}
}

// The watchdog interval comes from $WATCHDOG_USEC, for this process only.
func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	if d := WatchdogInterval(); d != 30*time.Second {
		t.Fatalf("interval %v", d)
	}
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	if d := WatchdogInterval(); d != 0 {
		t.Fatalf("another pid's watchdog: %v", d)
	}
	t.Setenv("WATCHDOG_PID", "")
	t.Setenv("WATCHDOG_USEC", "")
	if d := WatchdogInterval(); d != 0 {
		t.Fatalf("no watchdog: %v", d)
	}
}

// The watchdog is fed at a tick only while no loop is stale; while one
// is, systemd gets a STATUS line naming it and no WATCHDOG=1; fed again
// once every loop turns.
func TestWatchdogFedOnlyWhileAlive(t *testing.T) {
	c := listen(t)
	ticks := make(chan time.Time)
	var stale []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	staleCh := make(chan []string)
	go func() {
		done <- Watchdog(ctx, ticks, func() []string { return <-staleCh }, nil)
	}()
	step := func(s []string) string {
		ticks <- time.Time{}
		staleCh <- s
		return recv(t, c)
	}
	if got := step(stale); got != "WATCHDOG=1" {
		t.Fatalf("all alive: %q", got)
	}
	if got := step([]string{"link", "station g1"}); got != "STATUS=watchdog withheld: not turning: link, station g1" {
		t.Fatalf("stale loops: %q", got)
	}
	if got := step([]string{"link"}); got != "STATUS=watchdog withheld: not turning: link" {
		t.Fatalf("stale link: %q", got)
	}
	if got := step(nil); got != "WATCHDOG=1\nSTATUS=running" {
		t.Fatalf("alive again: %q", got)
	}
	if got := step(nil); got != "WATCHDOG=1" {
		t.Fatalf("alive: %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
