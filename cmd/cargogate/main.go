// Command cargogate is the customs edge gateway of an airport cargo
// terminal: it decides PASS or STOP at every scanner from central's release
// orders, drives the gates, and reconciles with central over MQTT.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// main runs one command (the table is in cli.go) and exits with its
// status: 0 done, 1 failed, 2 misused.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
