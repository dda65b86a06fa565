package testenv

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/cargogate/cargogate/internal/pollpty"
	"golang.org/x/sys/unix"
)

// Pty is a real pseudo-terminal standing in for a serial device: the
// gateway opens Path, the test plays the device on Master. The test keeps
// the slave open too, so the device does not hang up when the gateway dies.
type Pty struct {
	Master *os.File
	Slave  *os.File
	Path   string
	buf    []byte
}

// NewPty opens a pseudo-terminal in raw mode.
func NewPty(t testing.TB) *Pty {
	t.Helper()
	m, s, err := pollpty.Open()
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	fd := int(s.Fd())
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	// A master in non-blocking mode, known to Go's poller, so that read
	// deadlines work: ReadFrame must return when a dead gateway sends
	// nothing.
	mfd, err := unix.Dup(int(m.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(mfd, true); err != nil {
		t.Fatal(err)
	}
	name := m.Name()
	m.Close()
	m = os.NewFile(uintptr(mfd), name)
	p := &Pty{Master: m, Slave: s, Path: s.Name()}
	t.Cleanup(func() { m.Close(); s.Close() })
	return p
}

// Write writes bytes as the device.
func (p *Pty) Write(t testing.TB, s string) {
	t.Helper()
	if _, err := p.Master.Write([]byte(s)); err != nil {
		t.Fatalf("write to pty: %v", err)
	}
}

// ReadFrame reads until one of the frames arrives and returns it, or ""
// when nothing arrives within wait.
func (p *Pty) ReadFrame(wait time.Duration, frames ...string) string {
	deadline := time.Now().Add(wait)
	for {
		best, at := "", -1
		for _, f := range frames {
			if i := bytes.Index(p.buf, []byte(f)); i >= 0 && (at < 0 || i < at) {
				best, at = f, i
			}
		}
		if at >= 0 {
			p.buf = p.buf[at+len(best):]
			return best
		}
		if time.Now().After(deadline) {
			return ""
		}
		p.Master.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		b := make([]byte, 256)
		n, _ := p.Master.Read(b)
		p.buf = append(p.buf, b[:n]...)
	}
}

// Drain discards what the gateway wrote so far.
func (p *Pty) Drain() {
	for {
		p.Master.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		b := make([]byte, 4096)
		n, _ := p.Master.Read(b)
		if n == 0 {
			p.buf = nil
			return
		}
	}
}

// FlushInput discards what was written as the device and not yet read by
// the gateway (tcflush TCIFLUSH), as if it never reached a dead process.
func (p *Pty) FlushInput() error {
	return unix.IoctlSetInt(int(p.Slave.Fd()), unix.TCFLSH, unix.TCIFLUSH)
}
