package drivers

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cargogate/cargogate/config"
)

// Key codes of the tests (linux/input-event-codes.h).
var testCodes = func() map[rune]uint16 {
	m := map[rune]uint16{}
	for code, v := range usKeys {
		if _, dup := m[v[0]]; !dup || code < 71 { // the main block before the keypad
			m[v[0]] = code
		}
	}
	return m
}()

// keys returns the input_event records a US keyboard-wedge scanner sends
// for s: each character pressed and released, Shift around capitals and
// shifted symbols, "\x1d" as Ctrl+], "\n" as Enter. SYN reports between
// keys, as the kernel sends them.
func keys(t *testing.T, s string) []byte {
	t.Helper()
	var b []byte
	ev := func(typ, code uint16, value int32) {
		rec := make([]byte, eventSize)
		o := eventSize - 8
		binary.NativeEndian.PutUint16(rec[o:], typ)
		binary.NativeEndian.PutUint16(rec[o+2:], code)
		binary.NativeEndian.PutUint32(rec[o+4:], uint32(value))
		b = append(b, rec...)
	}
	press := func(code uint16) { ev(evKey, code, 1); ev(0, 0, 0); ev(evKey, code, 0); ev(0, 0, 0) }
	for _, r := range s {
		switch r {
		case '\n':
			press(keyEnter)
			continue
		case 0x1d:
			ev(evKey, keyLCtrl, 1)
			press(27)
			ev(evKey, keyLCtrl, 0)
			continue
		}
		if code, ok := testCodes[r]; ok {
			press(code)
			continue
		}
		shifted := false
		for code, v := range usKeys {
			if v[1] == r && code < 71 {
				ev(evKey, keyLShift, 1)
				press(code)
				ev(evKey, keyLShift, 0)
				shifted = true
				break
			}
		}
		if !shifted {
			t.Fatalf("no US key types %q", r)
		}
	}
	return b
}

func TestKeyDecoder(t *testing.T) {
	typed := func(d *keyDecoder, evs []byte) string {
		var out []byte
		for i := 0; i+eventSize <= len(evs); i += eventSize {
			e := decodeEvent(evs[i : i+eventSize])
			if e.typ == evKey {
				out = append(out, d.key(e.code, e.value)...)
			}
		}
		return string(out)
	}
	if strconv.IntSize == 64 && eventSize != 24 {
		t.Errorf("input_event is %d bytes", eventSize)
	}
	for _, tc := range []struct{ in, want string }{
		{"RR123456785CN\n", "RR123456785CN\r"},
		{"]C1\x1d01095011010209171719050810ABCD1234\n", "]C1\x1d01095011010209171719050810ABCD1234\r"},
		{"a-b_c:D|~{}\"<>?!@#$%^&*()+=\n", "a-b_c:D|~{}\"<>?!@#$%^&*()+=\r"},
	} {
		if got := typed(newKeyDecoder("us", nil), keys(t, tc.in)); got != tc.want {
			t.Errorf("typed %q: got %q", tc.in, got)
		}
	}
	d := newKeyDecoder("us", nil)
	// Caps Lock flips letters only; Shift with it types lower case.
	if got := string(d.key(keyCapsLock, 1)) + string(d.key(keyCapsLock, 0)) + string(d.key(30, 1)) + string(d.key(2, 1)); got != "A1" {
		t.Errorf("caps lock: %q", got)
	}
	d.key(keyLShift, 1)
	if got := string(d.key(30, 1)); got != "a" {
		t.Errorf("caps lock and shift: %q", got)
	}
	// An autorepeat (value 2) and a key the keymap lacks (F1) make the
	// code unreadable, not another code.
	if got := string(newKeyDecoder("us", nil).key(30, 2)); got != "\x1a" {
		t.Errorf("repeat: %q", got)
	}
	if got := string(newKeyDecoder("us", nil).key(59, 1)); got != "\x1a" {
		t.Errorf("F1: %q", got)
	}
	// The keypad, with Num Lock, and the German layout: Y and Z swapped.
	if got := string(newKeyDecoder("us", nil).key(79, 1)) + string(newKeyDecoder("us", nil).key(keyKPEnter, 1)); got != "1\r" {
		t.Errorf("keypad: %q", got)
	}
	de := newKeyDecoder("de", nil)
	if got := string(de.key(21, 1)) + string(de.key(44, 1)) + string(de.key(53, 1)); got != "zy-" {
		t.Errorf("de: %q", got)
	}
	over := newKeyDecoder("us", map[int]string{12: "+*"})
	over.key(keyRShift, 1)
	if got := string(over.key(12, 1)); got != "*" {
		t.Errorf("keys override with shift: %q", got)
	}
}

func TestHIDConfig(t *testing.T) {
	c := &HIDConfig{Keymap: "fr", Keys: map[int]string{300: "x", 12: ""}, Debounce: -1}
	c.SetDefaults()
	var p config.Problems
	c.Check(&p)
	got := p.Err().Error()
	for _, w := range []string{"device: required by driver hid", `keymap: must be one of us, de (got "fr")`, "keys.12:", "keys.300:", "debounce:"} {
		if !strings.Contains(got, w) {
			t.Errorf("problems %q lack %q", got, w)
		}
	}
	if !*c.Grab {
		t.Error("grab is not on by default")
	}
}

// fifoDevice stands for an evdev device: a FIFO at path, its writer the
// "kernel". Writing records into it is what the kernel does; a FIFO has
// no EVIOCGRAB, so the scanner runs with grab: false.
type fifoDevice struct {
	path string
	w    *os.File
}

func newFIFODevice(t *testing.T, path string) *fifoDevice {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// O_RDWR: opening does not wait for a reader.
	w, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return &fifoDevice{path: path, w: w}
}

func (f *fifoDevice) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := f.w.Write(b); err != nil {
		t.Fatal(err)
	}
}

// unplug removes the device as udev does, closing the writer: the reader
// sees the end of it.
func (f *fifoDevice) unplug(t *testing.T) {
	t.Helper()
	f.w.Close()
	os.Remove(f.path)
}

func runHID(t *testing.T, cfg HIDConfig) (*recorder, func()) {
	t.Helper()
	s, err := Default().NewScanner(config.Device{Driver: "hid", Section: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := start(t, func(ctx context.Context) error { return s.Run(ctx, rec.emit, rec.state) })
	return rec, stop
}

// The decoder through a pipe, as the kernel hands the records over: codes
// split anywhere (a record cut in two between writes), Shift and Ctrl+],
// and the device unplugged and plugged in again.
func TestHIDScannerFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usb-Scanner-event-kbd")
	dev := newFIFODevice(t, path)
	off := false
	rec, stop := runHID(t, HIDConfig{Device: path, Grab: &off, ReconnectMax: 200e6})
	if d := rec.expectState(t, Up); !strings.Contains(d, path) {
		t.Errorf("up detail %q", d)
	}
	b := keys(t, "RR123456785CN\n]C1\x1d0109501101020917\nlp12345678901234\n")
	dev.write(t, b[:eventSize*3+5]) // a record split across two reads
	dev.write(t, b[eventSize*3+5:])
	rec.expectReads(t, "RR123456785CN", "]C1\x1d0109501101020917", "lp12345678901234")

	// Unplugged: down; the path gone, still down (no report per attempt);
	// plugged in again: up, and reading.
	dev.unplug(t)
	rec.expectState(t, Down)
	dev = newFIFODevice(t, path)
	rec.expectState(t, Up)
	dev.write(t, keys(t, "AFTER1\n"))
	rec.expectReads(t, "AFTER1")
	stop()
	rec.noReads(t)
	rec.noState(t)
}

// A device that cannot be grabbed (here a FIFO, which has no EVIOCGRAB)
// is down, with the reason.
func TestHIDScannerGrabRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-an-input-device")
	newFIFODevice(t, path)
	rec, stop := runHID(t, HIDConfig{Device: path, ReconnectMax: 200e6})
	defer stop()
	if d := rec.expectState(t, Down); !strings.Contains(d, "cannot grab it") {
		t.Errorf("down detail %q", d)
	}
}

// A virtual keyboard (/dev/uinput) would let the test go through the
// kernel's evdev itself, grab included; this machine has no /dev/uinput.
func TestHIDScannerUinput(t *testing.T) {
	if _, err := os.Stat("/dev/uinput"); err != nil {
		t.Skipf("/dev/uinput not available (%v): the decoder is tested through a FIFO only (TestHIDScannerFIFO)", err)
	}
	t.Skip("/dev/uinput exists, but the virtual-device test is not written: the decoder is tested through a FIFO only")
}
