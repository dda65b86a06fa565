package drivers

import (
	"bytes"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// device is a scanner the test plays: it writes what the scanner sends and
// can be unplugged.
type device interface {
	send(t *testing.T, p []byte)
	unplug()
}

type ptyDevice struct {
	p    *testPty
	path string
}

func (d ptyDevice) send(t *testing.T, p []byte) {
	t.Helper()
	if _, err := d.p.Master.Write(p); err != nil {
		t.Fatalf("write to pty: %v", err)
	}
}

// unplug removes the udev link and hangs up the device, as pulling a USB
// adapter does.
func (d ptyDevice) unplug() {
	os.Remove(d.path)
	d.p.Close()
}

type connDevice struct{ c net.Conn }

func (d connDevice) send(t *testing.T, p []byte) {
	t.Helper()
	d.c.SetWriteDeadline(time.Now().Add(wait))
	if _, err := d.c.Write(p); err != nil {
		t.Fatalf("write to the connection: %v", err)
	}
}

func (d connDevice) unplug() { d.c.Close() }

// scannerRig runs one scanner driver against devices the test plugs in.
type scannerRig struct {
	driver string
	// start runs the scanner with cfg (its address filled in here) and
	// returns its recorder, with any initial Down already taken, and plug,
	// which connects a new device and waits for the driver to report Up.
	start func(t *testing.T, cfg scannerCfg) (*recorder, func() device)
}

var scannerRigs = []scannerRig{
	{"serial", func(t *testing.T, cfg scannerCfg) (*recorder, func() device) {
		path := tempPort(t)
		cfg.Driver, cfg.Port = "serial", path
		rec, _ := runScanner(t, cfg)
		rec.expectState(t, Down) // no device yet
		return rec, func() device {
			p := newPty(t)
			link(t, p.Path, path)
			rec.expectState(t, Up)
			return ptyDevice{p, path}
		}
	}},
	{"tcp-client", func(t *testing.T, cfg scannerCfg) (*recorder, func() device) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		cfg.Driver, cfg.Address = "tcp-client", ln.Addr().String()
		rec, _ := runScanner(t, cfg)
		return rec, func() device {
			c := accept(t, ln)
			rec.expectState(t, Up)
			return connDevice{c}
		}
	}},
	{"tcp-server", func(t *testing.T, cfg scannerCfg) (*recorder, func() device) {
		rec, addr, _ := runServerScanner(t, cfg)
		rec.expectState(t, Down) // listening, no reader yet
		return rec, func() device {
			c := dial(t, addr)
			rec.expectState(t, Up)
			return connDevice{c}
		}
	}},
}

// forEachScanner runs f for every scanner driver and both framings.
func forEachScanner(t *testing.T, f func(t *testing.T, framing string, rig scannerRig)) {
	for _, rig := range scannerRigs {
		for _, framing := range []string{"lines", "stx-etx"} {
			t.Run(rig.driver+"/"+framing, func(t *testing.T) { f(t, framing, rig) })
		}
	}
}

// frame frames a code as the framing expects it.
func frame(framing, code string) []byte {
	if framing == "stx-etx" {
		return []byte("\x02" + code + "\x03\r\n")
	}
	return []byte(code + "\r\n")
}

// Codes come out as sent, cut anywhere, AIM prefixes and GS1 separators
// untouched (the classifier reads them).
func TestScannerHappyPath(t *testing.T) {
	forEachScanner(t, func(t *testing.T, framing string, rig scannerRig) {
		rec, plug := rig.start(t, scannerCfg{Framing: framing})
		d := plug()
		codes := []string{"RR123456785CN", "]C0784-12345675", "]C1\x1d00012345600000000\x1d3712", "]d2AKE12345MU"}
		var stream []byte
		for _, c := range codes {
			stream = append(stream, frame(framing, c)...)
		}
		for i := 0; i < len(stream); i += 5 {
			d.send(t, stream[i:min(i+5, len(stream))])
		}
		rec.expectReads(t, codes...)
		rec.noState(t)
	})
}

// Random bytes make no more than junk codes (each at most 513 bytes, as the
// classifier expects), and the next good code is read.
func TestScannerNoiseRandom(t *testing.T) {
	forEachScanner(t, func(t *testing.T, framing string, rig scannerRig) {
		rec, plug := rig.start(t, scannerCfg{Framing: framing})
		d := plug()
		junk := make([]byte, 8<<10)
		r := rand.New(rand.NewPCG(6, 6))
		for i := range junk {
			junk[i] = byte(r.Uint32())
		}
		d.send(t, junk)
		d.send(t, []byte("\x03\r\n"))
		d.send(t, frame(framing, "RR123456785CN"))
		for {
			select {
			case rd := <-rec.reads:
				if len(rd.Line) == 0 || len(rd.Line) > MaxLine+1 || rd.Overlong != (len(rd.Line) == MaxLine+1) {
					t.Fatalf("read of %d bytes, overlong %v", len(rd.Line), rd.Overlong)
				}
				if string(rd.Line) == "RR123456785CN" {
					rec.noState(t)
					return
				}
			case <-time.After(wait):
				t.Fatal("the good code after the noise was not read")
			}
		}
	})
}

// A 64 KiB code with no terminator is one overlong read, at once; the code
// after its terminator is read normally.
func TestScannerNoiseLongLine(t *testing.T) {
	forEachScanner(t, func(t *testing.T, framing string, rig scannerRig) {
		rec, plug := rig.start(t, scannerCfg{Framing: framing})
		d := plug()
		big := bytes.Repeat([]byte("A"), 64<<10)
		if framing == "stx-etx" {
			d.send(t, []byte{0x02})
		}
		d.send(t, big)
		rec.expectReads(t, "!"+strings.Repeat("A", MaxLine+1))
		d.send(t, []byte("\x03\r\n"))
		d.send(t, frame(framing, "OK"))
		rec.expectReads(t, "OK")
		rec.noState(t)
	})
}

// Half a code, then silence, then the device goes away: the half is never
// read, and after a replug the next code is read whole, with nothing of the
// half before it.
func TestScannerHalfFrameThenUnplug(t *testing.T) {
	forEachScanner(t, func(t *testing.T, framing string, rig scannerRig) {
		rec, plug := rig.start(t, scannerCfg{Framing: framing, ReconnectMax: 20 * time.Millisecond})
		d := plug()
		half := frame(framing, "RR123456785CN")
		d.send(t, half[:6])
		d.unplug()
		rec.expectState(t, Down)
		rec.noReads(t)
		d = plug()
		d.send(t, frame(framing, "AKE12345MU"))
		rec.expectReads(t, "AKE12345MU")
		rec.noReads(t)
	})
}

// The debounce window is per scanner, across reconnections: a reader that
// drops and comes back with the same code within it yields one decision.
func TestScannerDebounceAcrossReplug(t *testing.T) {
	for _, rig := range scannerRigs {
		t.Run(rig.driver, func(t *testing.T) {
			rec, plug := rig.start(t, scannerCfg{Debounce: 1 << 62, ReconnectMax: 20 * time.Millisecond})
			d := plug()
			d.send(t, []byte("A\r\n"))
			rec.expectReads(t, "A")
			d.unplug()
			rec.expectState(t, Down)
			d = plug()
			d.send(t, []byte("A\r\nB\r\n"))
			rec.expectReads(t, "B")
		})
	}
}
