package journal

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

// Health returns the outbox's counters and alarm.
func (j *Journal) Health() Health {
	j.mu.Lock()
	defer j.mu.Unlock()
	return Health{Events: j.count, Bytes: j.bytes, MaxEvents: j.opts.MaxEvents, MaxBytes: j.opts.MaxBytes,
		Fill: j.fill(), Alarm: j.alarm, AlarmPercent: j.opts.AlarmPercent, Refused: j.refused, Failed: j.failed,
		Writable: j.lastErr == "", LastError: j.lastErr}
}

// Depth is the number and bytes of undelivered events.
func (j *Journal) Depth() (events int, bytes int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.count, j.bytes
}
