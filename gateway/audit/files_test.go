package audit

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// CopyFile and CompactFile keep every record and checkpoint; on a log a
// running gateway holds, they and the other *File functions say ErrLocked.
func TestCopyAndCompactFile(t *testing.T) {
	src := build(t, 25)
	pub, _ := testKey()
	dir := t.TempDir()
	cp, compact := filepath.Join(dir, "copy.db"), filepath.Join(dir, "compact.db")
	if err := CopyFile(src, cp); err != nil {
		t.Fatal(err)
	}
	if err := CompactFile(src, compact); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{cp, compact} {
		rep, err := VerifyFile(p, pub)
		if err != nil || rep.Records != 25 || rep.Checkpoints != 2 {
			t.Fatalf("%s: %+v, %v", p, rep, err)
		}
	}
	if err := CopyFile(filepath.Join(dir, "none.db"), filepath.Join(dir, "x.db")); err == nil || errors.Is(err, ErrLocked) {
		t.Fatalf("copy of a missing file: %v", err)
	}

	l, err := Open(src, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := CopyFile(src, filepath.Join(dir, "copy2.db")); !errors.Is(err, ErrLocked) {
		t.Errorf("CopyFile of a held log: %v, want ErrLocked", err)
	}
	if err := CompactFile(src, filepath.Join(dir, "compact2.db")); !errors.Is(err, ErrLocked) {
		t.Errorf("CompactFile of a held log: %v, want ErrLocked", err)
	}
	if _, err := VerifyFile(src, pub); !errors.Is(err, ErrLocked) {
		t.Errorf("VerifyFile of a held log: %v, want ErrLocked", err)
	}
	if _, err := ExportFile(src, io.Discard, time.Time{}); !errors.Is(err, ErrLocked) {
		t.Errorf("ExportFile of a held log: %v, want ErrLocked", err)
	}
}
