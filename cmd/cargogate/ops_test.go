package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/store"
)

func (s *site) cli(args ...string) (string, error) {
	cmd := exec.Command(bins["cargogate"], args...)
	cmd.Env = append(os.Environ(), "CARGOGATE_TOKEN="+testOpToken)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	r, err := authGet(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

// TestOperatorCommands runs the operator's commands against a running
// gateway (over its HTTP API) and a stopped one (on its files), and checks
// metrics, health and readiness.
func TestOperatorCommands(t *testing.T) {
	s := newSite(t)
	P := func(n int) customs.Subject { return sub(customs.Parcel, s10(n)) }
	head := s.issue(
		customs.Order{Action: customs.Release, Subject: P(1), Office: "2244", Ref: "22442026E000000001"},
		customs.Order{Action: customs.Release, Subject: P(2)},
		customs.Order{Action: customs.Hold, Subject: P(2), HoldID: "H-7", Reason: "inspection", Note: "X-ray"},
	)
	s.waitApplied(head, 30*time.Second)
	if f := s.scan(s10(1)); f != "PASS" {
		t.Fatalf("scan: %s", f)
	}
	s.scan(s10(2))

	out, err := s.cli("status", "--json", "--config", s.cfgPath)
	if err != nil || !strings.Contains(out, `"applied_seq"`) || !strings.Contains(out, `"orders.db"`) {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	out, err = s.cli("status", "--config", s.cfgPath)
	for _, want := range []string{"link     online since ", "applied up to seq 3 of central's head 3: lag 0", "outbox   ", "alarms   none", "gate-3", "scanner up"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("status lacks %q: %v\n%s", want, err, out)
		}
	}
	out, err = s.cli("inspect", s10(2), "--config", s.cfgPath)
	if err != nil || !strings.Contains(out, "STOP") || !strings.Contains(out, "held:inspection") || !strings.Contains(out, "H-7") {
		t.Fatalf("inspect (running): %v\n%s", err, out)
	}
	code, body := httpGet(t, "http://"+s.gwHTTP+"/metrics")
	for _, want := range []string{`cargogate_decisions_total{decision="pass",reason="released",station="gate-3"} 1`,
		`cargogate_decisions_total{decision="stop",reason="held:inspection",station="gate-3"} 1`,
		"cargogate_applied_seq 3", "cargogate_order_gaps 0", "cargogate_orders_unappliable_total 0", "cargogate_order_fields_dropped_total 0", "cargogate_link_online 1", "cargogate_scan_to_gate_seconds_count"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := httpGet(t, "http://"+s.gwHTTP+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := httpGet(t, "http://"+s.gwHTTP+"/readyz"); code != 200 || !strings.Contains(body, `"ready": true`) {
		t.Errorf("/readyz: %d %s", code, body)
	}
	out, err = s.cli("export", "events", "--since", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "--config", s.cfgPath)
	if err != nil || strings.Count(out, `"kind":"scan"`) != 2 {
		t.Fatalf("export events (running): %v\n%s", err, out)
	}
	backup := filepath.Join(t.TempDir(), "backup")
	if out, err = s.cli("backup", backup, "--config", s.cfgPath); err != nil {
		t.Fatalf("backup (running): %v\n%s", err, out)
	}
	// A second backup into the same directory is refused unless forced.
	if out, err = s.cli("backup", backup, "--config", s.cfgPath); err == nil || !strings.Contains(out, "not empty") {
		t.Fatalf("backup into a full directory: %v\n%s", err, out)
	}
	if out, err = s.cli("backup", "--force", backup, "--config", s.cfgPath); err != nil {
		t.Fatalf("backup --force: %v\n%s", err, out)
	}
	bst, err := store.Open(filepath.Join(backup, ordersFile), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("backup store: %v", err)
	}
	if p, _ := bst.Progress(); p.Watermark != head {
		t.Errorf("backup watermark %d, want %d", p.Watermark, head)
	}
	bst.Close()
	if out, err = s.cli("audit", "verify", "--config", s.cfgPath); err != nil || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify (running): %v\n%s", err, out)
	}
	if out, err = s.cli("audit", "verify", "--config", s.cfgPath); err == nil || !strings.Contains(out, "at most once") {
		t.Fatalf("a second audit verify at once (running): %v\n%s", err, out)
	}
	out, err = s.cli("audit", "export", "--config", s.cfgPath)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); err != nil || !strings.Contains(out, `"chain":"`) ||
		!strings.Contains(out, `"kind":"decision"`) || !strings.HasPrefix(lines[len(lines)-1], `{"trailer":`) {
		t.Fatalf("audit export (running): %v\n%s", err, out)
	}

	// Stopped: the same commands on the files.
	s.gw.Stop(10 * time.Second)
	out, err = s.cli("inspect", "--config", s.cfgPath, s10(1))
	if err != nil || !strings.Contains(out, "PASS") || !strings.Contains(out, "22442026E000000001") {
		t.Fatalf("inspect (stopped): %v\n%s", err, out)
	}
	if out, err = s.cli("export", "events", "--config", s.cfgPath); err != nil || strings.Count(out, `"kind":"scan"`) != 2 {
		t.Fatalf("export events (stopped): %v\n%s", err, out)
	}
	if out, err = s.cli("audit", "verify", "--config", s.cfgPath); err != nil || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify (stopped): %v\n%s", err, out)
	}
	if out, err = s.cli("audit", "export", "--config", s.cfgPath); err != nil || !strings.Contains(out, `"kind":"decision"`) ||
		!strings.Contains(out, `"kind":"order_applied"`) || !strings.Contains(out, `"kind":"config"`) {
		t.Fatalf("audit export (stopped): %v\n%s", err, out)
	}
	if out, err = s.cli("compact", "--config", s.cfgPath); err != nil || !strings.Contains(out, "orders.db") {
		t.Fatalf("compact: %v\n%s", err, out)
	}
	s.startGateway()
	if got := s.status().Link.Applied; got != head {
		t.Fatalf("after compact: applied_seq %d, want %d", got, head)
	}
}

// TestReload changes the configuration of a running gateway with SIGHUP:
// a central key removed is no longer trusted, a bad configuration is
// refused whole, and the link stays up throughout.
func TestReload(t *testing.T) {
	s := newSite(t)
	P := func(n int) customs.Subject { return sub(customs.Parcel, s10(n)) }
	s.waitApplied(s.issue(customs.Order{Action: customs.Release, Subject: P(1)}), 30*time.Second)
	good, err := os.ReadFile(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	hup := func(cfg []byte) {
		t.Helper()
		if err := os.WriteFile(s.cfgPath, cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		before := strings.Count(s.gw.Output(), "configuration reload")
		if err := s.gw.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); strings.Count(s.gw.Output(), "configuration reload") == before; {
			if time.Now().After(deadline) {
				t.Fatal("no reload logged")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// A bad configuration is refused: the old one keeps working.
	hup(bytes.Replace(good, []byte("role: gate"), []byte("role: gate\n    colour: red"), 1))
	if !strings.Contains(s.gw.Output(), "reload refused") {
		t.Fatalf("bad configuration not refused:\n%s", s.gw.Output())
	}
	if f := s.scan(s10(1)); f != "PASS" {
		t.Fatalf("after a refused reload: %s", f)
	}

	// The central key removed: a release signed with it no longer counts.
	untrusted := bytes.Replace(good, []byte("central-sim:"), []byte("central-old:"), 1)
	untrusted = bytes.Replace(untrusted, []byte(s.centralKey), []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), 1)
	hup(untrusted)
	rejected := s.status().Link.Rejected
	s.issue(customs.Order{Action: customs.Release, Subject: P(2)})
	for deadline := time.Now().Add(10 * time.Second); s.status().Link.Rejected == rejected; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a release signed with a removed key was not rejected")
		}
	}
	if f := s.scan(s10(2)); f != "STOP" {
		t.Fatalf("release under a removed key: gate %s", f)
	}
	if !s.status().Link.Online {
		t.Fatal("the link dropped during reloads")
	}

	// The key back: the gap is filled by resync and the parcel passes.
	hup(good)
	s.waitApplied(s.centralHead(), 30*time.Second)
	if f := s.scan(s10(2)); f != "PASS" {
		t.Fatalf("after the key came back: gate %s", f)
	}
}
