package journal

import "github.com/cargogate/cargogate/gateway/persist"

// The types at the journal's interface are gateway/persist's, so that the
// link and the outbox consume the journal through their own interfaces
// without importing it (or bbolt): *Journal satisfies them as it is.
type (
	// Entry is one journalled event.
	Entry = persist.Entry
	// Health is the outbox's state for status pages and readiness.
	Health = persist.OutboxHealth
)
