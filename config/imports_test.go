package config_test

import (
	"testing"

	"github.com/cargogate/cargogate/internal/deptest"
)

// config is below every other package of ours: the drivers register their
// sections with it, not the other way round (docs/architecture.md).
func TestImports(t *testing.T) {
	const mod = "github.com/cargogate/cargogate/"
	deptest.DepChecker{BadDeps: map[string]string{
		mod: "config imports none of our packages; drivers register their sections with it",
	}, Allow: []string{mod + "config"}}.Check(t)
}
