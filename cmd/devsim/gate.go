package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cargogate/cargogate/drivers"
)

const gateExamples = `  # gateway config: gate: {driver: serial, port: /tmp/gate-1, ack: "OK\r\n"}
  devsim gate --pty --link /tmp/gate-1 --ack 'OK\r\n'
  # a relay board with binary frames, which answers nothing
  devsim gate --pty --pass '\xA0\x01\x01\xA2' --stop '\xA0\x01\x00\xA1'
  # a controller that stops answering after 3 frames (the gateway reports a fault)
  devsim gate --pty --ack 'OK\r\n' --ack-count 3
`

// gateSim is a serial gate controller: it recognizes the PASS and STOP
// frames in what it reads, prints them, and answers each with ack.
type gateSim struct {
	pass, stop, ack []byte
	ackCount        int // answer only the first ackCount frames; < 0: all
	delay           time.Duration
	out             *printer
	buf             []byte
}

func runGate(ctx context.Context, args []string, out *printer, stderr io.Writer) error {
	fs := flag.NewFlagSet("gate", flag.ContinueOnError)
	usePty := fs.Bool("pty", false, "be a gate controller on a new pseudo-terminal (required); its path is printed")
	link := fs.String("link", "", "make this path a symlink to the pty, like /dev/serial/by-id/…")
	pass := fs.String("pass", drivers.DefaultPass, `the PASS frame, with \r, \n and \xHH escapes`)
	stop := fs.String("stop", drivers.DefaultStop, "the STOP frame")
	ack := fs.String("ack", "", "answer each frame with this (default: no answer)")
	ackCount := fs.Int("ack-count", -1, "answer only the first N frames, then fall silent (-1: all)")
	delay := fs.Duration("ack-delay", 0, "wait this long before answering")
	if err := parse(fs, args, stderr, gateExamples); err != nil {
		return helpOK(err)
	}
	if !*usePty {
		fmt.Fprintln(stderr, "devsim gate: --pty is required")
		return errUsage
	}
	g := &gateSim{ackCount: *ackCount, delay: *delay, out: out}
	for _, f := range []struct {
		name string
		text string
		dst  *[]byte
	}{{"pass", *pass, &g.pass}, {"stop", *stop, &g.stop}, {"ack", *ack, &g.ack}} {
		b, err := drivers.DecodeFrame(f.text)
		if err != nil {
			fmt.Fprintf(stderr, "devsim gate: --%s: %v\n", f.name, err)
			return errUsage
		}
		*f.dst = b
	}
	if len(g.pass) == 0 || len(g.stop) == 0 || bytes.Equal(g.pass, g.stop) {
		fmt.Fprintln(stderr, "devsim gate: --pass and --stop must be non-empty and differ")
		return errUsage
	}

	p, err := openPty(*link)
	if err != nil {
		return err
	}
	defer p.Close()
	out.printf("gate: serial port %s (gateway config: gate: {driver: serial, port: %s})", p.Path, p.Name())
	stopRead := context.AfterFunc(ctx, func() { p.Master.SetReadDeadline(time.Now()) })
	defer stopRead()
	return g.serve(ctx, p.Master)
}

// serve reads frames from the gateway until ctx is done.
func (g *gateSim) serve(ctx context.Context, f *os.File) error {
	b := make([]byte, 256)
	for {
		n, err := f.Read(b)
		if n > 0 {
			g.feed(ctx, f, b[:n])
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pty: %w", err)
		}
	}
}

// feed takes in bytes and handles every whole frame; bytes that cannot
// begin a frame are printed as unknown.
func (g *gateSim) feed(ctx context.Context, w io.Writer, p []byte) {
	g.buf = append(g.buf, p...)
	for len(g.buf) > 0 {
		switch {
		case bytes.HasPrefix(g.buf, g.pass):
			g.buf = g.buf[len(g.pass):]
			g.frame(ctx, w, "PASS: gate opens")
		case bytes.HasPrefix(g.buf, g.stop):
			g.buf = g.buf[len(g.stop):]
			g.frame(ctx, w, "STOP: gate stays closed, alarm")
		case bytes.HasPrefix(g.pass, g.buf) || bytes.HasPrefix(g.stop, g.buf):
			return // the start of a frame: wait for the rest
		default:
			i := 1
			for i < len(g.buf) && !bytes.HasPrefix(g.buf[i:], g.pass[:1]) && !bytes.HasPrefix(g.buf[i:], g.stop[:1]) {
				i++
			}
			g.out.printf("gate: unknown bytes %+q", g.buf[:i])
			g.buf = g.buf[i:]
		}
	}
}

func (g *gateSim) frame(ctx context.Context, w io.Writer, what string) {
	g.out.printf("gate: %s", what)
	if len(g.ack) == 0 {
		return
	}
	if g.ackCount == 0 {
		g.out.printf("gate: (not answering)")
		return
	}
	if g.ackCount > 0 {
		g.ackCount--
	}
	if g.delay > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(g.delay):
		}
	}
	if _, err := w.Write(g.ack); err != nil {
		g.out.printf("gate: answer: %v", err)
		return
	}
	g.out.printf("gate: answered %+q", g.ack)
}
