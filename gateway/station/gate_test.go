package station_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/station"
)

// errGate fails every Signal with err.
type errGate struct{ err error }

func (g errGate) Run(ctx context.Context, _ device.StateFunc) error { <-ctx.Done(); return nil }
func (g errGate) Signal(context.Context, bool) error                { return g.err }

type memJournal struct{}

func (memJournal) Append(context.Context, []byte) (uint64, error) { return 1, nil }

// A gate the driver could not tell stays closed ("fault"); one whose signal
// may have reached it (a coil write that timed out) is "unknown", never
// shown as closed.
func TestGateOutcomeUnknown(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("gate: pass: %w", errors.New("device not open")), "fault"},
		{fmt.Errorf("gate: pass: %w: coil 16 on: request timed out", device.ErrStateUnknown), "unknown"},
		{errors.New("no ack"), "fault"},
	} {
		st := station.New(station.Config{ID: "gate-3", Role: "gate", Classifier: classifier(t), Gate: errGate{tc.err}},
			passAll{}, memJournal{}, nil, wallClock{}, nil, slog.New(slog.DiscardHandler))
		out := scan(st, "LP00000000000001")
		if !out.Pass || out.Gate != tc.want {
			t.Errorf("%v: pass %v, gate %q; want gate %q", tc.err, out.Pass, out.Gate, tc.want)
		}
		if d := st.Devices()["gate"]; d != device.Fault {
			t.Errorf("%v: gate device %q, want fault", tc.err, d)
		}
	}
}
