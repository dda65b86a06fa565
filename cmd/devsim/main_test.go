package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/drivers"
)

// wait bounds every wait for an event; tests never measure time.
const wait = 10 * time.Second

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lines is devsim's stdout, line by line.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	l <- strings.TrimRight(string(p), "\n")
	return len(p), nil
}

// expect returns the first submatch of re in the next line matching it,
// skipping other lines.
func (l lines) expect(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(wait)
	for {
		select {
		case line := <-l:
			t.Log(line)
			if m := rx.FindStringSubmatch(line); m != nil {
				if len(m) > 1 {
					return m[1]
				}
				return m[0]
			}
		case <-deadline:
			t.Fatalf("no output line matching %q within %v", re, wait)
		}
	}
}

// devsim runs devsim with args until the test ends.
func devsim(t *testing.T, args ...string) lines {
	t.Helper()
	out := make(lines, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("devsim %s: %v", strings.Join(args, " "), err)
			}
		case <-time.After(wait):
			t.Errorf("devsim %s did not stop", strings.Join(args, " "))
		}
	})
	return out
}

// gateway runs a driver as the gateway does, until the test ends.
func gateway(t *testing.T, run func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("driver Run: %v", err)
		}
	})
}

func codesFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "codes.txt")
	const codes = "# a parcel, a GS1 bag, an AWB\nRR123456785CN\n\n]C1\\x1d00012345600000000\n784-12345675\n"
	if err := os.WriteFile(f, []byte(codes), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

var wantCodes = []string{"RR123456785CN", "]C1\x1d00012345600000000", "784-12345675"}

// reads runs a scanner from the registry and returns its codes.
func reads(t *testing.T, cfg config.Device) chan drivers.Read {
	t.Helper()
	s, err := drivers.Default().NewScanner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan drivers.Read, 100)
	gateway(t, func(ctx context.Context) error {
		return s.Run(ctx, func(r drivers.Read) { ch <- r }, func(drivers.State, string) {})
	})
	return ch
}

func expectCodes(t *testing.T, ch chan drivers.Read, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case r := <-ch:
			if string(r.Line) != w {
				t.Fatalf("read %q, want %q", r.Line, w)
			}
		case <-time.After(wait):
			t.Fatalf("no read within %v, want %q", wait, w)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestScannerPty(t *testing.T) {
	for _, framing := range []string{"lines", "stx-etx"} {
		t.Run(framing, func(t *testing.T) {
			link := filepath.Join(t.TempDir(), "usb-scanner")
			out := devsim(t, "scanner", "--pty", "--link", link, "--file", codesFile(t), "--pace", "0s", "--framing", framing)
			if got := out.expect(t, `port: (\S+)\}`); got != link {
				t.Fatalf("config names %q, want the link %q", got, link)
			}
			expectCodes(t, reads(t, config.Device{Driver: "serial", Section: &drivers.SerialScannerConfig{Port: link, ScanConfig: drivers.ScanConfig{Framing: framing}}}), wantCodes...)
		})
	}
}

func TestScannerListen(t *testing.T) {
	out := devsim(t, "scanner", "--listen", "127.0.0.1:0", "--file", codesFile(t), "--pace", "0s")
	addr := out.expect(t, `address: (\S+)\}`)
	expectCodes(t, reads(t, config.Device{Driver: "tcp-client", Section: &drivers.TCPClientConfig{Address: addr}}), wantCodes...)
	out.expect(t, "no more codes")
}

func TestScannerDialTyped(t *testing.T) {
	old := stdin
	stdin = strings.NewReader("RR123456785CN\n\\xZZ\n784-12345675\n")
	t.Cleanup(func() { stdin = old })
	addr := freeAddr(t)
	ch := reads(t, config.Device{Driver: "tcp-server", Section: &drivers.TCPServerConfig{Listen: addr, ScanConfig: drivers.ScanConfig{Framing: "stx-etx"}}})
	out := devsim(t, "scanner", "--dial", addr, "--framing", "stx-etx")
	expectCodes(t, ch, "RR123456785CN", "784-12345675")
	out.expect(t, `not sent: .*\\xZZ`)
}

func TestGate(t *testing.T) {
	link := filepath.Join(t.TempDir(), "relay")
	out := devsim(t, "gate", "--pty", "--link", link, "--ack", `OK\r\n`, "--ack-count", "1")
	out.expect(t, "serial port")
	g, err := drivers.Default().NewGate(config.Device{Driver: "serial", Section: &drivers.SerialGateConfig{Port: link, Ack: "OK\r\n", AckTimeout: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	up := make(chan drivers.State, 10)
	gateway(t, func(ctx context.Context) error {
		return g.Run(ctx, func(s drivers.State, _ string) { up <- s })
	})
	if s := <-up; s != drivers.Up {
		t.Fatalf("gate %s", s)
	}
	if err := g.Signal(context.Background(), true); err != nil {
		t.Fatalf("PASS: %v", err)
	}
	out.expect(t, "gate: PASS")
	out.expect(t, `answered "OK\\r\\n"`)
	if err := g.Signal(context.Background(), false); !errors.Is(err, drivers.ErrAckTimeout) {
		t.Fatalf("STOP to a silent gate: %v, want ErrAckTimeout", err)
	}
	out.expect(t, "gate: STOP")
	out.expect(t, "not answering")
}

func TestModbus(t *testing.T) {
	out := devsim(t, "modbus", "--listen", "127.0.0.1:0", "--open-coil", "3", "--alarm-coil", "4",
		"--closed-input", "2", "--open-for", "0s", "--watchdog", "300ms")
	addr := out.expect(t, `address: ([0-9.:]+),`)
	one, three, four, two, hundred := 1, 3, 4, 2, 100
	g, err := drivers.Default().NewGate(config.Device{Driver: "modbus", Section: &drivers.ModbusGateConfig{Address: addr, Unit: &one, OpenCoil: &three, AlarmCoil: &four,
		ClosedInput: &two, HeartbeatRegister: &hundred, PulseMS: 50, HeartbeatInterval: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	states := make(chan drivers.State, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, func(s drivers.State, _ string) { states <- s }) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	defer stop()
	if s := <-states; s != drivers.Up {
		t.Fatalf("gate %s", s)
	}
	out.expect(t, "register 100 is being written")
	if err := g.Signal(context.Background(), true); err != nil {
		t.Fatalf("PASS: %v", err)
	}
	out.expect(t, `coil 3 \(open\) ON`)
	out.expect(t, "gate opens")
	out.expect(t, `coil 3 \(open\) off`)
	out.expect(t, "gate closed")
	if err := g.Signal(context.Background(), false); err != nil {
		t.Fatalf("STOP: %v", err)
	}
	out.expect(t, `coil 4 \(alarm\) ON`)

	// The gateway dies (its heartbeat stops): the module's watchdog drops
	// its outputs.
	stop()
	out.expect(t, "watchdog: no request")
}

// A gate that jams open is reported left open by the driver.
func TestModbusStuckOpen(t *testing.T) {
	out := devsim(t, "modbus", "--listen", "127.0.0.1:0", "--closed-input", "0", "--stuck-open", "--open-for", "0s")
	addr := out.expect(t, `address: ([0-9.:]+),`)
	zero, one := 0, 1
	g, err := drivers.Default().NewGate(config.Device{Driver: "modbus", Section: &drivers.ModbusGateConfig{Address: addr, Unit: &one, OpenCoil: &zero, AlarmCoil: &one,
		ClosedInput: &zero, PulseMS: 10, CloseTimeout: 10 * time.Millisecond, HeartbeatInterval: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	states := make(chan string, 10)
	gateway(t, func(ctx context.Context) error {
		return g.Run(ctx, func(s drivers.State, d string) { states <- string(s) + ": " + d })
	})
	if s := <-states; !strings.HasPrefix(s, "up") {
		t.Fatalf("gate %s", s)
	}
	if err := g.Signal(context.Background(), true); err != nil {
		t.Fatalf("PASS: %v", err)
	}
	select {
	case s := <-states:
		if !strings.Contains(s, "left open") {
			t.Fatalf("state %s, want a fault: left open", s)
		}
	case <-time.After(wait):
		t.Fatal("a gate jammed open was not reported")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"printer"},
		{"scanner"},
		{"scanner", "--pty", "--listen", ":1"},
		{"scanner", "--pty", "--framing", "etx"},
		{"gate"},
		{"gate", "--pty", "--pass", "X", "--stop", "X"},
		{"gate", "--pty", "--ack", `\q`},
		{"modbus", "--bogus"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("devsim %q: %v, want a usage error", args, err)
		}
	}
	for _, args := range [][]string{{"-h"}, {"scanner", "-h"}, {"gate", "--help"}, {"modbus", "-h"}} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err != nil {
			t.Errorf("devsim %q: %v", args, err)
		}
	}
}
