package outbox

import (
	"testing"

	"github.com/cargogate/cargogate/internal/deptest"
)

// The outbox delivers the journal through Source, on gateway/persist's
// types: it imports neither the journal nor bbolt, nor the order link
// (docs/architecture.md).
func TestImports(t *testing.T) {
	deptest.DepChecker{BadDeps: map[string]string{
		"go.etcd.io/bbolt": "the database is the stores' business",
		"github.com/cargogate/cargogate/gateway/store":   "delivery needs no order store",
		"github.com/cargogate/cargogate/gateway/journal": "delivery reads the outbox through Source",
		"github.com/cargogate/cargogate/sync/link":       "the link runs the outbox, not the other way round",
	}}.Check(t)
}
