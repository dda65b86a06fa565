// Package liveness is the registry the gateway's long-running loops (the
// link's control loop, each station's loop) tick while they run, so that
// the systemd watchdog is fed only while every one of them is turning.
package liveness

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Registry holds the loops that are running. The zero value is ready; a
// nil *Registry registers nothing.
type Registry struct {
	// Now reads the time; nil: time.Now. Tests set it.
	Now func() time.Time

	mu    sync.Mutex
	beats map[*Beat]struct{}
}

// Beat is one loop's heartbeat. The methods of a nil *Beat do nothing.
type Beat struct {
	name string
	r    *Registry
	last atomic.Int64 // unix nanoseconds of the last tick
}

func (r *Registry) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Beat registers a loop named name, ticked now; the loop ticks it on each
// turn and stops it when it returns.
func (r *Registry) Beat(name string) *Beat {
	if r == nil {
		return nil
	}
	b := &Beat{name: name, r: r}
	b.last.Store(r.now().UnixNano())
	r.mu.Lock()
	if r.beats == nil {
		r.beats = map[*Beat]struct{}{}
	}
	r.beats[b] = struct{}{}
	r.mu.Unlock()
	return b
}

// Tick records that the loop turned.
func (b *Beat) Tick() {
	if b != nil {
		b.last.Store(b.r.now().UnixNano())
	}
}

// Stop removes the loop from the registry (it returned).
func (b *Beat) Stop() {
	if b == nil {
		return
	}
	b.r.mu.Lock()
	delete(b.r.beats, b)
	b.r.mu.Unlock()
}

// Stale returns, sorted, the names of the loops that have not ticked for
// longer than maxAge; none: every registered loop is alive.
func (r *Registry) Stale(maxAge time.Duration) []string {
	if r == nil {
		return nil
	}
	now := r.now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for b := range r.beats {
		if time.Duration(now-b.last.Load()) > maxAge {
			out = append(out, b.name)
		}
	}
	sort.Strings(out)
	return out
}

// Len is the number of loops registered.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.beats)
}
