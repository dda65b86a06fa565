package outbox

import "github.com/cargogate/cargogate/gateway/journal"

// The event journal is a Source that can put delivered events back. Only
// the tests import it (imports_test.go).
var (
	_ Source  = (*journal.Journal)(nil)
	_ Afterer = (*journal.Journal)(nil)
)
