package store

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// fingerprintRef is the first fingerprint, written with fmt. Stored seq
// logs hold its output, so fingerprint must give the same bytes.
func fingerprintRef(o *customs.Order) [16]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", o.Action, o.Subject.Kind, o.Subject.ID, o.HoldID)
	if !o.ExpiresAt.IsZero() {
		fmt.Fprintf(h, "%d.%09d", o.ExpiresAt.Unix(), o.ExpiresAt.Nanosecond())
	}
	h.Write([]byte{0})
	kids := make([]string, 0, len(o.Children))
	for _, c := range o.Children {
		kids = append(kids, string(c.Kind)+":"+c.ID)
	}
	slices.Sort(kids)
	for _, k := range kids {
		fmt.Fprintf(h, "%s,", k)
	}
	h.Write([]byte{0})
	seals := slices.Clone(o.Seals)
	slices.Sort(seals)
	for _, s := range seals {
		fmt.Fprintf(h, "%s,", s)
	}
	var fp [16]byte
	copy(fp[:], h.Sum(nil))
	return fp
}

func TestFingerprintStable(t *testing.T) {
	p1, p2, b1 := P("RR000000001CN"), P("RR000000002CN"), B("BAG1")
	for i, o := range []customs.Order{
		rel(1, p1),
		relExp(2, p1, now.Add(90*time.Minute+7*time.Nanosecond)),
		relExp(3, p1, time.Date(1960, 1, 2, 3, 4, 5, 600, time.UTC)),
		hold(4, p2, "H1", "inspection"),
		link(5, b1, p2, p1),
		unlink(6, b1, p1),
		seal(7, customs.Subject{Kind: customs.Transit, ID: "T1"}, "SH-2", "SH-1"),
		cancel(8, p1),
	} {
		if got, want := fingerprint(&o), fingerprintRef(&o); got != want {
			t.Errorf("order %d %+v: fingerprint %x, reference %x", i, o, got, want)
		}
	}
}

// TestApplyRaw: raw order bytes go to the seq log as they are, and read back.
func TestApplyRaw(t *testing.T) {
	s, _ := openTemp(t)
	o := rel(1, P("RR000000001CN"))
	raw, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	raw = append([]byte(" "), raw...) // as received: not our spelling
	if _, err := s.Apply(Batch{Orders: []customs.Order{o}, Raw: [][]byte{raw, raw}}); err == nil {
		t.Fatal("Apply took 2 raw orders for 1 order")
	}
	res := mustApply(t, s, Batch{Orders: []customs.Order{o}, Raw: [][]byte{raw}})
	if res.Applied != 1 || res.Watermark != 1 {
		t.Fatalf("result %+v", res)
	}
	got, found, err := s.Order(1)
	if err != nil || !found || got.Subject != o.Subject || got.Action != o.Action {
		t.Fatalf("Order(1) = %+v, %v, %v", got, found, err)
	}
	res = mustApply(t, s, Batch{Orders: []customs.Order{cancel(1, o.Subject)}})
	if len(res.Conflicts) != 1 || string(res.Conflicts[0].Kept) != string(raw) {
		t.Fatalf("conflict %+v, want kept %s", res.Conflicts, raw)
	}
}

func BenchmarkFingerprint(b *testing.B) {
	o := relExp(1, P("RR000000001CN"), now.Add(time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		fingerprint(&o)
	}
}

func BenchmarkFingerprintRef(b *testing.B) {
	o := relExp(1, P("RR000000001CN"), now.Add(time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		fingerprintRef(&o)
	}
}
