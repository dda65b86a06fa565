package drivers

import (
	"errors"

	dev "github.com/cargogate/cargogate/gateway/device"
)

// Errors that steer the caller, checked with errors.Is.
var (
	// ErrUnknownDriver: no factory is registered under the configured name.
	ErrUnknownDriver = errors.New("unknown driver")
	// ErrNotOpen: the gate's port is not open (device down, or Run not
	// running), so the gate could not be told.
	ErrNotOpen = errors.New("device not open")
	// ErrAckTimeout: the gate did not answer a frame with its ack in time.
	ErrAckTimeout = errors.New("no ack")
	// ErrWriteTimeout: writing a frame to the gate did not complete in time.
	ErrWriteTimeout = errors.New("write timeout")
	// ErrStateUnknown: writing a coil failed in a way that leaves open
	// whether the module got it (a timeout, a garbled or lost answer): the
	// coil may be on. The gate is reported at fault until a new connection
	// has switched every coil off; the caller must not say the gate stayed
	// closed. It is device.ErrStateUnknown, which the station checks.
	ErrStateUnknown = dev.ErrStateUnknown
	// ErrGateOpen: the gate reads open (its closed input) longer than
	// close_timeout after the last open pulse: it was left open.
	ErrGateOpen = errors.New("gate left open")
)

// errHangup: the serial port is gone (a pty or USB adapter hung up).
var errHangup = errors.New("hang-up: empty reads return at once")
