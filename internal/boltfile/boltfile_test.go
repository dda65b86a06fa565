package boltfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func makeDB(t *testing.T, path string, n int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := range n {
			if err := b.Put([]byte{byte(i >> 8), byte(i)}, make([]byte, 512)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Delete most keys, leaving free pages that compaction gives back.
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		for i := 10; i < n; i++ {
			if err := b.Delete([]byte{byte(i >> 8), byte(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func keys(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	db.View(func(tx *bolt.Tx) error { n = tx.Bucket([]byte("b")).Stats().KeyN; return nil })
	return n
}

// Copy and Compact keep every key; Compact gives free pages back; a file
// another handle holds is ErrLocked, a missing one is not created.
func TestCopyCompact(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	makeDB(t, src, 2000)
	cp, small := filepath.Join(dir, "copy.db"), filepath.Join(dir, "small.db")
	if err := Copy(src, cp); err != nil {
		t.Fatal(err)
	}
	if err := Compact(src, small); err != nil {
		t.Fatal(err)
	}
	if keys(t, cp) != 10 || keys(t, small) != 10 {
		t.Fatalf("keys: copy %d, compacted %d; want 10", keys(t, cp), keys(t, small))
	}
	a, _ := os.Stat(src)
	b, _ := os.Stat(small)
	if b.Size() >= a.Size() {
		t.Errorf("compacted %d bytes, source %d", b.Size(), a.Size())
	}

	held, err := bolt.Open(src, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := Copy(src, filepath.Join(dir, "x.db")); !errors.Is(err, ErrLocked) {
		t.Errorf("Copy of a held file: %v", err)
	}
	if err := Compact(src, filepath.Join(dir, "y.db")); !errors.Is(err, ErrLocked) {
		t.Errorf("Compact of a held file: %v", err)
	}
	missing := filepath.Join(dir, "missing.db")
	if err := Compact(missing, filepath.Join(dir, "z.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Compact of a missing file: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Error("Compact created the missing source")
	}
}
