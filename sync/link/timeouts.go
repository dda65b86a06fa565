package link

import "time"

type timeouts struct{ gapGrace, resyncTimeout time.Duration }

// SetTimeouts changes gap_grace and resync_timeout in place (a
// configuration reload); zero is the default, as in Options. The control
// loop goes by them from its next round.
func (l *Link) SetTimeouts(gapGrace, resyncTimeout time.Duration) {
	if gapGrace == 0 {
		gapGrace = 2 * time.Second
	}
	if resyncTimeout == 0 {
		resyncTimeout = 30 * time.Second
	}
	l.timeouts.Store(&timeouts{gapGrace: gapGrace, resyncTimeout: resyncTimeout})
}

// Timeouts returns the gap_grace and resync_timeout in force.
func (l *Link) Timeouts() (gapGrace, resyncTimeout time.Duration) {
	t := l.timeouts.Load()
	return t.gapGrace, t.resyncTimeout
}
