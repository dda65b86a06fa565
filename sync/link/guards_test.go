package link

import (
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/store"
)

// The concrete stores have the optional abilities the link looks for. Only
// the tests import them: the link itself does not (imports_test.go).
var (
	_ Store        = (*store.Store)(nil)
	_ seqReader    = (*store.Store)(nil)
	_ gapLister    = (*store.Store)(nil)
	_ Outbox       = (*journal.Journal)(nil)
	_ OutboxHealth = (*journal.Journal)(nil)
)
