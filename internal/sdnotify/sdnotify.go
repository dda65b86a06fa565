// Package sdnotify speaks systemd's notify protocol (sd_notify(3)): state
// lines such as READY=1 and WATCHDOG=1 sent as one datagram to the unix
// socket named by $NOTIFY_SOCKET. Without $NOTIFY_SOCKET (not started by
// systemd with Type=notify) every call does nothing.
package sdnotify

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notify sends state (newline-separated KEY=VALUE lines) to systemd. It
// returns nil, sending nothing, when $NOTIFY_SOCKET is unset.
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	// A leading "@" names an abstract socket, which Go's net package
	// maps to the leading NUL byte itself.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// WatchdogInterval is systemd's watchdog timeout for this process
// ($WATCHDOG_USEC, when $WATCHDOG_PID is unset or this process); 0: no
// watchdog.
func WatchdogInterval() time.Duration {
	if p := os.Getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(os.Getpid()) {
		return 0
	}
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

// Watchdog feeds systemd's watchdog at each tick while stale returns no
// names; while it returns some (loops that stopped turning), it sends
// only a STATUS line naming them, so that systemd, the watchdog timeout
// passed, kills and restarts the gateway. It returns when ctx is done.
func Watchdog(ctx context.Context, ticks <-chan time.Time, stale func() []string, log *slog.Logger) error {
	withheld := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
		}
		if s := stale(); len(s) > 0 {
			msg := "watchdog withheld: not turning: " + strings.Join(s, ", ")
			if !withheld && log != nil {
				log.Error("ALARM: " + msg)
			}
			withheld = true
			if err := Notify("STATUS=" + msg); err != nil && log != nil {
				log.Warn("sd_notify", "err", err)
			}
			continue
		}
		state := "WATCHDOG=1"
		if withheld {
			state += "\nSTATUS=running"
			if log != nil {
				log.Info("watchdog fed again: every loop turning")
			}
		}
		withheld = false
		if err := Notify(state); err != nil && log != nil {
			log.Warn("sd_notify", "err", err)
		}
	}
}
