// Package deptest checks a package's transitive imports, so that the
// arrows of the house (docs/architecture.md) are enforced by tests.
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

// Forbid fails t if the package in the current directory depends, directly
// or not, on a package whose path contains one of bad.
func Forbid(t *testing.T, bad ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, b := range bad {
			if strings.Contains(dep, b) {
				t.Errorf("depends on %s (forbidden: %q)", dep, b)
			}
		}
	}
}
