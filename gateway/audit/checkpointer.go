package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/tstime"
)

// Journal commits an event durably for central (the journal's outbox).
type Journal interface {
	Append(ctx context.Context, data []byte) (uint64, error)
}

// Checkpointer signs the audit log's head every Interval, when the log has
// grown, and journals it as a checkpoint event for central (docs/protocol.md,
// v1 extension), so central holds proof of what the log was.
type Checkpointer struct {
	Log     *Log
	Journal Journal
	Kid     string             // the gateway's key id
	Key     ed25519.PrivateKey // the gateway's signing key
	Gateway string             // the event's station field: the gateway's id
	// Interval between checkpoints; zero: a minute.
	Interval time.Duration
	// Now gives the checkpoint's time; nil: Time's.
	Now func() time.Time
	// Time is the clock the interval runs on; nil: the real one.
	Time tstime.Clock
	// Logger hears of failures; nil: discarded.
	Logger *slog.Logger

	last uint64 // the log's size at the last checkpoint (Run's loop only)
}

// Run checkpoints every Interval until ctx is done.
func (c *Checkpointer) Run(ctx context.Context) error {
	every := c.Interval
	if every <= 0 {
		every = time.Minute
	}
	t, tc := tstime.Or(c.Time).NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tc:
		}
		c.Checkpoint(ctx)
	}
}

// Checkpoint signs and journals the log's head if the log grew since the
// last checkpoint it made; it reports whether it signed one. A failure is
// logged, and the next call tries again.
func (c *Checkpointer) Checkpoint(ctx context.Context) bool {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	size, _ := c.Log.Head()
	if size == c.last {
		return false
	}
	now := tstime.Or(c.Time).Now
	if c.Now != nil {
		now = c.Now
	}
	cp, err := c.Log.Checkpoint(c.Kid, c.Key, now())
	if err != nil {
		log.Error("audit checkpoint", "err", err)
		return false
	}
	c.last = size
	ev := customs.Event{ID: ulid.Make().String(), Kind: customs.EventCheckpoint, Station: c.Gateway, At: cp.At,
		Checkpoint: &customs.AuditCheckpoint{Size: cp.Size, Head: cp.Head, At: cp.At, Kid: cp.Kid, Sig: cp.Sig}}
	data, _ := json.Marshal(ev)
	if _, err := c.Journal.Append(ctx, data); err != nil {
		log.Error("journal audit checkpoint", "err", err)
	}
	return true
}
