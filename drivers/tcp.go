package drivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// tcpDialTimeout bounds one connection attempt of the tcp-client scanner.
const tcpDialTimeout = 5 * time.Second

// maxReaders bounds tcp-server's max_readers.
const maxReaders = 64

func checkAddress(key, addr string) error {
	if addr == "" {
		return errors.New(key + ": missing")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s %q: %w", key, addr, err)
	}
	return nil
}

// readStream reads conn until it fails or ctx is done (ctx closes conn), and
// feeds what it reads to cs. It returns nil when ctx is done.
func readStream(ctx context.Context, conn net.Conn, cs *codeStream, now func() time.Time) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	buf := make([]byte, 1024)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			cs.feed(buf[:n], now())
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s closed the connection", conn.RemoteAddr())
			}
			return fmt.Errorf("read %s: %w", conn.RemoteAddr(), err)
		}
	}
}

// tcpClientScanner connects to a scanner (or a serial-to-Ethernet converter)
// that serves its codes on a TCP port (driver "tcp-client").
type tcpClientScanner struct {
	addr string
	scanOpts
}

var _ Scanner = (*tcpClientScanner)(nil)

func newTCPClientScanner(cfg TCPClientConfig) (Scanner, error) {
	if err := checkAddress("address", cfg.Address); err != nil {
		return nil, err
	}
	o, err := scanOptions(cfg.ScanConfig)
	if err != nil {
		return nil, err
	}
	return &tcpClientScanner{addr: cfg.Address, scanOpts: o}, nil
}

// Run connects, reads codes until the connection fails, reports Down, waits
// its backoff and connects again, until ctx is done.
func (s *tcpClientScanner) Run(ctx context.Context, emit func(Read), state StateFunc) error {
	rep := newReporter(state)
	defer rep.flush()
	deb := &debouncer{window: s.debounce}
	bo := s.backoff()
	d := net.Dialer{Timeout: tcpDialTimeout}
	for ctx.Err() == nil {
		conn, err := d.DialContext(ctx, "tcp", s.addr)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			rep.set(Down, err.Error())
			if !bo.Wait(ctx) {
				break
			}
			continue
		}
		rep.set(Up, "connected to "+s.addr)
		opened := s.now()
		err = readStream(ctx, conn, s.stream(deb, nil, emit), s.now)
		conn.Close()
		if err == nil {
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

// tcpServerScanner listens for readers that connect to the gateway (driver
// "tcp-server"). Each connection has its own framer; their codes are emitted
// one at a time. At most max readers are connected at once: one more
// replaces the one connected longest (a reader that was power-cycled comes
// back on a new connection while its old one may linger half-open). The
// device is Up while at least one reader is connected, Down otherwise (and
// while the address cannot be listened on).
type tcpServerScanner struct {
	addr string
	max  int
	scanOpts
	// listening, when set, is told the bound address (tests listen on :0).
	listening func(net.Addr)
}

var _ Scanner = (*tcpServerScanner)(nil)

func newTCPServerScanner(cfg TCPServerConfig) (Scanner, error) {
	addr := cfg.Listen
	if addr == "" {
		addr = cfg.Address // the deprecated name, in a configuration built in code
	}
	if err := checkAddress("listen", addr); err != nil {
		return nil, err
	}
	n := cfg.MaxReaders
	switch {
	case n == 0:
		n = DefaultMaxReaders
	case n < 0 || n > maxReaders:
		return nil, fmt.Errorf("max_readers %d: must be 1..%d", n, maxReaders)
	}
	o, err := scanOptions(cfg.ScanConfig)
	if err != nil {
		return nil, err
	}
	return &tcpServerScanner{addr: addr, max: n, scanOpts: o}, nil
}

// Run listens and serves connections until ctx is done, then closes the
// listener and every connection and waits for their goroutines. When the
// listener fails it is reopened after the backoff; connections already
// accepted keep being served meanwhile.
func (s *tcpServerScanner) Run(ctx context.Context, emit func(Read), state StateFunc) error {
	srv := &tcpServer{s: s, rep: newReporter(state), deb: &debouncer{window: s.debounce}, emit: emit}
	defer srv.rep.flush()
	defer srv.wg.Wait()
	bo := s.backoff()
	var lc net.ListenConfig
	for ctx.Err() == nil {
		ln, err := lc.Listen(ctx, "tcp", s.addr)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			srv.rep.set(Down, fmt.Sprintf("listen %s: %v", s.addr, err))
			if !bo.Wait(ctx) {
				break
			}
			continue
		}
		srv.count(nil, 0) // Down until a reader connects
		if s.listening != nil {
			s.listening(ln.Addr())
		}
		err = srv.accept(ctx, ln)
		if err == nil {
			break
		}
		srv.rep.set(Down, err.Error())
		if !bo.Wait(ctx) {
			break
		}
	}
	return nil
}

type tcpServer struct {
	s    *tcpServerScanner
	rep  *reporter
	deb  *debouncer
	emit func(Read)
	emu  sync.Mutex // serializes deb and emit across connections
	mu   sync.Mutex // guards conns
	// conns are the open connections, the one connected longest first.
	conns []net.Conn
	wg    sync.WaitGroup
}

// count adds c to the open connections (delta +1) or removes it (-1), and
// reports the state. Adding one beyond the maximum closes the oldest, whose
// goroutine then removes it.
func (srv *tcpServer) count(c net.Conn, delta int) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	switch delta {
	case +1:
		srv.conns = append(srv.conns, c)
		if len(srv.conns) > srv.s.max {
			old := srv.conns[0]
			srv.conns = srv.conns[1:]
			old.Close()
		}
	case -1:
		for i, o := range srv.conns {
			if o == c {
				srv.conns = append(srv.conns[:i], srv.conns[i+1:]...)
				break
			}
		}
	}
	if n := len(srv.conns); n > 0 {
		srv.rep.set(Up, fmt.Sprintf("%d reader(s) connected", n))
	} else {
		srv.rep.set(Down, "no reader connected")
	}
}

// accept serves ln until ctx is done (nil) or ln fails (the error).
func (srv *tcpServer) accept(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept %s: %w", srv.s.addr, err)
		}
		srv.wg.Add(1)
		srv.count(conn, +1)
		go func() {
			defer srv.wg.Done()
			defer srv.count(conn, -1)
			defer conn.Close()
			cs := srv.s.stream(srv.deb, &srv.emu, srv.emit)
			_ = readStream(ctx, conn, cs, srv.s.now) // a lost connection is the reader's to reopen
		}()
	}
}
