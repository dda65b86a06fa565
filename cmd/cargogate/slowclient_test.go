package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// slowClientHold is how long the slow client below holds its download
// unread at most: CARGOGATE_SLOW_CLIENT_HOLD (e.g. 1m), default 30s. The
// gateway must apply every order and decide every scan meanwhile.
func slowClientHold() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("CARGOGATE_SLOW_CLIENT_HOLD")); err == nil && d > 0 {
		return d
	}
	return 30 * time.Second
}

// TestSlowClientDoesNotStallTheGateway asks for a hot backup of the order
// store and never reads it (a receive buffer of a few KiB, never
// drained), then has central send orders until orders.db has more than
// doubled, so that bbolt must remap it, and scans throughout. Every order
// is applied and every scan decided while the client still holds its
// download: no transaction waits on the client.
func TestSlowClientDoesNotStallTheGateway(t *testing.T) {
	hold := slowClientHold()
	// The order store maps 1 GiB up front in production: map 1 MiB, so
	// that the test sees remaps at a few MiB.
	t.Setenv("CARGOGATE_TEST_STORE_MMAP", fmt.Sprint(1<<20))
	// The server would cut the client after stream_stall; make that
	// longer than the test, so the client holds for as long as it likes.
	s := newSiteHTTP(t, "gate", "", "  stream_stall: 1h")
	now := time.Now().UTC()
	note := strings.Repeat("n", 250)
	n := 0
	batch := func(count int) uint64 {
		orders := make([]customs.Order, 0, count)
		for range count {
			n++
			orders = append(orders, customs.Order{Action: customs.Release, Subject: sub(customs.Parcel, s10(n)),
				ExpiresAt: now.Add(24 * time.Hour), Office: "2244", Ref: fmt.Sprintf("22442026E%09d", n), Note: note})
		}
		return s.issue(orders...)
	}
	ordersDB := filepath.Join(s.dir, "gw", ordersFile)
	size := func() int64 {
		fi, err := os.Stat(ordersDB)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// Fill the store to a few MiB: far more than the socket buffers hold.
	for size() < 3<<20 {
		s.waitApplied(batch(2000), time.Minute)
	}
	size0 := size()
	before := time.Now()
	if f := s.scan(s10(1)); f != "PASS" {
		t.Fatalf("scan before: %s", f)
	}
	scanBefore := time.Since(before)

	// The slow client.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}
	conn, err := d.Dial("tcp", s.gwHTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/backup?file=orders.db HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", s.gwHTTP, testOpToken)
	held := time.Now()
	time.Sleep(500 * time.Millisecond) // the backup has begun and blocked on the client

	// Orders until the file has more than doubled (a remap: bbolt maps
	// the next power of two above the size), a scan after each batch.
	deadline := held.Add(hold)
	batches := 0
	var scanDuring time.Duration
	for size() <= 2*size0 {
		if time.Now().After(deadline) {
			t.Fatalf("after %s with the client not reading: orders.db %d bytes (from %d), %d batches applied", hold, size(), size0, batches)
		}
		last := batch(2000)
		s.waitApplied(last, time.Until(deadline))
		batches++
		start := time.Now()
		if f := s.scan(s10(n)); f != "PASS" {
			t.Fatalf("scan of a parcel released while the client holds its download: %s", f)
		}
		scanDuring = max(scanDuring, time.Since(start))
	}
	t.Logf("orders.db %d → %d bytes in %d batches of 2000 orders while a backup client read nothing for %s; "+
		"scan to gate frame %s before, at most %s during", size0, size(), batches, time.Since(held).Round(time.Millisecond),
		scanBefore.Round(time.Microsecond), scanDuring.Round(time.Microsecond))
	// The client is still connected: it got the headers and part of the
	// file, no more.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		t.Fatalf("the slow client's response: %q %v", status, err)
	}
}
