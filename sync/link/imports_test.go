package link

import (
	"testing"

	"github.com/cargogate/cargogate/internal/deptest"
)

// The link consumes the order store and the event journal through its own
// interfaces on gateway/persist's types: it imports neither, nor bbolt
// (docs/architecture.md).
func TestImports(t *testing.T) {
	deptest.DepChecker{BadDeps: map[string]string{
		"go.etcd.io/bbolt": "the database is the stores' business",
		"github.com/cargogate/cargogate/gateway/store":   "the link applies orders through Store",
		"github.com/cargogate/cargogate/gateway/journal": "the link reads the outbox through Outbox",
	}}.Check(t)
}
