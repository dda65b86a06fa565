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

// NewPty opens a pseudo-terminal in raw mode whose master honours read
// deadlines (internal/pollpty), so ReadFrame returns when a dead gateway
// sends nothing.
func NewPty(t testing.TB) *Pty {
	t.Helper()
	m, s, err := pollpty.Open()
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
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
