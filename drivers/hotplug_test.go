package drivers

import (
	"context"
	"flag"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var long = flag.Bool("long", false, "run 1,000 Modbus module restarts rather than 200")

// TestMain fails the package if any test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cycles is how many unplug/replug cycles a hot-plug test runs: n in CI,
// 1,000 with -long.
func cycles(n int) int {
	if *long {
		return 1000
	}
	return n
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

// noLeaks fails the test unless, once it is over, the goroutines started
// since noLeaks was called are gone and the count of open file descriptors
// is back where it was (checked after the test's own cleanups).
func noLeaks(t *testing.T) {
	t.Helper()
	fds := openFDs(t)
	opts := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		goleak.VerifyNone(t, opts)
		deadline := time.Now().Add(wait)
		for n := openFDs(t); n > fds; n = openFDs(t) {
			if time.Now().After(deadline) { // a socket closed by a peer's goroutine may take a moment
				t.Errorf("open file descriptors: %d, %d before", n, fds)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// A reader that drops its connection and comes back, 1,000 times: one Down
// and one Up each time, every code read, nothing left open.
func TestHotplugTCPClient(t *testing.T) {
	noLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	rec, stop := runScanner(t, scannerCfg{Driver: "tcp-client", Address: ln.Addr().String(), ReconnectMax: time.Millisecond})
	t.Cleanup(stop)
	for i := range 1000 {
		c := accept(t, ln)
		rec.expectState(t, Up)
		send(t, c, "RR123456785CN\r\n")
		rec.expectReads(t, "RR123456785CN")
		c.Close()
		if rec.expectState(t, Down) == "" {
			t.Fatalf("cycle %d: no Down", i)
		}
	}
}

// Readers dialling in and hanging up, 1,000 times.
func TestHotplugTCPServer(t *testing.T) {
	noLeaks(t)
	rec, addr, stop := runServerScanner(t, scannerCfg{})
	t.Cleanup(stop)
	rec.expectState(t, Down)
	for range 1000 {
		c, err := net.DialTimeout("tcp", addr, wait)
		if err != nil {
			t.Fatal(err)
		}
		rec.expectState(t, Up)
		send(t, c, "\x02AKE12345MU\x03")
		rec.expectReads(t, "AKE12345MU")
		c.Close()
		rec.expectState(t, Down)
	}
}

// A USB scanner unplugged and plugged back, 1,000 times, its
// /dev/serial/by-id link re-pointed at a new device each time (ttyUSB0 comes
// back as ttyUSB1).
func TestHotplugSerialScanner(t *testing.T) {
	noLeaks(t)
	path := tempPort(t)
	rec, stop := runScanner(t, scannerCfg{Driver: "serial", Port: path, ReconnectMax: time.Millisecond})
	t.Cleanup(stop)
	rec.expectState(t, Down)
	for range 1000 {
		p := newPty(t)
		link(t, p.Path, path)
		rec.expectState(t, Up)
		p.write(t, "RR123456785CN\r")
		rec.expectReads(t, "RR123456785CN")
		os.Remove(path)
		p.Close()
		rec.expectState(t, Down)
	}
}

// A relay board unplugged and plugged back, 1,000 times; each time up, one
// frame written to the new device.
func TestHotplugSerialGate(t *testing.T) {
	noLeaks(t)
	path := tempPort(t)
	g, rec, stop := runGate(t, gateCfg{Port: path, ReconnectMax: time.Millisecond})
	t.Cleanup(stop)
	rec.expectState(t, Down)
	for range 1000 {
		p := newPty(t)
		link(t, p.Path, path)
		rec.expectState(t, Up)
		if err := g.Signal(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		p.readN(t, len("STOP\r\n"))
		os.Remove(path)
		p.Close()
		rec.expectState(t, Down)
	}
}

// A Modbus I/O module power-cycled: 200 cycles in CI, 1,000 with -long.
func TestHotplugModbusGate(t *testing.T) {
	noLeaks(t)
	m := newIOModule(t)
	cfg := modbusCfg(m)
	cfg.HeartbeatInterval, cfg.ReconnectMax = 2*time.Millisecond, time.Millisecond
	g, rec, stop := runModbusGate(t, cfg)
	t.Cleanup(stop)
	for i := range cycles(200) {
		if i > 0 {
			m.start(t, m.addr)
		}
		connected(t, m, rec)
		if err := g.Signal(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		m.expectWrites(t, coilWrite{openCoil, true})
		m.stop()
		// Down, or at fault if the pulse was still on (its coil's state
		// unknown until the reconnect switches it off).
		select {
		case e := <-rec.states:
			if e.s != Down && e.s != Fault {
				t.Fatalf("state %q (%s), want down or fault", e.s, e.detail)
			}
		case <-time.After(wait):
			t.Fatal("no state reported after the module went")
		}
		for len(m.writes) > 0 { // the pulse may have ended before the module went
			<-m.writes
		}
	}
}
