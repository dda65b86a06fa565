package config

import "testing"

type testSection struct {
	Speed int `yaml:"speed"`
}

func (*testSection) SetDefaults()      {}
func (*testSection) Check(p *Problems) {}

func panics(f func()) (p bool) {
	defer func() { p = recover() != nil }()
	f()
	return false
}

// Registration refuses what is not a registration, before it registers
// anything. (The drivers, linked by the external tests, registered
// serial.)
func TestRegisterSection(t *testing.T) {
	newTest := func() Section { return new(testSection) }
	for name, f := range map[string]func(){
		"empty name": func() { RegisterSection(ScannerKind, "", newTest) },
		"nil":        func() { RegisterSection(ScannerKind, "t2", nil) },
		"kind":       func() { RegisterSection("printer", "t3", newTest) },
		"twice":      func() { RegisterSection(GateKind, "serial", newTest) },
	} {
		if !panics(f) {
			t.Errorf("%s: no panic", name)
		}
	}
}

func TestSuggest(t *testing.T) {
	fields := []field{{"gap_grace", nil}, {"resync_timeout", nil}, {"lookup_timeout", nil}, {"keys", nil}}
	for _, tc := range []struct{ key, want string }{
		{"gap_grase", "; did you mean central.gap_grace?"},
		{"GapGrace", "; did you mean central.gap_grace?"},
		{"resync-timeout", "; did you mean central.resync_timeout?"},
		{"lookup_timeuot", "; did you mean central.lookup_timeout?"},
		{"key", "; did you mean central.keys?"},
		{"colour", " (valid here: gap_grace, resync_timeout, lookup_timeout, keys)"},
	} {
		if _, got := suggest("central", tc.key, fields); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}
