package deptest

import "testing"

// The leaf packages under the core (the scan types, the device interfaces,
// the persistence interfaces, the clock, the customs model) have no test
// of their own that checks their imports: they are checked here, against
// the same list as the core. station, screens, arrival, rules and ident
// check themselves (their imports_test.go).
func TestCoreLeaves(t *testing.T) {
	const mod = "github.com/cargogate/cargogate/"
	for _, pkg := range []string{
		"gateway/scan", "gateway/device", "gateway/persist", "gateway/clock", "gateway/customs",
	} {
		t.Run(pkg, func(t *testing.T) {
			DepChecker{Pkg: mod + pkg, BadDeps: Core()}.Check(t)
		})
	}
}
