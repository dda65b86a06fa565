package rules

import (
	"testing"

	"github.com/cargogate/cargogate/internal/deptest"
)

// The decision is pure: no broker, no database, no device, no web.
func TestImports(t *testing.T) {
	deptest.Forbid(t, "paho", "bbolt", "serial", "gorilla", "cargogate/sync", "cargogate/drivers", "cargogate/gateway/store")
}
