// Package deptest checks a package's transitive imports, so that the
// arrows of the house (docs/architecture.md) are enforced by tests. It is
// the one helper for that: a package's test declares what it must not
// depend on and calls Check.
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

// DepChecker lists what a package may not depend on, directly or not.
type DepChecker struct {
	// Pkg is the package checked, as given to go list; "" is the package
	// in the current directory (a test's own).
	Pkg string
	// BadDeps maps a forbidden import path, or a path prefix ending in
	// "/" (e.g. "github.com/gorilla/"), to why it is forbidden.
	BadDeps map[string]string
	// Allow lists paths that a BadDeps prefix would forbid but that are
	// allowed (e.g. "github.com/gorilla/websocket" under "github.com/gorilla/").
	Allow []string
}

// Check fails t for every dependency of the package, its own test files
// not counted, that BadDeps forbids.
func (c DepChecker) Check(t testing.TB) {
	t.Helper()
	pkg := c.Pkg
	if pkg == "" {
		pkg = "."
	}
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatalf("go list -deps %s: no packages", pkg)
	}
	name := pkg
	if pkg == "." {
		name = deps[len(deps)-1] // the package itself comes last
	}
	for _, dep := range deps {
		if why, bad := c.forbids(dep); bad {
			t.Errorf("%s depends on %s: %s", name, dep, why)
		}
	}
}

// forbids reports whether dep is forbidden, and why.
func (c DepChecker) forbids(dep string) (string, bool) {
	for _, a := range c.Allow {
		if dep == a || strings.HasPrefix(dep, a+"/") {
			return "", false
		}
	}
	for bad, why := range c.BadDeps {
		if dep == bad || strings.HasPrefix(dep, strings.TrimSuffix(bad, "/")+"/") {
			return why, true
		}
	}
	return "", false
}

// Core is what the decision core (station, screens, arrival, rules, ident)
// may not depend on: no device, broker, database or web library, none of
// the gateway's own device, configuration or link packages.
func Core() map[string]string {
	const mod = "github.com/cargogate/cargogate/"
	return map[string]string{
		"github.com/tarm/serial":              "a serial library: devices are behind gateway/device",
		"github.com/goburrow/serial":          "a serial library: devices are behind gateway/device",
		"github.com/simonvetter/modbus":       "the Modbus library: devices are behind gateway/device",
		"go.yaml.in/yaml/":                    "YAML is config's business",
		"gopkg.in/yaml.v3":                    "YAML is config's business",
		"gopkg.in/yaml.v2":                    "YAML is config's business",
		"github.com/eclipse/paho.mqtt.golang": "MQTT is the link's business",
		"go.etcd.io/bbolt":                    "storage is behind interfaces (store, journal)",
		"github.com/gorilla/":                 "web libraries are the screens' business",
		mod + "drivers":                       "the core consumes gateway/device, drivers implement it",
		mod + "config":                        "the core is given its settings, it does not read config",
		mod + "sync":                          "the link is behind an interface",
	}
}
