package drivers

import (
	"context"
)

// serialScanner reads codes from a scanner on a serial port (driver
// "serial").
type serialScanner struct {
	port string
	baud int
	scanOpts
}

var _ Scanner = (*serialScanner)(nil)

func newSerialScanner(cfg SerialScannerConfig) (Scanner, error) {
	baud, err := checkSerial(cfg.Port, cfg.Baud)
	if err != nil {
		return nil, err
	}
	o, err := scanOptions(cfg.ScanConfig)
	if err != nil {
		return nil, err
	}
	return &serialScanner{port: cfg.Port, baud: baud, scanOpts: o}, nil
}

// Run opens the port, reads codes until the port fails, reports Down, waits
// its backoff and opens it again (by path, so a udev symlink re-pointed at
// a re-plugged adapter is followed), until ctx is done. The backoff restarts
// after a session that lasted longer than its cap, so a flapping port is not
// reopened every 100ms.
func (s *serialScanner) Run(ctx context.Context, emit func(Read), state StateFunc) error {
	rep := newReporter(state)
	defer rep.flush()
	deb := &debouncer{window: s.debounce}
	bo := s.backoff()
	for ctx.Err() == nil {
		p, err := openSerial(s.port, s.baud)
		if err != nil {
			rep.set(Down, err.Error())
			if !bo.Wait(ctx) {
				break
			}
			continue
		}
		rep.set(Up, "opened "+s.port)
		opened := s.now()
		err = s.session(ctx, p, s.stream(deb, nil, emit))
		p.close()
		if err == nil || ctx.Err() != nil { // shutting down: no Down to report
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

// session reads from p until ctx is done (nil) or p fails (the error). A
// partial code is lost with the session.
func (s *serialScanner) session(ctx context.Context, p *serialPort, cs *codeStream) error {
	buf := make([]byte, 1024)
	for ctx.Err() == nil {
		n, err := p.read(buf)
		if n > 0 {
			cs.feed(buf[:n], s.now())
		}
		if err != nil {
			return err
		}
	}
	return nil
}
