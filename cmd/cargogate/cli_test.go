package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/drivers"
	"github.com/cargogate/cargogate/sync/link"
)

// TestUsage runs every command of the table misused and with --help:
// misuse prints what is wrong and the command's usage with an example on
// stderr and exits 2; --help and -h print the usage on stdout and exit 0.
func TestUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	misuse := map[string][][]string{
		"run":          {{"--config", missing}, {"--bogus"}, {"extra"}, {"--config"}},
		"demo":         {{"--bogus"}, {"extra"}, {"--pace", "soon"}},
		"check-config": {{}, {"a", "b"}},
		"keys":         {{"--config", missing}, {"--config"}},
		"status":       {{"--config", missing}, {"--json=maybe"}},
		"inspect":      {{}, {"A", "B"}, {"RR123456785CN", "--config", missing}},
		"export":       {{}, {"orders"}, {"events", "--since", "yesterday"}, {"events", "--config", missing}},
		"pair":         {{"--bogus"}, {"--config", missing, "--name", "w"}},
		"backup":       {{}, {full, "--config", missing}, {full}},
		"audit":        {{}, {"frob"}, {"--config", missing}, {"verify", "--config", missing}},
		"compact":      {{"--config", missing}, {"extra"}},
		"completion":   {{}, {"tcsh"}},
		"man":          {{"extra"}},
		"version":      {{"extra"}},
	}
	for _, c := range commands {
		if c.name == "help" {
			continue
		}
		if len(misuse[c.name]) == 0 {
			t.Errorf("no misuse case for %s", c.name)
		}
		for _, args := range misuse[c.name] {
			t.Run(c.name+" "+strings.Join(args, " "), func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				code := runMain(context.Background(), append([]string{c.name}, args...), &stdout, &stderr)
				e := stderr.String()
				if code != 2 || stdout.Len() != 0 || !strings.HasPrefix(e, "cargogate "+c.name+": ") ||
					!strings.Contains(e, "Usage: cargogate "+c.name) || !strings.Contains(e, "Example:\n  cargogate "+c.name) {
					t.Errorf("exit %d, stdout %q, stderr:\n%s", code, stdout.String(), e)
				}
			})
		}
		for _, h := range []string{"--help", "-h"} {
			args := []string{c.name, h}
			if len(c.subs) > 0 {
				args = []string{c.name, c.subs[0], h}
			}
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				code := runMain(context.Background(), args, &stdout, &stderr)
				if code != 0 || stderr.Len() != 0 || !strings.HasPrefix(stdout.String(), "Usage: cargogate "+c.name) ||
					!strings.Contains(stdout.String(), "Example:\n  cargogate "+c.name) {
					t.Errorf("exit %d, stderr %q, stdout:\n%s", code, stderr.String(), stdout.String())
				}
				if c.flags != nil && !strings.Contains(stdout.String(), "Flags:\n  --") {
					t.Errorf("no flags listed:\n%s", stdout.String())
				}
			})
		}
		// The documented default: every command reading the configuration
		// reads /etc/cargogate/cargogate.yaml unless told otherwise.
		if fs := flagsFor(c.name); fs.Lookup("config") != nil && fs.Lookup("config").DefValue != defaultConfig {
			t.Errorf("%s --config defaults to %q", c.name, fs.Lookup("config").DefValue)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string // prefix of stdout
		err  string // prefix of stderr
	}{
		{nil, 2, "", "cargogate: no command given\n\ncargogate — "},
		{[]string{"frobnicate"}, 2, "", "cargogate: unknown command \"frobnicate\"\n\ncargogate — "},
		{[]string{"help"}, 0, "cargogate — ", ""},
		{[]string{"--help"}, 0, "cargogate — ", ""},
		{[]string{"-h"}, 0, "cargogate — ", ""},
		{[]string{"help", "backup"}, 0, "Usage: cargogate backup DIR", ""},
		{[]string{"help", "frobnicate"}, 2, "", "cargogate help: unknown command"},
		{[]string{"version"}, 0, "cargogate ", ""},
		{[]string{"--version"}, 0, "cargogate ", ""},
	} {
		var stdout, stderr bytes.Buffer
		code := runMain(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.HasPrefix(stdout.String(), tc.out) || !strings.HasPrefix(stderr.String(), tc.err) ||
			(tc.out == "" && stdout.Len() > 0) || (tc.err == "" && stderr.Len() > 0) {
			t.Errorf("%q: exit %d, stdout:\n%s\nstderr:\n%s", tc.args, code, stdout.String(), stderr.String())
		}
	}
	// Every command is in the overview.
	g := globalUsage()
	for _, c := range commands {
		if !strings.Contains(g, "cargogate "+c.name) {
			t.Errorf("usage lacks %s", c.name)
		}
	}
}

// TestCompletionAndMan: the bash completion parses and knows every
// command and flag; the man page has every command and flag.
func TestCompletionAndMan(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runMain(context.Background(), []string{"completion", "bash"}, &stdout, &stderr); code != 0 {
		t.Fatalf("completion bash: %d %s", code, stderr.String())
	}
	script := stdout.String()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	f := filepath.Join(t.TempDir(), "cargogate.bash")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", f).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	// Ask the completion function itself.
	complete := func(words ...string) string {
		t.Helper()
		prog := ". " + f + "; COMP_WORDS=(" + strings.Join(words, " ") + "); COMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "; _cargogate; echo \"${COMPREPLY[*]}\""
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("complete %q: %v\n%s", words, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := complete("cargogate", "ba"); got != "backup" {
		t.Errorf("cargogate ba<TAB>: %q", got)
	}
	if got := complete("cargogate", "audit", ""); got != "verify export" {
		t.Errorf("cargogate audit <TAB>: %q", got)
	}
	if got := complete("cargogate", "backup", "--f"); got != "--force" {
		t.Errorf("cargogate backup --f<TAB>: %q", got)
	}
	if got := complete("cargogate", "status", "--"); !strings.Contains(got, "--json") || !strings.Contains(got, "--config") {
		t.Errorf("cargogate status --<TAB>: %q", got)
	}
	stdout.Reset()
	if code := runMain(context.Background(), []string{"man"}, &stdout, &stderr); code != 0 {
		t.Fatalf("man: %d %s", code, stderr.String())
	}
	man := stdout.String()
	if !strings.HasPrefix(man, ".TH CARGOGATE 1") {
		t.Errorf("man page starts %q", man[:min(len(man), 40)])
	}
	for _, c := range commands {
		if !strings.Contains(man, ".SS cargogate "+roff(c.name)) {
			t.Errorf("man page lacks %s", c.name)
		}
		flagsFor(c.name).VisitAll(func(fl *flag.Flag) {
			if !strings.Contains(man, ".B "+roff("--"+fl.Name)) {
				t.Errorf("man page lacks %s --%s", c.name, fl.Name)
			}
		})
	}
}

// TestStatusSummary prints the status document of a gateway, built from
// the link's real snapshot type, as a person reads it.
func TestStatusSummary(t *testing.T) {
	since := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	doc := map[string]any{"site": "PVG", "gateway": "g01", "version": "1.2.3", "ready": true, "store_writable": true,
		"link": link.Snapshot{Online: true, PubOnline: true, Since: since, Watermark: 120, Head: 123, Lag: 3, Outbox: 7, OutboxOldest: 42,
			Rejected: 2, LastReject: "bad signature", StoreWritable: true, Ready: true, Alarms: []string{"outbox_filling"}},
		"alarms":   []string{"outbox_filling"},
		"stations": []link.StationStatus{{ID: "gate-3", Devices: map[string]drivers.State{"scanner": "up", "gate": "fault"}}, {ID: "arr-1"}},
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := printStatus(&b, raw); err != nil {
		t.Fatal(err)
	}
	want := `gateway  PVG/g01, version 1.2.3, ready
link     online since 2026-12-06T08:00:00Z
orders   applied up to seq 120 of central's head 123: lag 3; 2 messages rejected (last: bad signature)
outbox   7 events not yet delivered to central, oldest 42s
alarms   outbox_filling
stations 2
  gate-3     gate fault, scanner up
  arr-1      no devices reported
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	doc["ready"] = false
	doc["link"] = link.Snapshot{}
	doc["alarms"] = nil
	raw, _ = json.Marshal(doc)
	b.Reset()
	if err := printStatus(&b, raw); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"NOT READY", "link     OFFLINE (events connection down)", "alarms   none"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("lacks %q:\n%s", w, b.String())
		}
	}
	// central.brokers: the broker each connection is on.
	doc["link"] = link.Snapshot{Online: true, PubOnline: true, Broker: "tcp://mq2:1883", EventsBroker: "tcp://mq1:1883",
		Brokers: []string{"tcp://mq1:1883", "tcp://mq2:1883"}}
	raw, _ = json.Marshal(doc)
	b.Reset()
	if err := printStatus(&b, raw); err != nil {
		t.Fatal(err)
	}
	if w := "on tcp://mq2:1883 (events on tcp://mq1:1883)"; !strings.Contains(b.String(), w) {
		t.Errorf("lacks %q:\n%s", w, b.String())
	}
}

// TestBackupRefusesFullDir: an existing, non-empty directory is refused
// before anything is written, unless --force.
func TestBackupRefusesFullDir(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, ordersFile)
	if err := os.WriteFile(old, []byte("yesterday's backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := runMain(context.Background(), []string{"backup", dir, "--config", filepath.Join(dir, "none.yaml")}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), dir+" exists and is not empty") || !strings.Contains(stderr.String(), "--force") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if b, _ := os.ReadFile(old); string(b) != "yesterday's backup" {
		t.Fatalf("the old backup was touched: %q", b)
	}
	// With --force it goes on (here to the missing configuration).
	stderr.Reset()
	code = runMain(context.Background(), []string{"backup", "--force", dir, "--config", filepath.Join(dir, "none.yaml")}, &stdout, &stderr)
	if code != 2 || strings.Contains(stderr.String(), "exists and is not empty") || !strings.Contains(stderr.String(), "no configuration file") {
		t.Fatalf("--force: exit %d, stderr:\n%s", code, stderr.String())
	}
}

var updateMan = flag.Bool("update-man", false, "write docs/cargogate.1 from the command table")

// TestManPageFile: docs/cargogate.1 (for the package's /usr/share/man) is
// what `cargogate man` prints, and groff reads it without a warning.
func TestManPageFile(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "cargogate.1")
	if *updateMan {
		if err := os.WriteFile(path, []byte(manPage()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != manPage() {
		t.Fatalf("docs/cargogate.1 is not what `cargogate man` prints (%v): go test ./cmd/cargogate -run TestManPageFile -update-man", err)
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("no groff")
	}
	cmd := exec.Command(groff, "-man", "-ww", "-z", path)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
}
