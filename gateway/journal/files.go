package journal

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cargogate/cargogate/internal/boltfile"
)

// CopyFile writes a consistent copy of the journal file src, which no process
// holds open, to dst. ErrLocked: a running gateway holds it (ask it for a
// hot copy, Backup, instead).
func CopyFile(src, dst string) error {
	if err := settle(src); err != nil {
		return err
	}
	return lockedErr(boltfile.Copy(src, dst))
}

// CompactFile rewrites the journal file src, which no process holds open, into
// a fresh file dst, reclaiming the space bbolt never gives back by itself.
// ErrLocked: a running gateway holds it.
func CompactFile(src, dst string) error {
	if err := settle(src); err != nil {
		return err
	}
	return lockedErr(boltfile.Compact(src, dst))
}

// settle moves what the log beside the stopped journal src holds (after a
// crash) into src, by opening and closing it, so that src alone is whole.
func settle(src string) error {
	if _, err := os.Stat(LogPath(src)); err != nil {
		return nil // no log: nothing to move
	}
	if _, err := os.Stat(src); err != nil {
		return err
	}
	j, err := Open(src, Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	return j.Close()
}

func lockedErr(err error) error {
	if errors.Is(err, boltfile.ErrLocked) {
		return fmt.Errorf("%w: %v", ErrLocked, err)
	}
	return err
}
