package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/gateway/station"
	"github.com/cargogate/cargogate/sync/envelope"
)

// lockedBuffer is a log written by the gateway and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// reloadBase is the configuration the reload tests start from, key by key.
func reloadBase(dir string) map[string]string {
	return map[string]string{
		"site": "PVG-W", "gateway": "g07", "data_dir": filepath.Join(dir, "gw"),
		// Nothing listens there: the link stays offline and keeps trying.
		"central.broker": "tcp://127.0.0.1:1", "central.username": "gw", "central.password": "pw1",
		"central.gap_grace": "2s", "central.resync_timeout": "30s", "central.lookup_timeout": "300ms", "central.ack_timeout": "30s",
		"http.listen": `""`, "http.allowed_origins": "[]", "http.token": `""`,
		"log.level": "info", "log.format": "text",
		"outbox.max_events": "1000", "outbox.max_bytes": "1MiB", "outbox.alarm_percent": "80", "outbox.redeliver_window": "30s",
		"retention.orders_days": "30", "retention.events_days": "30", "retention.interval": "1h",
	}
}

func reloadYAML(v map[string]string) []byte {
	key := envelope.EncodePublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32)).Public().(ed25519.PublicKey))
	var b strings.Builder
	fmt.Fprintf(&b, "site: %s\ngateway: %s\ndata_dir: %s\n", v["site"], v["gateway"], v["data_dir"])
	fmt.Fprintf(&b, "central:\n  keys: {central-sim: %q}\n", key)
	for _, sec := range []string{"central", "http", "log", "outbox", "retention"} {
		if sec != "central" {
			fmt.Fprintf(&b, "%s:\n", sec)
		}
		var keys []string
		for k := range v {
			if strings.HasPrefix(k, sec+".") {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s: %s\n", strings.TrimPrefix(k, sec+"."), v[k])
		}
	}
	b.WriteString(`stations:
  - id: sort-1
    role: sort
    scanner: {driver: tcp-server, listen: "127.0.0.1:0"}
  - id: sort-2
    role: sort
    scanner: {driver: tcp-server, listen: "127.0.0.1:0"}
`)
	return []byte(b.String())
}

// reloadRig is a gateway run in this process, reloaded through the same
// channel SIGHUP feeds.
type reloadRig struct {
	t      *testing.T
	path   string
	base   map[string]string
	log    *lockedBuffer
	hup    chan struct{}
	parts  *gatewayParts
	cancel context.CancelFunc
	done   chan error
}

func newReloadRig(t *testing.T) *reloadRig {
	t.Helper()
	dir := t.TempDir()
	r := &reloadRig{t: t, path: filepath.Join(dir, "cargogate.yaml"), base: reloadBase(dir), log: &lockedBuffer{},
		hup: make(chan struct{}), done: make(chan error, 1)}
	r.write(r.base)
	cfg, err := config.Load(r.path)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan *gatewayParts, 1)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- serve(ctx, cfg, gatewayDeps{reload: r.hup, configPath: r.path,
			ready: func(_ string, p *gatewayParts) { ready <- p }}, &bytes.Buffer{}, r.log)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case r.parts = <-ready:
	case err := <-r.done:
		t.Fatalf("serve: %v\n%s", err, r.log)
	case <-time.After(30 * time.Second):
		t.Fatalf("gateway not ready\n%s", r.log)
	}
	return r
}

func (r *reloadRig) write(v map[string]string) {
	r.t.Helper()
	if err := os.WriteFile(r.path, reloadYAML(v), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

// reload writes the base configuration with over applied, reloads, and
// returns the log line of the outcome.
func (r *reloadRig) reload(over map[string]string) string {
	r.t.Helper()
	v := maps(r.base)
	for k, x := range over {
		v[k] = x
	}
	r.write(v)
	before := strings.Count(r.log.String(), "configuration reload")
	r.hup <- struct{}{}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		lines := strings.Split(r.log.String(), "\n")
		var hits []string
		for _, l := range lines {
			if strings.Contains(l, "configuration reload") {
				hits = append(hits, l)
			}
		}
		if len(hits) > before {
			return hits[len(hits)-1]
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no reload logged\n%s", r.log)
		}
	}
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (r *reloadRig) stations() map[string]*station.Station {
	out := map[string]*station.Station{}
	for _, s := range r.parts.stations.List() {
		out[s.ID()] = s
	}
	return out
}

// TestReloadApplies changes, one reload each, every key applied in place
// that has no test of its own elsewhere, and observes the new value where
// the gateway goes by it: the link's timeouts, every station's lookup
// timeout (the stations themselves not restarted), the retention in
// force.
func TestReloadApplies(t *testing.T) {
	r := newReloadRig(t)
	before := r.stations()
	if len(before) != 2 {
		t.Fatalf("stations %v", before)
	}
	for _, tc := range []struct {
		key, value string
		check      func() any
		want       any
	}{
		{"central.gap_grace", "7s", func() any { g, _ := r.parts.link.Timeouts(); return g }, 7 * time.Second},
		{"central.resync_timeout", "45s", func() any { _, rt := r.parts.link.Timeouts(); return rt }, 45 * time.Second},
		{"central.lookup_timeout", "1500ms", func() any {
			var out []time.Duration
			for _, s := range r.parts.stations.List() {
				out = append(out, s.LookupTimeout())
			}
			return out
		}, []time.Duration{1500 * time.Millisecond, 1500 * time.Millisecond}},
		{"retention.orders_days", "12", func() any { return r.parts.retention.Policy().OrdersDays }, 12},
		{"retention.events_days", "9", func() any { return r.parts.retention.Policy().EventsDays }, 9},
		{"retention.interval", "2h", func() any { return r.parts.retention.Policy().Interval }, 2 * time.Hour},
	} {
		t.Run(tc.key, func(t *testing.T) {
			if got := tc.check(); reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%s is %v before the reload", tc.key, got)
			}
			line := r.reload(map[string]string{tc.key: tc.value})
			if !strings.Contains(line, "configuration reloaded") {
				t.Fatalf("reload: %s", line)
			}
			if got := tc.check(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%s: %v after the reload, want %v", tc.key, got, tc.want)
			}
			r.base[tc.key] = tc.value
		})
	}
	if after := r.stations(); !reflect.DeepEqual(after, before) {
		t.Fatalf("stations restarted: %v, were %v", after, before)
	}
}

// TestReloadRefusesRestartKeys changes, one reload each, a key that needs
// a restart together with gap_grace: the reload is refused naming the key,
// and nothing changes, gap_grace included.
func TestReloadRefusesRestartKeys(t *testing.T) {
	r := newReloadRig(t)
	cfg := r.parts.stations.config()
	grace, _ := r.parts.link.Timeouts()
	for _, tc := range []struct{ key, value string }{
		{"site", "PVG-E"},
		{"gateway", "g08"},
		{"data_dir", filepath.Join(t.TempDir(), "elsewhere")},
		{"central.broker", "tcp://127.0.0.1:2"},
		{"central.username", "gw2"},
		{"central.password", "pw2"},
		{"http.listen", "127.0.0.1:0"},
		{"http.allowed_origins", "[https://screens.example]"},
		{"http.token", "0123456789abcdef0123"},
		{"log.level", "debug"},
		{"log.format", "json"},
		{"outbox.max_events", "2000"},
		{"outbox.max_bytes", "2MiB"},
		{"outbox.alarm_percent", "90"},
		{"outbox.redeliver_window", "40s"},
		{"central.ack_timeout", "40s"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			line := r.reload(map[string]string{tc.key: tc.value, "central.gap_grace": "9s"})
			if want := "reload refused: " + tc.key + " changed; restart needed"; !strings.Contains(line, want) {
				t.Fatalf("log %q, want %q", line, want)
			}
			if now := r.parts.stations.config(); now != cfg {
				t.Fatalf("the configuration in force changed")
			}
			if g, _ := r.parts.link.Timeouts(); g != grace {
				t.Fatalf("gap_grace %v after a refused reload, was %v", g, grace)
			}
		})
	}
	// The same file without the restart key is taken.
	if line := r.reload(map[string]string{"central.gap_grace": "9s"}); !strings.Contains(line, "configuration reloaded") {
		t.Fatalf("reload: %s", line)
	}
	if g, _ := r.parts.link.Timeouts(); g != 9*time.Second {
		t.Fatalf("gap_grace %v", g)
	}
}
