package journal_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/journal"
)

// Export writes the events at or after since, delivered (kept) or not, exactly as
// journalled and in order; entries that are not events with a time are
// left out.
func TestExport(t *testing.T) {
	j, _ := openTemp(t, journal.Options{KeepDelivered: true})
	ctx := context.Background()
	events := []string{
		`{"id":"e1","at":"2026-11-27T07:59:59Z"}`,
		`{"id":"e2","at":"2026-11-27T08:00:00Z"}`,
		`not json`,
		`{"id":"e3","at":"2026-11-27T08:00:01Z", "x": 1}`,
	}
	for _, e := range events {
		if _, err := j.Append(ctx, []byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	es, err := j.Pending(1, 1<<20)
	if err != nil || len(es) != 1 {
		t.Fatalf("Pending: %v, %v", es, err)
	}
	if err := j.Delivered(es); err != nil { // e1 delivered: still exported when in range
		t.Fatal(err)
	}
	for _, tc := range []struct {
		since time.Time
		want  string
	}{
		{time.Time{}, events[0] + "\n" + events[1] + "\n" + events[3] + "\n"},
		{time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), events[1] + "\n" + events[3] + "\n"},
		{time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), ""},
	} {
		var b bytes.Buffer
		if err := j.Export(&b, tc.since); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("since %v:\n got %q\nwant %q", tc.since, b.String(), tc.want)
		}
	}
}
