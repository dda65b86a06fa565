package ident

import (
	"testing"

	"github.com/cargogate/cargogate/internal/deptest"
)

// Classifying codes is pure: no transports, no devices (STYLE.md).
func TestImports(t *testing.T) {
	bad := deptest.Core()
	deptest.DepChecker{BadDeps: bad}.Check(t)
}
