package drivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/drivers/internal/backoff"
)

// tcpDialTimeout bounds one connection attempt of the tcp-client scanner.
const tcpDialTimeout = 5 * time.Second

func checkAddress(addr string) error {
	if addr == "" {
		return errors.New("address: missing")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
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
	addr     string
	debounce time.Duration
	now      func() time.Time
	backoff  backoff.Backoff
}

var _ Scanner = (*tcpClientScanner)(nil)

func newTCPClientScanner(cfg config.Scanner) (Scanner, error) {
	if err := checkAddress(cfg.Address); err != nil {
		return nil, err
	}
	return &tcpClientScanner{addr: cfg.Address, debounce: cfg.Debounce, now: time.Now}, nil
}

// Run connects, reads codes until the connection fails, reports Down, waits
// its backoff and connects again, until ctx is done.
func (s *tcpClientScanner) Run(ctx context.Context, emit func(Read), state StateFunc) error {
	rep := &reporter{fn: state}
	deb := &debouncer{window: s.debounce}
	bo := s.backoff
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
		err = readStream(ctx, conn, &codeStream{deb: deb, emit: emit}, s.now)
		conn.Close()
		if err == nil {
			break
		}
		rep.set(Down, err.Error())
		if s.now().Sub(opened) > backoff.DefaultMax {
			bo.Reset()
		}
		if !bo.Wait(ctx) {
			break
		}
	}
	return nil
}

// tcpServerScanner listens for scanners that connect to the gateway (driver
// "tcp-server"). Each connection has its own framer; their codes are emitted
// one at a time. The device is Up while at least one scanner is connected,
// Down otherwise (and while the port cannot be listened on).
type tcpServerScanner struct {
	addr     string
	debounce time.Duration
	now      func() time.Time
	backoff  backoff.Backoff
	// listening, when set, is told the bound address (tests listen on :0).
	listening func(net.Addr)
}

var _ Scanner = (*tcpServerScanner)(nil)

func newTCPServerScanner(cfg config.Scanner) (Scanner, error) {
	if err := checkAddress(cfg.Address); err != nil {
		return nil, err
	}
	return &tcpServerScanner{addr: cfg.Address, debounce: cfg.Debounce, now: time.Now}, nil
}

// Run listens and serves connections until ctx is done, then closes the
// listener and every connection and waits for their goroutines. When the
// listener fails it is reopened after the backoff; connections already
// accepted keep being served meanwhile.
func (s *tcpServerScanner) Run(ctx context.Context, emit func(Read), state StateFunc) error {
	srv := &tcpServer{s: s, rep: &reporter{fn: state}, deb: &debouncer{window: s.debounce}, emit: emit}
	defer srv.wg.Wait()
	bo := s.backoff
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
		srv.setUpDown(0) // Down until a scanner connects
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
	mu   sync.Mutex // serializes deb and emit across connections; guards n
	n    int        // open connections
	wg   sync.WaitGroup
}

func (srv *tcpServer) setUpDown(delta int) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.n += delta
	if srv.n > 0 {
		srv.rep.set(Up, fmt.Sprintf("%d scanner(s) connected", srv.n))
	} else {
		srv.rep.set(Down, "no scanner connected")
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
		srv.setUpDown(+1)
		go func() {
			defer srv.wg.Done()
			defer srv.setUpDown(-1)
			defer conn.Close()
			cs := &codeStream{deb: srv.deb, mu: &srv.mu, emit: srv.emit}
			_ = readStream(ctx, conn, cs, srv.s.now) // a lost connection is the scanner's to reopen
		}()
	}
}
