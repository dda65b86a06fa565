package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A binary built as .ci/build-deb builds it (-ldflags -X) reports the
// version, commit and date it was given.
func TestVersionFromLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "cargogate")
	ld := "-X main.version=1.2.3+4.gabcdef -X main.commit=abcdef0123 -X main.buildDate=2026-12-06T10:00:00Z"
	if out, err := exec.Command("go", "build", "-ldflags", ld, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("cargogate version: %v", err)
	}
	if !strings.HasPrefix(string(out), "cargogate 1.2.3+4.gabcdef") {
		t.Errorf("cargogate version printed %q", out)
	}
	var b bytes.Buffer
	defer func(v, c, d string) { version, commit, buildDate = v, c, d }(version, commit, buildDate)
	version, commit, buildDate = "1.2.3", "abcdef0123", "2026-12-06T10:00:00Z"
	printVersion(&b)
	for _, want := range []string{"cargogate 1.2.3\n", "commit abcdef0123\n", "built 2026-12-06T10:00:00Z\n", "go1."} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("version text lacks %q:\n%s", want, b.String())
		}
	}
}
