package drivers

import (
	"encoding/binary"
	"path/filepath"
	"testing"
)

// rawEvent is one input_event record.
func rawEvent(typ, code uint16, value int32) []byte {
	rec := make([]byte, eventSize)
	o := eventSize - 8
	binary.NativeEndian.PutUint16(rec[o:], typ)
	binary.NativeEndian.PutUint16(rec[o+2:], code)
	binary.NativeEndian.PutUint32(rec[o+4:], uint32(value))
	return rec
}

// The kernel's buffer overflowed (SYN_DROPPED): key events of the code in
// progress are lost, so what is left would be another code, maybe a valid
// one ("RR12" + "3456785CN" with "0" lost between). The code read across
// the drop must be unreadable, never a code the scanner did not scan.
func TestReview18_HIDSynDroppedTaintsTheCode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usb-Scanner-event-kbd")
	dev := newFIFODevice(t, path)
	off := false
	rec, stop := runHID(t, HIDConfig{Device: path, Grab: &off, ReconnectMax: 200e6})
	defer stop()
	rec.expectState(t, Up)
	var b []byte
	b = append(b, keys(t, "RR12")...)
	b = append(b, rawEvent(0, 3, 0)...) // EV_SYN / SYN_DROPPED
	b = append(b, keys(t, "3456785CN\nAFTER1\n")...)
	dev.write(t, b)
	rec.expectReads(t, "RR12\x1a3456785CN", "AFTER1")
}

// A key held (the kernel's autorepeat, value 2: a USB report late by
// 250 ms) must not type the character again: "RR1123..." is another code.
// It makes the code unreadable.
func TestReview18_HIDAutorepeatTaintsTheCode(t *testing.T) {
	d := newKeyDecoder("us", nil)
	var out []byte
	out = append(out, d.key(19, 1)...) // r
	out = append(out, d.key(19, 2)...) // r again: autorepeat
	out = append(out, d.key(19, 0)...)
	if got := string(out); got != "r\x1a" {
		t.Errorf("autorepeat typed %q, want %q (unreadable)", got, "r\x1a")
	}
	// Modifiers repeat too while held: nothing typed, still held.
	d = newKeyDecoder("us", nil)
	d.key(keyLShift, 1)
	d.key(keyLShift, 2)
	if got := string(d.key(30, 1)); got != "A" {
		t.Errorf("shift held through its autorepeat: %q", got)
	}
}

// A code half typed when the scanner is unplugged is dropped with the
// session, never glued to the first code after it is plugged in again.
func TestReview18_HIDPartialCodeAtUnplugDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usb-Scanner-event-kbd")
	dev := newFIFODevice(t, path)
	off := false
	rec, stop := runHID(t, HIDConfig{Device: path, Grab: &off, ReconnectMax: 200e6})
	defer stop()
	rec.expectState(t, Up)
	dev.write(t, keys(t, "RR1234"))
	dev.unplug(t)
	rec.expectState(t, Down)
	dev = newFIFODevice(t, path)
	rec.expectState(t, Up)
	dev.write(t, keys(t, "56785CN\n"))
	rec.expectReads(t, "56785CN")
	rec.noReads(t)
}

// Ctrl with a key that has no control code (Ctrl+1, Ctrl+Shift+2) must
// not type the plain key: the code would be another one. Unreadable.
func TestReview18_HIDCtrlWithoutControlCode(t *testing.T) {
	d := newKeyDecoder("us", nil)
	d.key(keyLCtrl, 1)
	if got := string(d.key(2, 1)); got != "\x1a" { // 1
		t.Errorf("Ctrl+1 typed %q", got)
	}
	d.key(keyRShift, 1)
	if got := string(d.key(3, 1)); got != "\x1a" { // 2 / @
		t.Errorf("Ctrl+Shift+2 typed %q", got)
	}
	d.key(keyRShift, 0)
	if got := string(d.key(27, 1)); got != "\x1d" { // ]: GS still
		t.Errorf("Ctrl+] typed %q", got)
	}
}

// Enter held (its autorepeat) ends the code once and taints nothing after.
func TestReview18_HIDEnterRepeat(t *testing.T) {
	d := newKeyDecoder("us", nil)
	got := string(d.key(keyEnter, 1)) + string(d.key(keyEnter, 2)) + string(d.key(keyEnter, 0)) + string(d.key(30, 1))
	if got != "\ra" {
		t.Errorf("Enter held, then a: %q", got)
	}
}
