package deptest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps the failures instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
}
func (r *recorder) Fatalf(format string, a ...any) {
	r.errs = append(r.errs, "fatal: "+fmt.Sprintf(format, a...))
}

// The checker finds a dependency that is there (drivers on the serial
// library, through a prefix) and passes one that is allowed.
func TestCheckFinds(t *testing.T) {
	r := &recorder{TB: t}
	DepChecker{Pkg: "github.com/cargogate/cargogate/drivers", BadDeps: map[string]string{
		"github.com/tarm/": "test: a serial library",
	}}.Check(r)
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "github.com/tarm/serial") {
		t.Errorf("drivers vs tarm: got %q, want one failure naming github.com/tarm/serial", r.errs)
	}

	r = &recorder{TB: t}
	DepChecker{Pkg: "github.com/cargogate/cargogate/drivers", BadDeps: map[string]string{
		"github.com/tarm/": "test",
	}, Allow: []string{"github.com/tarm/serial"}}.Check(r)
	if len(r.errs) != 0 {
		t.Errorf("allowed dependency reported: %q", r.errs)
	}
}

func TestForbids(t *testing.T) {
	c := DepChecker{
		BadDeps: map[string]string{"github.com/gorilla/": "web", "example.com/a": "a"},
		Allow:   []string{"github.com/gorilla/websocket"},
	}
	for dep, want := range map[string]bool{
		"github.com/gorilla/mux":            true,
		"github.com/gorilla/websocket":      false,
		"github.com/gorilla/websocket/sub":  false,
		"example.com/a":                     true,
		"example.com/a/b":                   true,
		"example.com/ab":                    false, // a path prefix, not a string prefix
		"github.com/cargogate/cargogate/rx": false,
	} {
		if _, got := c.forbids(dep); got != want {
			t.Errorf("forbids(%q) = %v, want %v", dep, got, want)
		}
	}
}
