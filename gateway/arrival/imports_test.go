package arrival

import (
	"testing"

	"github.com/cargogate/cargogate/internal/deptest"
)

// Counting transits is pure but for its Persister: no device, broker,
// database or web library.
func TestImports(t *testing.T) {
	bad := deptest.Core()
	deptest.DepChecker{BadDeps: bad}.Check(t)
}
