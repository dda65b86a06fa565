package station

import "time"

// SetLookupTimeout changes the lookup timeout (config reload) without
// stopping the station; ≤ 0 turns lookups off.
func (s *Station) SetLookupTimeout(d time.Duration) { s.lookup.Store(&d) }

// LookupTimeout returns the lookup timeout in force.
func (s *Station) LookupTimeout() time.Duration {
	if d := s.lookup.Load(); d != nil {
		return *d
	}
	return s.cfg.LookupTimeout
}
