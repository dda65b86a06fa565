package station

import (
	"testing"

	"github.com/cargogate/cargogate/internal/deptest"
)

// The station decides and journals through interfaces: no device library,
// no broker, no database, no web (docs/architecture.md).
func TestImports(t *testing.T) {
	bad := deptest.Core()
	bad["github.com/cargogate/cargogate/gateway/store"] = "the station decides through Decider"
	bad["github.com/cargogate/cargogate/gateway/journal"] = "the station journals through Journal"
	deptest.DepChecker{BadDeps: bad}.Check(t)
}
