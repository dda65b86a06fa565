package store

import "github.com/cargogate/cargogate/gateway/persist"

// The types at the store's interface are gateway/persist's, so that the
// link consumes the store through its own interfaces without importing it
// (or bbolt): *Store satisfies them as it is.
type (
	// Batch is what one commit applies.
	Batch = persist.Batch
	// Conflict is an order whose seq was applied before with other content.
	Conflict = persist.Conflict
	// Result tells what a commit did.
	Result = persist.Result
	// Progress is the store's view of where it stands against central.
	Progress = persist.Progress
)
