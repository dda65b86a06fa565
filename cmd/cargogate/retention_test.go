package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/clock"
	"github.com/cargogate/cargogate/gateway/store"
)

// Retention judges age at the earlier of the wall clock and central's time:
// a wall clock jumped forward moves nothing, and with no central time there
// is no time to judge by.
func TestRetentionNow(t *testing.T) {
	central := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ahead := central.AddDate(1, 0, 0)
	if got := retentionNow(clock.New(func() time.Time { return ahead }, central)); !got.Equal(central) {
		t.Errorf("wall a year ahead: %v, want central's %v", got, central)
	}
	behind := central.Add(-time.Hour)
	if got := retentionNow(clock.New(func() time.Time { return behind }, central)); !got.Equal(behind) {
		t.Errorf("wall behind: %v, want the wall's %v", got, behind)
	}
	if got := retentionNow(clock.New(func() time.Time { return ahead }, time.Time{})); !got.IsZero() {
		t.Errorf("no central time: %v, want zero", got)
	}
}

// saveWall stores the clock's reading at shutdown (and every interval).
func TestSaveWall(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "orders.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wall := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := saveWall(ctx, st, clock.New(func() time.Time { return wall }, time.Time{}), time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	if p, _ := st.Progress(); !p.Wall.Equal(wall) {
		t.Errorf("stored wall reading %v, want %v", p.Wall, wall)
	}
}
