package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cargogate/cargogate/drivers"
)

const scannerExamples = `  # a USB scanner: the gateway's scanner {driver: serial, port: /tmp/scanner-1}
  devsim scanner --pty --link /tmp/scanner-1 --file codes.txt --pace 2s
  # a fixed-mount reader serving its codes: {driver: tcp-client, address: 127.0.0.1:2001}
  devsim scanner --listen 127.0.0.1:2001 --framing stx-etx
  # a reader dialling the gateway: {driver: tcp-server, listen: ":2001"}; type codes, Enter sends
  devsim scanner --dial 127.0.0.1:2001

  codes.txt holds one code per line; blank lines and lines starting with #
  are skipped; \r, \n, \\ and \xHH escapes are decoded (GS1: ]C1\x1d00…).
`

// sink is where a scanner's codes go: a pty, or TCP connections.
type sink interface {
	send(ctx context.Context, p []byte) error
	close()
}

func runScanner(ctx context.Context, args []string, out *printer, stderr io.Writer) error {
	fs := flag.NewFlagSet("scanner", flag.ContinueOnError)
	usePty := fs.Bool("pty", false, "be a serial scanner on a new pseudo-terminal; its path is printed")
	link := fs.String("link", "", "with --pty: make this path a symlink to the pty, like /dev/serial/by-id/…")
	listen := fs.String("listen", "", "be a reader serving its codes on this host:port (for the gateway's tcp-client)")
	dial := fs.String("dial", "", "be a reader connecting to the gateway at this host:port (for its tcp-server); redials")
	file := fs.String("file", "", "replay the codes of this file (default: send each line typed on stdin)")
	pace := fs.Duration("pace", time.Second, "with --file: the time between two codes")
	loop := fs.Bool("loop", false, "with --file: replay it forever")
	framing := fs.String("framing", "lines", "lines (CODE CR LF) or stx-etx (STX CODE ETX)")
	if err := parse(fs, args, stderr, scannerExamples); err != nil {
		return helpOK(err)
	}
	if n := btoi(*usePty) + btoi(*listen != "") + btoi(*dial != ""); n != 1 {
		fmt.Fprintln(stderr, "devsim scanner: give one of --pty, --listen or --dial")
		return errUsage
	}
	if *framing != "lines" && *framing != "stx-etx" {
		fmt.Fprintf(stderr, "devsim scanner: --framing %q: lines or stx-etx\n", *framing)
		return errUsage
	}
	if *pace < 0 {
		fmt.Fprintln(stderr, "devsim scanner: --pace must not be negative")
		return errUsage
	}

	var codes func(yield func(string) bool) error
	if *file != "" {
		data, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		list, err := parseCodes(string(data))
		if err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
		codes = replay(ctx, list, *pace, *loop)
	} else {
		codes = typed(ctx, stdin, out)
	}

	var s sink
	var err error
	switch {
	case *usePty:
		s, err = newPtySink(*link, out)
	case *listen != "":
		s, err = newListenSink(ctx, *listen, out)
	default:
		s = newDialSink(*dial, out)
	}
	if err != nil {
		return err
	}
	defer s.close()
	if *file == "" {
		out.printf("scanner: type a code and Enter to send it (escapes: \\r \\n \\xHH)")
	}

	var sendErr error
	err = codes(func(code string) bool {
		b := []byte(code + "\r\n")
		if *framing == "stx-etx" {
			b = []byte("\x02" + code + "\x03")
		}
		if sendErr = s.send(ctx, b); sendErr != nil {
			return false
		}
		out.printf("scanner: sent %+q", code)
		return true
	})
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = sendErr
	}
	if err != nil {
		return err
	}
	out.printf("scanner: no more codes; the device stays connected until interrupted")
	<-ctx.Done()
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func helpOK(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// parseCodes reads a codes file: one code a line, escapes decoded, blank
// lines and # comments skipped.
func parseCodes(data string) ([]string, error) {
	var codes []string
	for i, line := range strings.Split(data, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		b, err := drivers.DecodeFrame(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		codes = append(codes, string(b))
	}
	if len(codes) == 0 {
		return nil, errors.New("no codes")
	}
	return codes, nil
}

// replay yields the codes, pace apart, once or forever, until ctx is done.
func replay(ctx context.Context, codes []string, pace time.Duration, loop bool) func(func(string) bool) error {
	return func(yield func(string) bool) error {
		t := time.NewTimer(0)
		defer t.Stop()
		for first := true; first || loop; first = false {
			for _, c := range codes {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
				}
				if !yield(c) {
					return nil
				}
				t.Reset(pace)
			}
		}
		return nil
	}
}

// typed yields each line read from r, escapes decoded, until r ends or ctx
// is done. The read runs in a goroutine, as a terminal read cannot be
// interrupted: when ctx ends first it is left to the process's exit.
func typed(ctx context.Context, r io.Reader, out *printer) func(func(string) bool) error {
	return func(yield func(string) bool) error {
		lines := make(chan string)
		errc := make(chan error, 1)
		go func() {
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				case <-ctx.Done():
					return
				}
			}
			errc <- sc.Err()
		}()
		for {
			var line string
			select {
			case <-ctx.Done():
				return nil
			case err := <-errc:
				return err
			case line = <-lines:
			}
			line = strings.TrimRight(line, "\r")
			if line == "" {
				continue
			}
			b, err := drivers.DecodeFrame(line)
			if err != nil {
				out.printf("scanner: not sent: %v", err)
				continue
			}
			if !yield(string(b)) {
				return nil
			}
		}
	}
}

// ptySink is a serial scanner: codes are written to the pty's master.
type ptySink struct{ p *simPty }

func newPtySink(link string, out *printer) (sink, error) {
	p, err := openPty(link)
	if err != nil {
		return nil, err
	}
	out.printf("scanner: serial port %s (gateway config: scanner: {driver: serial, port: %s})", p.Path, p.Name())
	return ptySink{p}, nil
}

// send writes p; the pty buffers it while the gateway is not reading.
func (s ptySink) send(ctx context.Context, p []byte) error {
	s.p.Master.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.p.Master.Write(p); err != nil {
		return fmt.Errorf("pty: %w", err)
	}
	return nil
}

func (s ptySink) close() { s.p.Close() }

// listenSink is a reader serving its codes on a TCP port: each code goes to
// every connected gateway; with none connected, send waits for one.
type listenSink struct {
	ln    net.Listener
	out   *printer
	mu    sync.Mutex
	conns map[net.Conn]bool
	some  chan struct{} // closed while at least one is connected
	wg    sync.WaitGroup
}

func newListenSink(ctx context.Context, addr string, out *printer) (sink, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &listenSink{ln: ln, out: out, conns: map[net.Conn]bool{}, some: make(chan struct{})}
	out.printf("scanner: listening on %s (gateway config: scanner: {driver: tcp-client, address: %s})", ln.Addr(), ln.Addr())
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *listenSink) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.out.printf("scanner: gateway connected from %s", c.RemoteAddr())
		s.mu.Lock()
		if len(s.conns) == 0 {
			close(s.some)
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() { // notices the gateway hanging up
			defer s.wg.Done()
			io.Copy(io.Discard, c)
			s.drop(c)
		}()
	}
}

func (s *listenSink) drop(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[c] {
		delete(s.conns, c)
		c.Close()
		s.out.printf("scanner: gateway %s disconnected", c.RemoteAddr())
		if len(s.conns) == 0 {
			s.some = make(chan struct{})
		}
	}
}

func (s *listenSink) send(ctx context.Context, p []byte) error {
	for {
		s.mu.Lock()
		some := s.some
		conns := make([]net.Conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		if len(conns) == 0 {
			select {
			case <-some:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		sent := false
		for _, c := range conns {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(p); err != nil {
				s.drop(c)
				continue
			}
			sent = true
		}
		if sent {
			return nil
		}
	}
}

func (s *listenSink) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// dialSink is a reader that connects to the gateway and redials, once a
// second, whenever the connection is lost.
type dialSink struct {
	addr string
	out  *printer
	c    net.Conn
}

func newDialSink(addr string, out *printer) sink { return &dialSink{addr: addr, out: out} }

func (s *dialSink) send(ctx context.Context, p []byte) error {
	for {
		if s.c == nil {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", s.addr)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s.out.printf("scanner: dial %s: %v (again in 1s)", s.addr, err)
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Second):
				}
				continue
			}
			s.out.printf("scanner: connected to the gateway at %s", s.addr)
			s.c = c
		}
		s.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := s.c.Write(p); err != nil {
			s.out.printf("scanner: connection lost: %v", err)
			s.c.Close()
			s.c = nil
			continue
		}
		return nil
	}
}

func (s *dialSink) close() {
	if s.c != nil {
		s.c.Close()
	}
}
