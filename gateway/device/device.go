// Package device holds the types a station and its field devices share:
// a code read, a device's state, and the Scanner and Gate interfaces the
// station consumes and the drivers implement. It holds types only, so that
// the decision core (station, screens) depends on no device library.
package device

import (
	"context"
	"time"
)

// State of a device, reported on every change (not on every failed attempt).
type State string

// Device states (protocol §3, device events).
const (
	Up    State = "up"
	Down  State = "down"
	Fault State = "fault"
)

// StateFunc is called by a driver when its device changes state. Calls for
// one device are never concurrent and come in order. It is called from a
// goroutine of its own, never under a driver's lock nor from Signal, so it
// may block for a while (a full channel) without holding the device up; it
// must return once the ctx given to Run is done, since Run waits for the
// reports it made before returning.
type StateFunc func(s State, detail string)

// Read is one code read from a scanner.
type Read struct {
	// Line is the code without its terminator/STX/ETX framing; never empty.
	// It belongs to the receiver.
	Line []byte
	// Overlong: the line exceeded 512 bytes (Line holds the first 513 bytes
	// at most); the caller decides it invalid_code.
	Overlong bool
	// At is when the last byte arrived (the chunk holding it was read).
	At time.Time
	// Ref names the read for its answer (a handheld's scan id): the station
	// copies it into the outcome, so whoever submitted the read finds its
	// decision among the outcomes. Empty for fixed scanners.
	Ref string
}

// Scanner reads codes until ctx is done. It owns reopening its port with
// capped, jittered backoff (100ms doubling to reconnect_max, default 10s,
// ±20% jitter), reports Up/Down via state, and calls emit for each code (emit
// must not block long; calls are never concurrent). Run returns nil when ctx
// is done; it reports no state change on the way out.
type Scanner interface {
	Run(ctx context.Context, emit func(Read), state StateFunc) error
}

// Gate tells a gate controller a decision. Signal returns an error when the
// gate could not be told (device down, write error, missing ack); the caller
// treats that as a fault and the gate stays closed. Run owns the connection
// (open, reopen with backoff, report state) until ctx is done; Signal fails
// at once while Run is not running or the device is not open.
type Gate interface {
	Run(ctx context.Context, state StateFunc) error
	Signal(ctx context.Context, pass bool) error
}
