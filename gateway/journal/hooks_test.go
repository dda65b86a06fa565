package journal

import "time"

// SetMoveDelay sets how long the mover waits before it moves, for the
// crash tests' children (each sets it once, before opening).
func SetMoveDelay(d time.Duration) { moveDelay = d }
