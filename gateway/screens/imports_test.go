package screens

import (
	"testing"

	"github.com/cargogate/cargogate/internal/deptest"
)

// The screens show outcomes: no device library, no broker, no database;
// of the web libraries only the WebSocket one.
func TestImports(t *testing.T) {
	bad := deptest.Core()
	bad["github.com/cargogate/cargogate/gateway/store"] = "the screens read the store through interfaces"
	bad["github.com/cargogate/cargogate/gateway/journal"] = "the screens read the journal through interfaces"
	bad["github.com/cargogate/cargogate/cmd"] = "the screens sit inside gateway/"
	deptest.DepChecker{BadDeps: bad, Allow: []string{"github.com/gorilla/websocket"}}.Check(t)
}
