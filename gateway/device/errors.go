package device

import "errors"

// ErrStateUnknown: telling the gate failed in a way that leaves open
// whether the controller got it (a timeout, a garbled or lost answer): an
// output may be on. The gate is reported at fault until a new connection
// has switched every output off; the caller must not say the gate stayed
// closed.
var ErrStateUnknown = errors.New("coil state unknown")
