package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/cargogate/cargogate/sync/link"
)

// TestReview17_SupervisorCellsOnOneLine: on the supervisor screen at every
// landscape size, after a scan of a long code, the stations table's short
// labels (column heads, device and gate states, links to the screens)
// each stay on one line. The last scan's code used to take the table's
// width, so "正常" stood one character a line and the links wrapped
// inside a word.
func TestReview17_SupervisorCellsOnOneLine(t *testing.T) {
	tab := browser(t)
	s := newSiteRole(t, "arrival", `  transit_patterns: ['^TR\d{10}$']
  seal_patterns: ['^SH-\d{6}$']`)
	// A code of 80 characters, as a damaged label gives.
	if got := s.scan("RR" + strings.Repeat("1234567890", 8)); got != "STOP" {
		t.Fatalf("long code: %s", got)
	}
	p := &page{t: t, tab: tab, dir: artifactsDir(t)}
	// Every short label of the stations table whose text spans more than
	// one line box.
	const split = `JSON.stringify([...document.querySelectorAll("#stations th, #stations .st, #stations .vs, #stations a")].filter((e) => {
  const w = document.createTreeWalker(e, NodeFilter.SHOW_TEXT), tops = new Set();
  for (let n = w.nextNode(); n; n = w.nextNode()) {
    const r = document.createRange(); r.selectNodeContents(n);
    for (const x of r.getClientRects()) if (x.width > 0) tops.add(Math.round(x.top));
  }
  return tops.size > 1;
}).map((e) => e.innerText))`
	for _, lang := range []string{"zh", "en"} {
		for _, sz := range screenSizes {
			if sz.w < sz.h {
				continue // portrait: one block per station, by design
			}
			where := fmt.Sprintf("%s supervisor %dx%d", lang, sz.w, sz.h)
			p.do("viewport "+where, chromedp.EmulateViewport(int64(sz.w), int64(sz.h)))
			p.open("http://" + s.gwHTTP + "/supervisor?lang=" + lang)
			p.wait("the station's last scan", `!!document.querySelector('tr[data-station="gate-3"] .vs')`)
			p.wait("fonts", `document.fonts.status === "loaded"`)
			if got := p.eval(split); got != "[]" {
				t.Errorf("%s: labels split over lines: %s", where, got)
			}
		}
	}
}

// TestReview17_DemoNamesARunnableCommand: the demo prints the operator
// commands to try against it. A new user starts it as the README says,
// `go run ./cmd/cargogate demo`, with no cargogate on PATH: the printed
// `cargogate status --config …` then fails with "command not found". The
// demo names the command the way it was started.
func TestReview17_DemoNamesARunnableCommand(t *testing.T) {
	for _, c := range []struct{ arg0, path, want string }{
		{"/tmp/go-build1234/b001/exe/cargogate", "", "go run ./cmd/cargogate"},
		{"./cargogate", "", "./cargogate"},
		{"/tmp/r17/cargogate", "", "/tmp/r17/cargogate"},
		{"cargogate", "/usr/bin/cargogate", "cargogate"},
		{"/usr/bin/cargogate", "/usr/bin/cargogate", "cargogate"},
	} {
		lookPath := func(string) (string, error) {
			if c.path == "" {
				return "", errors.New("not found")
			}
			return c.path, nil
		}
		if got := selfCommand(c.arg0, lookPath); got != c.want {
			t.Errorf("started as %q (cargogate on PATH: %q): demo names %q, want %q", c.arg0, c.path, got, c.want)
		}
	}
}

// TestReview17_UsagePlaceholdersStandAlone: a flag's placeholder in the
// usage text is a word of its own: `demo --help` said "ADDRess of the live
// page" (the placeholder glued to the rest of a word).
func TestReview17_UsagePlaceholdersStandAlone(t *testing.T) {
	glued := regexp.MustCompile(`\b[A-Z]{2,}[a-z]+`)
	for _, c := range commands {
		for _, l := range c.flagLines() {
			if m := glued.FindString(l[1]); m != "" {
				t.Errorf("cargogate %s %s: %q in %q", c.name, l[0], m, l[1])
			}
		}
	}
}

// TestReview17_SinceSaysTheForm: a bad --since names the form expected
// with an example, not Go's layout string "2006-01-02T15:04:05Z07:00".
func TestReview17_SinceSaysTheForm(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte(minimalConfig(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"export", "events"}, {"audit", "export"}} {
		var so, se bytes.Buffer
		code := runMain(context.Background(), append(args, "--since", "1h", "--config", cfg), &so, &se)
		first, _, _ := strings.Cut(se.String(), "\n")
		if code != 2 || strings.Contains(first, "2006") || !strings.Contains(first, "RFC 3339") || !strings.Contains(first, `"1h"`) {
			t.Errorf("%v --since 1h: exit %d, %q; want exit 2 naming RFC 3339 with an example and the value given", args, code, first)
		}
	}
}

// minimalConfig is a valid configuration with its data directory in a
// fresh temporary directory.
func minimalConfig(t *testing.T) string {
	return `site: DEMO
gateway: g01
data_dir: ` + t.TempDir() + `
central:
  broker: tcp://127.0.0.1:1
  keys:
    central-demo: /WV0CiH321X5yRH4CqRzcr0cL6IzoRqwh+tjdwYoIGM=
stations:
  - id: sort-1
    role: sort
    scanner:
      driver: tcp-server
      listen: 127.0.0.1:0
`
}

// TestReview17_MisusedTargetsNamed: `backup FILE` (a file where the
// directory should be) said only "cargogate: open FILE: not a
// directory", exit 1, and `completion zsh` said "give the shell: bash"
// as if no shell had been given. Each names what was given and what is
// wanted, with the usage, exit 2.
func TestReview17_MisusedTargetsNamed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "backup.tar")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"backup", file}, file + " is a file, not a directory"},
		{[]string{"backup", "--force", file}, file + " is a file, not a directory"},
		{[]string{"completion", "zsh"}, `no completion for shell "zsh": only bash`},
	} {
		var so, se bytes.Buffer
		code := runMain(context.Background(), c.args, &so, &se)
		if code != 2 || !strings.Contains(se.String(), c.want) || !strings.Contains(se.String(), "Usage:") {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant exit 2, %q and the usage", c.args, code, se.String(), c.want)
		}
	}
}

// TestReview17_PairMisuseIsUsage: `pair --name 'bad name'` or `--role
// admin` reached the gateway and came back as "cargogate: 400 Bad
// Request: …", exit 1. A name or role the gateway cannot take is a
// misuse: said before any request (no gateway needed), with the usage,
// exit 2.
func TestReview17_PairMisuseIsUsage(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte(minimalConfig(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "bad name"}, `--name "bad name": letters, digits, - and _ (1 to 64)`},
		{[]string{"--name", "k1", "--role", "admin"}, `--role "admin": screens, operator or scan`},
		{[]string{"--revoke", "bad/name"}, `--revoke "bad/name": letters, digits, - and _ (1 to 64)`},
	} {
		var so, se bytes.Buffer
		code := runMain(context.Background(), append([]string{"pair", "--config", cfg}, c.args...), &so, &se)
		if code != 2 || !strings.Contains(se.String(), c.want) || !strings.Contains(se.String(), "Usage:") {
			t.Errorf("pair %v: exit %d, stderr:\n%s\nwant exit 2, %q and the usage", c.args, code, se.String(), c.want)
		}
	}
}

// TestReview17_StatusCountsReadAsEnglish: the status summary said
// "1 messages rejected" and "1 events not yet delivered".
func TestReview17_StatusCountsReadAsEnglish(t *testing.T) {
	raw, err := json.Marshal(map[string]any{"site": "PVG", "gateway": "g01", "version": "1.2.3", "ready": true,
		"link": link.Snapshot{Online: true, PubOnline: true, Rejected: 1, Outbox: 1, OutboxOldest: 3}})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := printStatus(&b, raw); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"; 1 message rejected", "outbox   1 event not yet delivered"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("lacks %q:\n%s", w, b.String())
		}
	}
}
