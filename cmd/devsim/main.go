// Command devsim plays a terminal's field devices for site acceptance tests
// and the demo: a barcode scanner on a pseudo-terminal or a TCP port that
// replays a file of codes or sends what is typed, a serial gate controller
// that prints the frames it receives and answers an ack, and a Modbus TCP
// I/O module that shows its coils as they change. docs/drivers.md walks
// through a site test with it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "devsim:", err)
		os.Exit(1)
	}
}

// stdin is where the scanner reads typed codes; tests replace it.
var stdin io.Reader = os.Stdin

const usage = `usage: devsim scanner|gate|modbus [flags]   (devsim CMD -h: its flags)

  scanner  a barcode scanner on a pty or a TCP port; replays --file or sends
           each line typed on stdin
  gate     a serial gate controller on a pty; prints the frames it receives
           and answers --ack
  modbus   a Modbus TCP I/O module; prints its coils as they change,
           simulates the gate's closed input and a communication watchdog

Examples:
  devsim scanner --pty --link /tmp/scanner-1 --file codes.txt --pace 2s
  devsim scanner --listen 127.0.0.1:2001          # for driver tcp-client
  devsim scanner --dial 127.0.0.1:2001 --framing stx-etx   # for driver tcp-server
  devsim gate --pty --link /tmp/gate-1 --ack 'OK\r\n'
  devsim modbus --listen 127.0.0.1:1502 --open-coil 0 --alarm-coil 1 --closed-input 0 --watchdog 3s
`

// run runs one simulated device until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	out := &printer{w: stdout}
	switch args[0] {
	case "scanner":
		return runScanner(ctx, args[1:], out, stderr)
	case "gate":
		return runGate(ctx, args[1:], out, stderr)
	case "modbus":
		return runModbus(ctx, args[1:], out, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "devsim: unknown device %q\n\n%s", args[0], usage)
	return errUsage
}
