package journal

import (
	"encoding/binary"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fill is the outbox's fill level in percent of its fuller bound; 0 when
// unbounded. j.mu held.
func (j *Journal) fill() float64 {
	var f float64
	if j.opts.MaxEvents > 0 {
		f = 100 * float64(j.count) / float64(j.opts.MaxEvents)
	}
	if j.opts.MaxBytes > 0 {
		f = max(f, 100*float64(j.bytes)/float64(j.opts.MaxBytes))
	}
	return f
}

// checkAlarm raises or clears the alarm, logging each change once. j.mu held.
func (j *Journal) checkAlarm() {
	on := j.fill() >= float64(j.opts.AlarmPercent)
	if on == j.alarm {
		return
	}
	j.alarm = on
	if on {
		j.opts.Log.Warn("outbox nearly full: events are not reaching central", "events", j.count, "bytes", j.bytes,
			"max_events", j.opts.MaxEvents, "max_bytes", j.opts.MaxBytes, "alarm_percent", j.opts.AlarmPercent)
	} else {
		j.opts.Log.Info("outbox below its alarm level again", "events", j.count, "bytes", j.bytes)
	}
}

// Health is the outbox's state for status pages and readiness.
type Health struct {
	Events    int     `json:"events"`     // undelivered events
	Bytes     int64   `json:"bytes"`      // their JSON bytes
	MaxEvents int     `json:"max_events"` // 0: no bound
	MaxBytes  int64   `json:"max_bytes"`  // 0: no bound
	Fill      float64 `json:"fill_percent"`
	// Alarm is set while Fill ≥ AlarmPercent: the outbox is nearly full.
	Alarm        bool `json:"alarm"`
	AlarmPercent int  `json:"alarm_percent"`
	// Refused counts appends refused because the outbox was full, and
	// Failed appends whose commit failed, since the journal was opened.
	Refused uint64 `json:"refused"`
	Failed  uint64 `json:"failed"`
	// Writable is false while the last commit failed; LastError says why.
	Writable  bool   `json:"writable"`
	LastError string `json:"last_error,omitempty"`
}

// Health returns the outbox's counters and alarm.
func (j *Journal) Health() Health {
	j.mu.Lock()
	defer j.mu.Unlock()
	return Health{Events: j.count, Bytes: j.bytes, MaxEvents: j.opts.MaxEvents, MaxBytes: j.opts.MaxBytes,
		Fill: j.fill(), Alarm: j.alarm, AlarmPercent: j.opts.AlarmPercent, Refused: j.refused, Failed: j.failed,
		Writable: j.lastErr == "", LastError: j.lastErr}
}

// OldestPending returns when the oldest undelivered event was appended,
// read from the file each time (so it is right after any delivery), and
// false when nothing is pending. An event journalled before the append
// time was kept falls back to its own "at" field.
func (j *Journal) OldestPending() (time.Time, bool, error) {
	var at time.Time
	var ok bool
	err := j.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bPending).Cursor().First()
		if k == nil {
			return nil
		}
		ok = true
		if t := tx.Bucket(bPendingAt).Get(k); len(t) == 8 {
			at = time.Unix(0, int64(binary.BigEndian.Uint64(t)))
			return nil
		}
		var probe struct {
			At time.Time `json:"at"`
		}
		if json.Unmarshal(v, &probe) == nil {
			at = probe.At
		}
		return nil
	})
	return at, ok, err
}

// Depth is the number and bytes of undelivered events.
func (j *Journal) Depth() (events int, bytes int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.count, j.bytes
}
