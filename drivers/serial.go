package drivers

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/tarm/serial"
)

// serialReadTimeout bounds each read of a serial port (termios VTIME, so at
// least 100ms): tarm/serial reads block otherwise, and the read loops must
// notice ctx cancellation and a vanished port.
const serialReadTimeout = 100 * time.Millisecond

// bauds are the speeds tarm/serial can set on Linux.
var bauds = map[int]bool{
	50: true, 75: true, 110: true, 134: true, 150: true, 200: true, 300: true,
	600: true, 1200: true, 1800: true, 2400: true, 4800: true, 9600: true,
	19200: true, 38400: true, 57600: true, 115200: true, 230400: true,
	460800: true, 500000: true, 576000: true, 921600: true, 1000000: true,
	1152000: true, 1500000: true, 2000000: true, 2500000: true, 3000000: true,
	3500000: true, 4000000: true,
}

func checkSerial(port string, baud int) (int, error) {
	if port == "" {
		return 0, errors.New("port: missing")
	}
	if baud == 0 { // config applies its defaults; a hand-built config may not
		baud = DefaultBaud
	}
	if !bauds[baud] {
		return 0, fmt.Errorf("baud %d: unsupported", baud)
	}
	return baud, nil
}

// serialPort is an open serial port, raw 8N1 (tarm/serial clears ICANON,
// ECHO, ICRNL, OPOST: bytes pass unchanged both ways).
type serialPort struct {
	port  *serial.Port
	name  string
	ident os.FileInfo // what name pointed at when opened
	quick int         // consecutive empty reads that returned at once
}

// openSerial opens name, following symlinks (udev's /dev/serial/by-id/…),
// and remembers which device it opened so that read notices the name being
// re-pointed. The name is resolved before and after opening; if it changed
// in between (a re-plug racing the open), the port is closed and the open
// fails, to be retried.
func openSerial(name string, baud int) (*serialPort, error) {
	before, err := os.Stat(name)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	p, err := serial.OpenPort(&serial.Config{Name: name, Baud: baud, ReadTimeout: serialReadTimeout})
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	fi, err := os.Stat(name)
	switch {
	case err != nil:
		p.Close()
		return nil, pathErr("open", name, err)
	case !os.SameFile(before, fi):
		p.Close()
		return nil, fmt.Errorf("open %s: re-pointed while opening", name)
	}
	return &serialPort{port: p, name: name, ident: fi}, nil
}

// read reads what arrived, waiting at most about serialReadTimeout. It
// returns (0, nil) when nothing arrived, and an error when the port is gone:
// a read error (EIO once a pty master or a USB adapter is gone), the device
// node removed or replaced (a udev symlink re-pointed), or a hang-up.
//
// tarm/serial on Linux reports a read timeout as io.EOF (an empty read of a
// file), so io.EOF is no end here; a real hang-up also reads empty, but at
// once and forever, which quick counts.
func (s *serialPort) read(b []byte) (int, error) {
	start := time.Now()
	n, err := s.port.Read(b)
	if n > 0 {
		s.quick = 0
		return n, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, pathErr("read", s.name, err)
	}
	if time.Since(start) < serialReadTimeout/4 {
		if s.quick++; s.quick >= 20 {
			return 0, fmt.Errorf("read %s: %w", s.name, errHangup)
		}
	} else {
		s.quick = 0
	}
	fi, err := os.Stat(s.name)
	switch {
	case err != nil:
		return 0, fmt.Errorf("port %s vanished: %w", s.name, err)
	case !os.SameFile(fi, s.ident):
		return 0, fmt.Errorf("port %s now names another device", s.name)
	}
	return 0, nil
}

func (s *serialPort) write(b []byte) (int, error) {
	n, err := s.port.Write(b)
	if err != nil {
		return n, pathErr("write", s.name, err)
	}
	return n, nil
}

func (s *serialPort) close() error { return s.port.Close() }

// pathErr adds op and the port's name to err, unless it has them already
// (an *fs.PathError from the os package).
func pathErr(op, name string, err error) error {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, name, err)
}
