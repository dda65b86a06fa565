package drivers

import (
	"context"

	"github.com/cargogate/cargogate/config"
)

// HandheldConfig is the section of scanner driver handheld: no keys. The
// codes come from the handheld devices paired to the station, through the
// gateway's page (/h/{station}); the station has no gate.
type HandheldConfig struct{}

// SetDefaults implements config.Section.
func (*HandheldConfig) SetDefaults() {}

// Check implements config.Section.
func (*HandheldConfig) Check(*config.Problems) {}

// Handheld is the scanner of a handheld station (driver handheld): its
// reads are the scans the station's paired devices send over the gateway's
// WebSocket, passed in by Submit. The gateway binds it to the page's hub
// (screens.Hub.BindHandheld).
type Handheld struct {
	reads chan Read
}

var _ Scanner = (*Handheld)(nil)

func newHandheld(HandheldConfig) (Scanner, error) { return NewHandheld(), nil }

// NewHandheld returns a handheld scanner.
func NewHandheld() *Handheld { return &Handheld{reads: make(chan Read)} }

// Run reports Up and emits each submitted read until ctx is done. The
// devices' own connections are the screens' concern.
func (h *Handheld) Run(ctx context.Context, emit func(Read), state StateFunc) error {
	rep := newReporter(state)
	defer rep.flush()
	rep.set(Up, "handheld page served")
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-h.reads:
			emit(r)
		}
	}
}

// Submit hands r to Run; it returns once Run has taken it, or ctx's error
// (Run not running, or the station busy that long).
func (h *Handheld) Submit(ctx context.Context, r Read) error {
	select {
	case h.reads <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
