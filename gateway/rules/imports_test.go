package rules

import (
	"testing"

	"github.com/cargogate/cargogate/internal/deptest"
)

// The decision is pure: no broker, no database, no device, no web.
func TestImports(t *testing.T) {
	bad := deptest.Core()
	bad["github.com/cargogate/cargogate/gateway/store"] = "the decision reads a State, not the store"
	deptest.DepChecker{BadDeps: bad}.Check(t)
}
