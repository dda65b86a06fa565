package main

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cargogate/cargogate/internal/liveness"
	"github.com/cargogate/cargogate/internal/sdnotify"
)

// watchdog tells systemd the gateway is ready (Type=notify: READY=1 once
// the stores, the link, the stations and the HTTP listener are started)
// and, when the unit sets WatchdogSec, feeds the watchdog at half its
// timeout while every loop in live has turned within that half; a loop
// stuck longer starves it and systemd restarts the gateway. Outside
// systemd ($NOTIFY_SOCKET unset) it does nothing.
func watchdog(ctx context.Context, g *errgroup.Group, live *liveness.Registry, log *slog.Logger) {
	if err := sdnotify.Notify("READY=1\nSTATUS=running"); err != nil {
		log.Warn("sd_notify READY", "err", err)
	}
	wd := sdnotify.WatchdogInterval()
	if wd <= 0 {
		return
	}
	half := wd / 2
	g.Go(func() error {
		t := time.NewTicker(half)
		defer t.Stop()
		return sdnotify.Watchdog(ctx, t.C, func() []string { return live.Stale(half) }, log)
	})
}
