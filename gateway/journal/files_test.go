package journal_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/cargogate/cargogate/gateway/journal"
)

// CopyFile and CompactFile keep the events; on a journal a running gateway
// holds, they say ErrLocked.
func TestCopyAndCompactFile(t *testing.T) {
	j, src := openTemp(t, journal.Options{})
	appendN(t, j, 5, "ev")
	dir := t.TempDir()
	if err := journal.CopyFile(src, filepath.Join(dir, "x.db")); !errors.Is(err, journal.ErrLocked) {
		t.Errorf("CopyFile of a held journal: %v, want ErrLocked", err)
	}
	if err := journal.CompactFile(src, filepath.Join(dir, "y.db")); !errors.Is(err, journal.ErrLocked) {
		t.Errorf("CompactFile of a held journal: %v, want ErrLocked", err)
	}
	j.Close()
	for _, fn := range []func(src, dst string) error{journal.CopyFile, journal.CompactFile} {
		dst := filepath.Join(t.TempDir(), "events.db")
		if err := fn(src, dst); err != nil {
			t.Fatal(err)
		}
		c, err := journal.Open(dst, journal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		err = c.ForEach(func(e journal.Entry, _ bool) error { n++; return nil })
		c.Close()
		if err != nil || n != 5 {
			t.Fatalf("%s: %d events, %v; want 5", dst, n, err)
		}
	}
}
