package audit

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// LastCheckpoint is the time of the last signed checkpoint, also after the
// log is opened again (the gateway's status carries it as checkpoint_at).
func TestLastCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.LastCheckpoint(); ok {
		t.Fatal("a new log has a checkpoint")
	}
	_, priv := testKey()
	at := time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC)
	if _, err := l.Checkpoint("PVG-W/g07", priv, at); err != nil {
		t.Fatal(err)
	}
	if got, ok := l.LastCheckpoint(); !ok || !got.Equal(at) {
		t.Fatalf("LastCheckpoint = %v %v, want %v", got, ok, at)
	}
	l.Close()
	l, err = Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, ok := l.LastCheckpoint(); !ok || !got.Equal(at) {
		t.Fatalf("after reopening: LastCheckpoint = %v %v, want %v", got, ok, at)
	}
}
