package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// commit and buildDate are set at build time with -ldflags "-X
// main.version=… -X main.commit=… -X main.buildDate=…" (.ci/build-deb).
// A plain go build in a git checkout takes them from the VCS stamp Go
// records instead (buildInfo).
var (
	commit    = ""
	buildDate = ""
)

func init() { version, commit, buildDate = buildInfo(version, commit, buildDate) }

// buildInfo fills what the linker did not set from the module's VCS stamp:
// version 0.0.0+g<12 hex digits of the commit>[.dirty], the same form
// .ci/version gives a build with no release tag.
func buildInfo(v, c, d string) (string, string, string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v, c, d
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if c == "" && rev != "" {
		c = rev
		if dirty {
			c += "-dirty"
		}
	}
	if d == "" {
		d = at // the commit's time: a plain build records no build time
	}
	if v == "dev" && rev != "" {
		v = "0.0.0+g" + rev[:min(12, len(rev))]
		if dirty {
			v += ".dirty"
		}
	}
	return v, c, d
}

// printVersion prints what `cargogate version` prints: the version, the
// commit, the build date and the Go release and platform.
func printVersion(stdout io.Writer) error {
	fmt.Fprintf(stdout, "cargogate %s\ncommit %s\nbuilt %s\n%s %s/%s\n", version, orUnknown(commit),
		orUnknown(buildDate), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "unknown"
	}
	return s
}
