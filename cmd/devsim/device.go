package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// printer writes whole lines for several goroutines, each with the time.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) printf(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, time.Now().Format("15:04:05.000")+" "+format+"\n", a...)
}

// parse parses a device's flags; -h prints them with the examples.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer, examples string) error {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: devsim %s [flags]\n\nFlags:\n", fs.Name())
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nExamples:\n"+examples)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "devsim %s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return errUsage
	}
	return nil
}

// simPty is a pseudo-terminal playing a serial device: the gateway opens
// Path (or the link to it), devsim reads and writes Master. devsim keeps
// the slave open too, so that the device stays plugged in while the gateway
// reopens it.
type simPty struct {
	Master, slave *os.File
	Path, link    string
}

// openPty opens a raw pty and, with link set, points the symlink link at its
// slave (as udev's /dev/serial/by-id links do), replacing what was there.
func openPty(link string) (*simPty, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("pty: %w", err)
	}
	// pty.Open leaves the master in blocking mode, where a read cannot be
	// interrupted; a non-blocking copy goes through the runtime's poller
	// and honours deadlines.
	fd, err := unix.Dup(int(m.Fd()))
	m.Close()
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("pty: %w", err)
	}
	m = os.NewFile(uintptr(fd), "/dev/ptmx")
	p := &simPty{Master: m, slave: s, Path: s.Name(), link: link}
	if err := rawMode(int(s.Fd())); err != nil {
		p.Close()
		return nil, err
	}
	if link != "" {
		tmp := link + ".devsim"
		os.Remove(tmp)
		if err := os.Symlink(p.Path, tmp); err != nil {
			p.Close()
			return nil, fmt.Errorf("link: %w", err)
		}
		if err := os.Rename(tmp, link); err != nil {
			os.Remove(tmp)
			p.Close()
			return nil, fmt.Errorf("link: %w", err)
		}
	}
	return p, nil
}

// Name is what the gateway's configuration should name: the link if any.
func (p *simPty) Name() string {
	if p.link != "" {
		return p.link
	}
	return p.Path
}

// Close unplugs the device: the link goes, the gateway's reads fail.
func (p *simPty) Close() {
	if p.link != "" {
		if target, err := os.Readlink(p.link); err == nil && target == p.Path {
			os.Remove(p.link)
		}
	}
	p.Master.Close()
	p.slave.Close()
}

// rawMode clears the line discipline's processing (no echo, no CR→LF, no
// canonical lines), as a real serial device's bytes are not processed.
func rawMode(fd int) error {
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("pty termios: %w", err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
		return fmt.Errorf("pty termios: %w", err)
	}
	return nil
}
