package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Outbox bounds the event outbox (data_dir/events.db): the events not yet
// acknowledged by central's broker.
type Outbox struct {
	// MaxEvents is the most undelivered events kept. Beyond it a scan's
	// event is refused, so the scan is decided STOP (reason error) and the
	// gate stays closed. Default 1,000,000.
	MaxEvents int `yaml:"max_events"`
	// MaxBytes is the most bytes of undelivered event JSON, an integer or
	// a number with a unit (KB, MB, GB, KiB, MiB, GiB). Default 1GiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// AlarmPercent is the fill level, in percent of the fuller bound, at
	// which the outbox alarm is raised (status page, log), 1..99.
	// Default 80.
	AlarmPercent int `yaml:"alarm_percent"`
	// RedeliverWindow is deprecated and ignored (a warning names it):
	// since PROTOCOL amendment 3 an event leaves the outbox only when
	// central's events_ack names it, and one not acknowledged within
	// central.ack_timeout is sent again. Still accepted so that existing
	// configuration files load.
	RedeliverWindow time.Duration `yaml:"redeliver_window"`
}

// ByteSize is a number of bytes, written in YAML as an integer or as a
// number with a unit: 512MiB, 1GiB, 100KB.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseByteSize reads "1GiB", "512 MiB", "100KB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || (n > 0 && mult > (1<<63-1)/n) {
		return 0, fmt.Errorf("%q is not a size (an integer of bytes, or e.g. 512MiB, 1GiB)", s)
	}
	return ByteSize(n * mult), nil
}

// UnmarshalYAML accepts an integer or a string with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a size such as 1GiB", n.Line)
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

func (o *Outbox) applyDefaults() {
	if o.MaxEvents == 0 {
		o.MaxEvents = DefaultOutboxMaxEvents
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultOutboxMaxBytes
	}
	if o.AlarmPercent == 0 {
		o.AlarmPercent = DefaultOutboxAlarmPercent
	}
}

func (o *Outbox) validate(p *Problems) {
	if o.MaxEvents < 0 {
		p.Add("outbox.max_events", "must be positive (got %d)", o.MaxEvents)
	}
	if o.MaxBytes < 0 {
		p.Add("outbox.max_bytes", "must be positive (got %d)", o.MaxBytes)
	}
	if o.AlarmPercent < 1 || o.AlarmPercent > 99 {
		p.Add("outbox.alarm_percent", "must be 1..99, so that the alarm comes before any event is refused (got %d)", o.AlarmPercent)
	}
}
