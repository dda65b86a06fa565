package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/sync/envelope"
)

func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := flagsFor("check-config")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{msg: "check-config takes one file"}
	}
	cfg, err := config.Load(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "%s: configuration has problems:\n", fs.Arg(0))
		printProblems(stderr, err)
		return usageError{msg: "bad configuration", quiet: true}
	}
	// Valid, but unsafe: said loudly, on stderr, without failing the check.
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "%s: WARNING: %s\n", fs.Arg(0), w)
	}
	fmt.Fprintf(stdout, "%s: ok\n", fs.Arg(0))
	return nil
}

// printProblems prints each joined error on its own line.
func printProblems(w io.Writer, err error) {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		for _, e := range j.Unwrap() {
			printProblems(w, e)
		}
		return
	}
	fmt.Fprintln(w, "  -", err)
}

func cmdKeys(args []string, stdout, stderr io.Writer) error {
	fs := flagsFor("keys")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, stderr)
	if err != nil {
		return err
	}
	key, created, err := envelope.LoadOrCreateKey(filepath.Join(cfg.DataDir, keyFile))
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintln(stderr, "made a new gateway key")
		// Run as root on an installed gateway, the key must still belong
		// to the service user that owns the data directory.
		if fi, err := os.Stat(cfg.DataDir); err == nil && os.Getuid() == 0 {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
				if err := os.Chown(filepath.Join(cfg.DataDir, keyFile), int(st.Uid), int(st.Gid)); err != nil {
					return fmt.Errorf("give the key to the data directory's owner: %w", err)
				}
			}
		}
	}
	fmt.Fprintf(stdout, "kid: %s/%s\npublic_key: %s\n", cfg.Site, cfg.Gateway, envelope.EncodePublicKey(envelope.Signer{Key: key}.Public()))
	return nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagsFor("run")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, stderr)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	return serve(ctx, cfg, gatewayDeps{reload: reload, configPath: sval(fs, "config")}, stdout, stderr)
}
