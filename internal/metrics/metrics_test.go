package metrics

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/drivers"
	"github.com/cargogate/cargogate/gateway/station"
	"github.com/cargogate/cargogate/sync/link"
)

type fixed link.Snapshot

func (f fixed) Snapshot() link.Snapshot { return link.Snapshot(f) }

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// Every metric is exposed under its documented name with the link's
// values of the scrape, decisions are counted by station, decision and
// reason (scans only), and devices are up or not.
func TestExposition(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "orders.db")
	if err := os.WriteFile(file, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	m := New(fixed{Online: true, Watermark: 41, Head: 44, Lag: 3, Applied: 40, Duplicates: 2, Conflicts: 1,
		RejectedBy: map[string]uint64{"signature": 5}, Resyncs: 6, Outbox: 7, OutboxBytes: 800, OutboxOldest: 1.5,
		EventsSent: 9, StoreWritable: true, Ready: true, GapCount: 2, Unappliable: 3, FieldsDropped: 4, UndeliveredOpen: 5,
		Brokers: []string{"tcp://mq1:1883", "tcp://mq2:1883"}, Broker: "tcp://mq2:1883", EventsBroker: "tcp://mq1:1883"},
		file, filepath.Join(dir, "missing.db"))
	m.Decided(station.Outcome{Kind: "scan", Station: "gate-1", Pass: true, Reason: "released", Gate: "opened", Latency: 3 * time.Millisecond})
	m.Decided(station.Outcome{Station: "gate-1", Reason: "unknown", Gate: "closed"}) // no kind: a scan
	// A station without a gate: decisions counted, no scan-to-gate time.
	m.Decided(station.Outcome{Kind: "scan", Station: "desk-1", Pass: true, Reason: "released", Gate: "none", Latency: time.Millisecond})
	m.BuildInfo("0.1.0", "abc123", "2026-12-06T10:00:00Z", "go1.26.8")
	m.Decided(station.Outcome{Kind: "seal", Station: "gate-1", Reason: "seal"})
	m.Device("gate-1", "scanner", drivers.Up, "")
	m.Device("gate-1", "gate", drivers.Fault, "no answer")
	body := scrape(t, m)
	for _, want := range []string{
		`cargogate_decisions_total{decision="pass",reason="released",station="gate-1"} 1`,
		`cargogate_decisions_total{decision="stop",reason="unknown",station="gate-1"} 1`,
		`cargogate_scan_to_gate_seconds_count{station="gate-1"} 2`,
		`cargogate_decisions_total{decision="pass",reason="released",station="desk-1"} 1`,
		`cargogate_build_info{commit="abc123",date="2026-12-06T10:00:00Z",goversion="go1.26.8",version="0.1.0"} 1`,
		`cargogate_device_up{device="scanner",station="gate-1"} 1`,
		`cargogate_device_up{device="gate",station="gate-1"} 0`,
		"cargogate_link_online 1", "cargogate_applied_seq 41", "cargogate_head_seq 44", "cargogate_lag_orders 3",
		"cargogate_orders_applied_total 40", "cargogate_orders_duplicate_total 2", "cargogate_orders_conflict_total 1",
		`cargogate_messages_rejected_total{reason="signature"} 5`, "cargogate_resyncs_total 6",
		"cargogate_outbox_events 7", "cargogate_outbox_bytes 800", "cargogate_outbox_oldest_seconds 1.5",
		"cargogate_events_delivered_total 9", "cargogate_store_writable 1", "cargogate_ready 1",
		"cargogate_order_gaps 2", "cargogate_orders_unappliable_total 3", "cargogate_order_fields_dropped_total 4",
		"cargogate_order_seqs_undelivered 5",
		`cargogate_broker_connected{broker="tcp://mq1:1883",conn="orders"} 0`,
		`cargogate_broker_connected{broker="tcp://mq2:1883",conn="orders"} 1`,
		`cargogate_broker_connected{broker="tcp://mq1:1883",conn="events"} 1`,
		`cargogate_broker_connected{broker="tcp://mq2:1883",conn="events"} 0`,
		`cargogate_file_bytes{file="orders.db"} 4096`,
		"go_goroutines", "process_",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
	if strings.Contains(body, `scan_to_gate_seconds_count{station="desk-1"}`) {
		t.Errorf("scan-to-gate time for a station without a gate:\n%s", body)
	}
	if strings.Contains(body, `reason="seal"`) || strings.Contains(body, "missing.db") {
		t.Errorf("a seal counted or a missing file sized:\n%s", body)
	}
}

// Sizes gives the total and, after five minutes of samples, the growth per
// hour over at most the last hour.
func TestSizes(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	write := func(p string, n int) {
		if err := os.WriteFile(p, make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(a, 1000)
	write(b, 500)
	s := NewSizes(a, b, filepath.Join(dir, "none.db"))
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	doc := s.Snapshot(t0)
	if doc["bytes"] != int64(1500) || len(doc["files"].(map[string]int64)) != 2 {
		t.Fatalf("%v", doc)
	}
	if _, ok := doc["growth_bytes_per_hour"]; ok {
		t.Fatalf("growth with one sample: %v", doc)
	}
	write(a, 1600)
	doc = s.Snapshot(t0.Add(6 * time.Minute))
	if g, ok := doc["growth_bytes_per_hour"].(float64); !ok || g != 6000 {
		t.Fatalf("growth %v, want 600 bytes in 6 minutes = 6000/h", doc["growth_bytes_per_hour"])
	}
	if g := s.Snapshot(t0.Add(50 * time.Minute))["growth_bytes_per_hour"]; g != float64(720) {
		t.Fatalf("growth %v, want 600 bytes in 50 minutes = 720/h", g)
	}
	// Samples older than an hour are dropped: the growth is over the last
	// hour, since the sample at 50 minutes.
	doc = s.Snapshot(t0.Add(70 * time.Minute))
	if g, ok := doc["growth_bytes_per_hour"].(float64); !ok || g != 0 {
		t.Fatalf("growth %v over the last hour, want 0", doc["growth_bytes_per_hour"])
	}
}
