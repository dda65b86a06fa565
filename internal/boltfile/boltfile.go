// Package boltfile copies and compacts bbolt files that no process holds
// open (a stopped gateway's stores), for the storage packages' CopyFile and
// CompactFile.
package boltfile

import (
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// lockTimeout is how long Copy and Compact wait for the file's lock.
const lockTimeout = 200 * time.Millisecond

func open(path string, o *bolt.Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, o)
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w", path, ErrLocked)
	}
	return db, err
}

// Copy writes a consistent copy of the bbolt file src to dst, from one
// read transaction. src must exist.
func Copy(src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return err
	}
	db, err := open(src, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error { return tx.CopyFile(dst, 0o600) })
}

// Compact rewrites the bbolt file src into a fresh file dst, reclaiming
// the free pages bbolt never gives back by itself; dst is synced.
func Compact(src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return err
	}
	from, err := open(src, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := bolt.Open(dst, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	if err := bolt.Compact(to, from, 64<<20); err != nil {
		to.Close()
		return err
	}
	if err := to.Sync(); err != nil {
		to.Close()
		return err
	}
	return to.Close()
}
