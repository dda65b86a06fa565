// Command cargogate is the customs edge gateway of an airport cargo
// terminal: it decides PASS or STOP at every scanner from central's release
// orders, drives the gates, and reconciles with central over MQTT.
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

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue usageError
		if !errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "cargogate:", err)
		}
		os.Exit(exitCode(err))
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

const usage = `cargogate — customs edge gateway for airport cargo terminals

Usage:
  cargogate run --config FILE     run the gateway
  cargogate demo [--listen ADDR]  run a self-contained demo: embedded broker, reference
                                  central, three simulated stations, live page
  cargogate check-config FILE     check a configuration file; prints every problem
  cargogate keys --config FILE    show this gateway's public key and kid
  cargogate status --config FILE  what the running gateway reports
  cargogate inspect CODE --config FILE
                                  a code's decision and why, from the local store (offline too)
  cargogate export events --since T --config FILE
                                  journalled events as JSON lines
  cargogate pair --name NAME [--role screens] [--page /supervisor] --config FILE
                                  a one-time pairing link for a screen (running gateway)
  cargogate backup DIR --config FILE
                                  a consistent hot copy of the stores
  cargogate audit verify|export --config FILE
                                  prove the audit log intact, or export it as JSON lines
  cargogate compact --config FILE reclaim space in the stores (gateway stopped)
  cargogate version               print the version

Examples:
  cargogate check-config /etc/cargogate/cargogate.yaml
  cargogate run --config /etc/cargogate/cargogate.yaml
  cargogate demo
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command"}
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout, stderr)
	case "check-config":
		return cmdCheckConfig(args[1:], stdout, stderr)
	case "keys":
		return cmdKeys(args[1:], stdout, stderr)
	case "status":
		return cmdStatus(ctx, args[1:], stdout, stderr)
	case "inspect":
		return cmdInspect(ctx, args[1:], stdout, stderr)
	case "export":
		return cmdExport(ctx, args[1:], stdout, stderr)
	case "pair":
		return cmdPair(ctx, args[1:], stdout, stderr)
	case "backup":
		return cmdBackup(ctx, args[1:], stdout, stderr)
	case "audit":
		return cmdAudit(ctx, args[1:], stdout, stderr)
	case "compact":
		return cmdCompact(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "cargogate", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{"unknown command " + args[0]}
}
