package drivers

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/drivers/lines"
)

// Driver hid reads a USB scanner that is a keyboard ("keyboard wedge")
// through Linux evdev, /dev/input/by-id/usb-…-event-kbd: the kernel's
// input_event records, key by key, turned into characters with a keymap,
// Shift, Caps Lock and Ctrl (Ctrl+] is GS, the GS1 separator) followed,
// Enter ending the code. The device is grabbed (EVIOCGRAB) so that its
// keystrokes reach no console or X session. Like the serial driver it
// reopens the device by path with backoff, so a scanner unplugged and
// plugged in again (udev re-creating the by-id link) is followed, and it
// reports up and down.
//
// No Go evdev module in the proxy is both maintained and small enough to
// take on for this (they wrap the whole of evdev, uinput included); the
// 24-byte record is decoded here.

// HIDConfig is the section of scanner driver hid.
type HIDConfig struct {
	// Device is the evdev device, best a stable path such as
	// /dev/input/by-id/usb-Honeywell_Imaging___Mobility_1900-event-kbd.
	// Required.
	Device string `yaml:"device"`
	// Keymap is the keyboard layout the scanner is set to type: us
	// (default) or de. Set the scanner to US where it can be.
	Keymap string `yaml:"keymap"`
	// Keys override the keymap: a key code (linux/input-event-codes.h) to
	// the character it types and, optionally, the one it types with
	// Shift, e.g. {"12": "-_"}.
	Keys map[int]string `yaml:"keys"`
	// Grab takes the device for the gateway alone (EVIOCGRAB), so its keys
	// reach no console. Default true; another program holding the grab
	// keeps the device down.
	Grab *bool `yaml:"grab"`
	// Debounce drops the same code read again within this window. Default
	// 0: off.
	Debounce time.Duration `yaml:"debounce"`
	// ReconnectMax caps the backoff between attempts to reopen the device.
	// Default 10s.
	ReconnectMax time.Duration `yaml:"reconnect_max"`
}

// Keymaps are the built-in keyboard layouts of driver hid.
var Keymaps = []string{"us", "de"}

// SetDefaults implements config.Section.
func (c *HIDConfig) SetDefaults() {
	if c.Keymap == "" {
		c.Keymap = "us"
	}
	if c.Grab == nil {
		t := true
		c.Grab = &t
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
}

// Check implements config.Section.
func (c *HIDConfig) Check(p *config.Problems) {
	if c.Device == "" {
		p.Add("device", "required by driver hid (e.g. /dev/input/by-id/usb-…-event-kbd)")
	}
	if !slices.Contains(Keymaps, c.Keymap) {
		p.Add("keymap", "must be one of %s (got %q)", strings.Join(Keymaps, ", "), c.Keymap)
	}
	codes := make([]int, 0, len(c.Keys))
	for k := range c.Keys {
		codes = append(codes, k)
	}
	sort.Ints(codes)
	for _, k := range codes {
		if n := len([]rune(c.Keys[k])); k < 1 || k > 255 || n < 1 || n > 2 {
			p.Add("keys."+strconv.Itoa(k), "a key code 1..255 and one or two characters (plain, shifted) (got %q)", c.Keys[k])
		}
	}
	if c.Debounce < 0 {
		p.Add("debounce", "must not be negative (got %v)", c.Debounce)
	}
	checkReconnectMax(p, c.ReconnectMax)
}

// Key codes (linux/input-event-codes.h) the decoder treats apart.
const (
	evSyn       = 0x00
	synDropped  = 3
	evKey       = 0x01
	keyEnter    = 28
	keyKPEnter  = 96
	keyLShift   = 42
	keyRShift   = 54
	keyLCtrl    = 29
	keyRCtrl    = 97
	keyCapsLock = 58
	keyRAlt     = 100
	// eviocgrab is EVIOCGRAB, _IOW('E', 0x90, int).
	eviocgrab = 0x40044590
)

// keymap maps a key code to what it types: plain and with Shift.
type keymap map[uint16][2]rune

var usKeys = func() keymap {
	m := keymap{}
	row := func(first uint16, plain, shifted string) {
		p, s := []rune(plain), []rune(shifted)
		for i := range p {
			m[first+uint16(i)] = [2]rune{p[i], s[i]}
		}
	}
	row(2, "1234567890-=", "!@#$%^&*()_+")
	row(16, "qwertyuiop[]", "QWERTYUIOP{}")
	row(30, "asdfghjkl;'`", "ASDFGHJKL:\"~")
	row(43, "\\zxcvbnm,./", "|ZXCVBNM<>?")
	m[57] = [2]rune{' ', ' '}
	// The keypad, Num Lock on (scanners that type Alt+numpad codes are
	// not supported: set them to plain keys).
	row(71, "789-456+1230.", "789-456+1230.")
	m[55] = [2]rune{'*', '*'}
	m[98] = [2]rune{'/', '/'}
	m[15] = [2]rune{'\t', '\t'}
	return m
}()

// deKeys is the German QWERTZ layout, as a scanner set to it types.
var deKeys = func() keymap {
	m := keymap{}
	for k, v := range usKeys {
		m[k] = v
	}
	set := func(code uint16, plain, shifted rune) { m[code] = [2]rune{plain, shifted} }
	set(21, 'z', 'Z')
	set(44, 'y', 'Y')
	set(3, '2', '"')
	set(4, '3', '§')
	set(7, '6', '&')
	set(8, '7', '/')
	set(9, '8', '(')
	set(10, '9', ')')
	set(11, '0', '=')
	set(12, 'ß', '?')
	set(13, '´', '`')
	set(26, 'ü', 'Ü')
	set(27, '+', '*')
	set(39, 'ö', 'Ö')
	set(40, 'ä', 'Ä')
	set(41, '^', '°')
	set(43, '#', '\'')
	set(51, ',', ';')
	set(52, '.', ':')
	set(53, '-', '_')
	set(86, '<', '>')
	return m
}()

// keyDecoder turns key events into the bytes they type, Enter as CR.
type keyDecoder struct {
	keys               keymap
	lshift, rshift     bool
	lctrl, rctrl, caps bool
	altgr              bool
	out                []byte
}

func newKeyDecoder(name string, over map[int]string) *keyDecoder {
	base := usKeys
	if name == "de" {
		base = deKeys
	}
	m := keymap{}
	for k, v := range base {
		m[k] = v
	}
	for k, s := range over {
		r := []rune(s)
		if len(r) == 1 {
			r = append(r, r[0])
		}
		m[uint16(k)] = [2]rune{r[0], r[1]}
	}
	return &keyDecoder{keys: m}
}

// key takes one EV_KEY event (value 1 press, 0 release, 2 repeat) and
// returns what it typed, if anything.
func (d *keyDecoder) key(code uint16, value int32) []byte {
	down := value != 0
	switch code {
	case keyLShift:
		d.lshift = down
		return nil
	case keyRShift:
		d.rshift = down
		return nil
	case keyLCtrl:
		d.lctrl = down
		return nil
	case keyRCtrl:
		d.rctrl = down
		return nil
	case keyRAlt:
		d.altgr = down
		return nil
	case keyCapsLock:
		if value == 1 {
			d.caps = !d.caps
		}
		return nil
	}
	if !down {
		return nil
	}
	d.out = d.out[:0]
	switch code {
	case keyEnter, keyKPEnter:
		if value == 2 {
			return nil // Enter held: the code ended once
		}
		return append(d.out, '\r')
	}
	if value == 2 {
		// The kernel's autorepeat of a key held: a scanner never holds
		// one, so its report came late. Typing the character again would
		// make another code: the code is marked unreadable instead.
		return append(d.out, 0x1a)
	}
	v, ok := d.keys[code]
	if !ok || d.altgr {
		// A key the keymap lacks: the code is marked unreadable (a
		// control byte the classifier refuses), never silently shortened.
		return append(d.out, 0x1a)
	}
	shift := d.lshift || d.rshift
	r := v[0]
	if shift {
		r = v[1]
	}
	if d.caps && r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
		r ^= 0x20
	}
	if d.lctrl || d.rctrl {
		// Ctrl+letter and Ctrl+[ \ ] ^ _ are the ASCII control codes:
		// Ctrl+] is GS (0x1D), the GS1 field separator.
		if c := v[0]; c >= 'a' && c <= 'z' || c >= '[' && c <= '_' {
			return append(d.out, byte(c)&0x1f)
		}
		// Any other key with Ctrl has no control code: typing the key
		// itself would make another code.
		return append(d.out, 0x1a)
	}
	return append(d.out, string(r)...)
}

// dropped is the kernel's SYN_DROPPED: its buffer overflowed and key
// events were lost. The code in progress is marked unreadable (what is
// left of it could be another, valid code) and the modifiers, whose
// releases may be among the lost, are taken as released.
func (d *keyDecoder) dropped() []byte {
	d.lshift, d.rshift, d.lctrl, d.rctrl, d.altgr = false, false, false, false, false
	return []byte{0x1a}
}

// eventSize is sizeof(struct input_event): a struct timeval, then type
// u16, code u16, value s32 (24 bytes on 64-bit Linux).
var eventSize = int(unsafe.Sizeof(unix.Timeval{})) + 8

// inputEvent is one decoded record.
type inputEvent struct {
	typ   uint16
	code  uint16
	value int32
}

func decodeEvent(b []byte) inputEvent {
	o := eventSize - 8
	return inputEvent{typ: binary.NativeEndian.Uint16(b[o:]), code: binary.NativeEndian.Uint16(b[o+2:]),
		value: int32(binary.NativeEndian.Uint32(b[o+4:]))}
}

// hidScanner reads a keyboard-wedge scanner (driver hid).
type hidScanner struct {
	cfg HIDConfig
	scanOpts
}

var _ Scanner = (*hidScanner)(nil)

func newHIDScanner(cfg HIDConfig) (Scanner, error) {
	cfg.SetDefaults()
	var p config.Problems
	cfg.Check(&p)
	if err := p.Err(); err != nil {
		return nil, err
	}
	return &hidScanner{cfg: cfg, scanOpts: scanOpts{framing: lines.Lines, debounce: cfg.Debounce,
		reconnectMax: cfg.ReconnectMax, now: time.Now}}, nil
}

// Run opens the device, grabs it and reads codes until it fails, reports
// Down, waits its backoff and opens it again, until ctx is done.
func (s *hidScanner) Run(ctx context.Context, emit func(Read), state StateFunc) error {
	rep := newReporter(state)
	defer rep.flush()
	deb := &debouncer{window: s.debounce}
	bo := s.backoff()
	for ctx.Err() == nil {
		f, err := s.open()
		if err != nil {
			rep.set(Down, err.Error())
			if !bo.Wait(ctx) {
				break
			}
			continue
		}
		rep.set(Up, "opened "+s.cfg.Device)
		opened := s.now()
		err = s.session(ctx, f, s.stream(deb, nil, emit))
		f.Close()
		if ctx.Err() != nil {
			break
		}
		rep.set(Down, err.Error())
		if s.now().Sub(opened) > bo.Cap() {
			bo.Reset()
		}
		if !bo.Wait(ctx) {
			break
		}
	}
	return nil
}

func (s *hidScanner) open() (*os.File, error) {
	f, err := os.OpenFile(s.cfg.Device, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if *s.cfg.Grab {
		rc, err := f.SyscallConn()
		if err == nil {
			cerr := rc.Control(func(fd uintptr) { err = unix.IoctlSetInt(int(fd), eviocgrab, 1) })
			if cerr != nil {
				err = cerr
			}
		}
		if err != nil {
			f.Close()
			if errors.Is(err, unix.EBUSY) {
				return nil, fmt.Errorf("%s: grabbed by another program (EVIOCGRAB: %w)", s.cfg.Device, err)
			}
			return nil, fmt.Errorf("%s: cannot grab it (EVIOCGRAB: %w): not an input device?", s.cfg.Device, err)
		}
	}
	return f, nil
}

// session reads input events until ctx is done or the device fails (an
// unplugged device reads ENODEV; a pipe whose writer closed reads EOF). A
// partial code is lost with the session.
func (s *hidScanner) session(ctx context.Context, f *os.File, cs *codeStream) error {
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	dec := newKeyDecoder(s.cfg.Keymap, s.cfg.Keys)
	buf := make([]byte, eventSize*64)
	have := 0
	for {
		n, err := f.Read(buf[have:])
		have += n
		recs := have / eventSize
		for i := 0; i < recs; i++ {
			ev := decodeEvent(buf[i*eventSize : (i+1)*eventSize])
			if ev.typ == evSyn && ev.code == synDropped {
				cs.feed(dec.dropped(), s.now())
				continue
			}
			if ev.typ != evKey {
				continue
			}
			if b := dec.key(ev.code, ev.value); len(b) > 0 {
				cs.feed(b, s.now())
			}
		}
		have = copy(buf, buf[recs*eventSize:have])
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s: closed", s.cfg.Device)
			}
			return err
		}
	}
}
