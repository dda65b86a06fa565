package drivers

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/internal/pollpty"
)

// wait bounds every wait for an event. It is an upper bound, never a
// measurement: tests assert on events, not on wall time.
const wait = 5 * time.Second

// testPty is a real pseudo-terminal: the driver opens Path (the slave, or a
// symlink to it), the test plays the device on Master.
type testPty struct {
	Master *os.File
	Slave  *os.File
	Path   string
}

func newPty(t *testing.T) *testPty {
	t.Helper()
	// Raw mode, and a master whose reads honour deadlines.
	m, s, err := pollpty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	p := &testPty{Master: m, Slave: s, Path: s.Name()}
	t.Cleanup(func() { p.Close() })
	return p
}

// Close hangs up the device: the driver's reads fail with EIO.
func (p *testPty) Close() {
	p.Master.Close()
	p.Slave.Close()
}

func (p *testPty) write(t *testing.T, s string) {
	t.Helper()
	if _, err := p.Master.Write([]byte(s)); err != nil {
		t.Fatalf("write to pty master: %v", err)
	}
}

// readN reads exactly n bytes the driver wrote.
func (p *testPty) readN(t *testing.T, n int) []byte {
	t.Helper()
	if err := p.Master.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	defer p.Master.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	if _, err := readFull(p.Master, b); err != nil {
		t.Fatalf("read %d bytes from pty master: %v (got %q)", n, err, b)
	}
	return b
}

func readFull(f *os.File, b []byte) (int, error) {
	got := 0
	for got < len(b) {
		n, err := f.Read(b[got:])
		got += n
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

// link makes path a symlink to target, replacing what was there.
func link(t *testing.T, target, path string) {
	t.Helper()
	tmp := path + ".new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func tempPort(t *testing.T) string { return filepath.Join(t.TempDir(), "ttyS0") }

type stateEvent struct {
	s      State
	detail string
}

// recorder collects what a driver reports.
type recorder struct {
	states chan stateEvent
	reads  chan Read
}

func newRecorder() *recorder {
	return &recorder{states: make(chan stateEvent, 100), reads: make(chan Read, 1000)}
}

func (r *recorder) state(s State, detail string) { r.states <- stateEvent{s, detail} }
func (r *recorder) emit(rd Read)                 { r.reads <- rd }

// expectState fails unless the next reported state is want.
func (r *recorder) expectState(t *testing.T, want State) string {
	t.Helper()
	select {
	case e := <-r.states:
		if e.s != want {
			t.Fatalf("state %q (%s), want %q", e.s, e.detail, want)
		}
		t.Logf("state %s: %s", e.s, e.detail)
		return e.detail
	case <-time.After(wait):
		t.Fatalf("no state %q reported within %v", want, wait)
	}
	return ""
}

func (r *recorder) noState(t *testing.T) {
	t.Helper()
	select {
	case e := <-r.states:
		t.Fatalf("unexpected state %q (%s)", e.s, e.detail)
	default:
	}
}

// expectReads fails unless the next reads are want ("!" prefix: overlong).
func (r *recorder) expectReads(t *testing.T, want ...string) {
	t.Helper()
	for i, w := range want {
		select {
		case rd := <-r.reads:
			got := string(rd.Line)
			if rd.Overlong {
				got = "!" + got
			}
			if got != w {
				t.Fatalf("read %d: %q, want %q", i, got, w)
			}
			if rd.At.IsZero() {
				t.Fatalf("read %d: no time", i)
			}
		case <-time.After(wait):
			t.Fatalf("read %d: none within %v, want %q", i, wait, w)
		}
	}
}

func (r *recorder) noReads(t *testing.T) {
	t.Helper()
	select {
	case rd := <-r.reads:
		t.Fatalf("unexpected read %q", rd.Line)
	default:
	}
}

// start runs run in a goroutine; the returned stop cancels it and fails the
// test unless run returns nil within wait.
func start(t *testing.T, run func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(wait):
			t.Errorf("Run did not return within %v of cancel", wait)
		}
	}
	t.Cleanup(stop)
	return stop
}

// settles fails unless the goroutine count comes back to at most base.
func settles(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d, want ≤ %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scannerCfg holds the keys of every scanner driver, so that a test can
// set those of its driver; device gives the section of Driver.
type scannerCfg struct {
	Driver, Port, Address, Listen, Framing string
	Baud, MaxReaders                       int
	Debounce, ReconnectMax                 time.Duration
}

func (c scannerCfg) device() config.Device {
	o := ScanConfig{Framing: c.Framing, Debounce: c.Debounce, ReconnectMax: c.ReconnectMax}
	d := config.Device{Driver: c.Driver}
	switch c.Driver {
	case "serial":
		d.Section = &SerialScannerConfig{Port: c.Port, Baud: c.Baud, ScanConfig: o}
	case "tcp-client":
		d.Section = &TCPClientConfig{Address: c.Address, ScanConfig: o}
	case "tcp-server":
		d.Section = &TCPServerConfig{Listen: c.Listen, Address: c.Address, MaxReaders: c.MaxReaders, ScanConfig: o}
	}
	return d
}

// gateCfg holds the keys of every gate driver, like scannerCfg.
type gateCfg struct {
	Driver, Port, Pass, Stop, Ack, Address                    string
	Baud, PulseMS                                             int
	Unit, OpenCoil, AlarmCoil, ClosedInput                    *int
	HeartbeatRegister, HeartbeatCoil                          *int
	AckTimeout, CloseTimeout, HeartbeatInterval, ReconnectMax time.Duration
	Watchdog                                                  *time.Duration
}

func (c gateCfg) device() config.Device {
	d := config.Device{Driver: c.Driver}
	switch c.Driver {
	case "serial":
		d.Section = &SerialGateConfig{Port: c.Port, Baud: c.Baud, Pass: c.Pass, Stop: c.Stop, Ack: c.Ack,
			AckTimeout: c.AckTimeout, ReconnectMax: c.ReconnectMax}
	case "modbus":
		d.Section = &ModbusGateConfig{Address: c.Address, Unit: c.Unit, OpenCoil: c.OpenCoil, AlarmCoil: c.AlarmCoil,
			ClosedInput: c.ClosedInput, PulseMS: c.PulseMS, CloseTimeout: c.CloseTimeout, HeartbeatInterval: c.HeartbeatInterval,
			HeartbeatRegister: c.HeartbeatRegister, HeartbeatCoil: c.HeartbeatCoil, Watchdog: c.Watchdog, ReconnectMax: c.ReconnectMax}
	case config.NoGate:
		d.Section = &NoGateConfig{}
	}
	return d
}
