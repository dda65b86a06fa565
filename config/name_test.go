package config

import (
	"testing"

	"github.com/cargogate/cargogate/gateway/customs"
)

// The name pattern is copied from customs so that config does not import
// the customs model; the two must stay the same.
func TestNamePatternMatchesCustoms(t *testing.T) {
	if got, want := nameRE.String(), customs.NameRE.String(); got != want {
		t.Fatalf("config name pattern %q, customs %q", got, want)
	}
	for _, s := range []string{"PVG-W", "g07", "gate_3", "", "a b", "é", "x/y", string(make([]byte, 65))} {
		if nameRE.MatchString(s) != customs.NameRE.MatchString(s) {
			t.Errorf("%q: config %v, customs %v", s, nameRE.MatchString(s), customs.NameRE.MatchString(s))
		}
	}
}
