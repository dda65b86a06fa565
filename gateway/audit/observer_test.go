package audit

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/scan"
)

// The observer records each decision, seal scan, arrival and device
// change, in order, with what an officer reading the export needs.
func TestObserver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	obs := Observer{l}
	obs.Decided(scan.Outcome{Kind: "scan", Station: "gate-3", Role: "exit", EventID: "ev1", At: at, Code: "RR123456785CN",
		Pass: true, Reason: "released", BasisSeq: 42, Gate: "opened"})
	obs.Decided(scan.Outcome{Kind: "seal", Station: "arr-1", Role: "arrival", At: at, Seal: "SL0001"})
	obs.Decided(scan.Outcome{Kind: "arrival", Station: "arr-1", Role: "arrival", At: at, Arrival: &customs.Event{ID: "ev2"}})
	obs.Device("gate-3", "gate", device.Down, "refused")
	if err := l.Close(); err != nil { // commits what is queued
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := ExportFile(path, &b, time.Time{}); err != nil {
		t.Fatal(err)
	}
	var got []Record
	dec := json.NewDecoder(&b)
	for {
		var line ExportLine
		if err := dec.Decode(&line); err != nil || line.Record == nil {
			break
		}
		var r Record
		if err := json.Unmarshal(line.Record, &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	want := []struct {
		kind string
		data map[string]any
	}{
		{KindDecision, map[string]any{"kind": "scan", "station": "gate-3", "code": "RR123456785CN", "pass": true,
			"reason": "released", "basis_seq": 42.0, "gate": "opened", "event_id": "ev1"}},
		{KindDecision, map[string]any{"kind": "seal", "station": "arr-1", "seal": "SL0001", "pass": false}},
		{KindDecision, map[string]any{"kind": "arrival", "station": "arr-1"}},
		{KindDevice, map[string]any{"station": "gate-3", "device": "gate", "state": "down", "detail": "refused"}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		var data map[string]any
		if err := json.Unmarshal(got[i].Data, &data); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if got[i].Kind != w.kind {
			t.Errorf("record %d: kind %q, want %q", i, got[i].Kind, w.kind)
		}
		for k, v := range w.data {
			if data[k] != v {
				t.Errorf("record %d: %s = %v, want %v", i, k, data[k], v)
			}
		}
	}
	if arr, _ := json.Marshal(got[2].Data); !bytes.Contains(arr, []byte(`"ev2"`)) {
		t.Errorf("arrival record without its event: %s", arr)
	}
}
