// Package lines splits a scanner's byte stream into codes: lines ended by CR,
// LF or CRLF, or codes framed by STX … ETX (protocol §8). It does no I/O and
// holds no clock, so every driver shares it and it can be fuzzed.
package lines

import "fmt"

// MaxLine is the longest code, in bytes, that is not overlong (protocol §7).
const MaxLine = 512

// Framing bytes. Each ends the code before it; none appears in a Line.
const (
	STX = 0x02
	ETX = 0x03
	LF  = '\n'
	CR  = '\r'
)

// Line is one code.
type Line struct {
	// Data is the code without its framing. It is never empty, holds at most
	// MaxLine+1 bytes, and belongs to the receiver (the Framer keeps no
	// reference). Other control bytes, GS (0x1D) among them, pass through.
	Data []byte
	// Overlong: the code had more than MaxLine bytes; Data holds its first
	// MaxLine+1. The rest of it, up to the next framing byte, is dropped.
	Overlong bool
}

// Framing is how a stream is cut into codes (config key scanner.framing).
type Framing int

const (
	// Lines: CR, LF, STX and ETX all end the code in progress, and an empty
	// code is skipped: so CRLF is one terminator, STX CODE ETX is one code,
	// and so is STX CODE ETX CR LF.
	Lines Framing = iota
	// STXETX: a code is what comes between STX and ETX; bytes outside a
	// frame (a CR LF after the ETX, line noise) are dropped, an STX inside a
	// frame drops the partial frame and starts a new one, and an empty frame
	// is skipped. CR and LF inside a frame are part of the code.
	STXETX
)

// ParseFraming reads a framing as configured: "lines" (or empty) or
// "stx-etx".
func ParseFraming(s string) (Framing, error) {
	switch s {
	case "", "lines":
		return Lines, nil
	case "stx-etx":
		return STXETX, nil
	}
	return 0, fmt.Errorf("framing %q: must be lines or stx-etx", s)
}

func (m Framing) String() string {
	if m == STXETX {
		return "stx-etx"
	}
	return "lines"
}

// Framer turns chunks of a stream into Lines. The way the stream is cut into
// chunks never changes the Lines. The zero value is ready and frames Lines; a
// Framer is not safe for concurrent use: each connection owns one.
//
// A code is emitted as soon as its terminator (or ETX) arrives; an overlong
// one as soon as its (MaxLine+1)th byte arrives, without waiting for a
// terminator that may never come.
type Framer struct {
	// Framing is set before the first Feed and not changed after.
	Framing Framing

	buf  []byte
	skip bool // after an overlong code: drop bytes up to the next framing byte
	in   bool // STXETX: inside a frame
}

// Feed consumes p and calls emit for each code it completes, in order. emit
// may keep Line.Data.
func (f *Framer) Feed(p []byte, emit func(Line)) {
	if f.Framing == STXETX {
		f.feedSTXETX(p, emit)
		return
	}
	for _, c := range p {
		switch c {
		case CR, LF, STX, ETX:
			f.skip = false
			if len(f.buf) > 0 {
				emit(Line{Data: f.take()})
			}
			continue
		}
		if f.skip {
			continue
		}
		f.buf = append(f.buf, c)
		if len(f.buf) > MaxLine {
			emit(Line{Data: f.take(), Overlong: true})
			f.skip = true
		}
	}
}

func (f *Framer) feedSTXETX(p []byte, emit func(Line)) {
	for _, c := range p {
		switch {
		case c == STX:
			f.buf, f.skip, f.in = f.buf[:0], false, true
		case c == ETX:
			if f.in && len(f.buf) > 0 {
				emit(Line{Data: f.take()})
			}
			f.buf, f.skip, f.in = f.buf[:0], false, false
		case !f.in || f.skip:
			// outside a frame, or the rest of an overlong one: dropped
		default:
			f.buf = append(f.buf, c)
			if len(f.buf) > MaxLine {
				emit(Line{Data: f.take(), Overlong: true})
				f.skip = true
			}
		}
	}
}

// Pending reports whether a partial code is buffered (bytes with no
// terminator yet).
func (f *Framer) Pending() bool { return len(f.buf) > 0 }

// Reset drops a partial code, e.g. when the connection it came from is lost:
// an unterminated code is not a read.
func (f *Framer) Reset() {
	f.buf = f.buf[:0]
	f.skip = false
	f.in = false
}

func (f *Framer) take() []byte {
	d := make([]byte, len(f.buf))
	copy(d, f.buf)
	f.buf = f.buf[:0]
	return d
}
