package audit

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/cargogate/cargogate/internal/boltfile"
)

// CopyFile writes a consistent copy of the audit log src, which no process
// holds open, to dst. ErrLocked: a running gateway holds it (ask it for a
// hot copy, Backup, instead).
func CopyFile(src, dst string) error { return lockedErr(boltfile.Copy(src, dst)) }

// CompactFile rewrites the audit log src, which no process holds open,
// into a fresh file dst, reclaiming the space bbolt never gives back by
// itself. ErrLocked: a running gateway holds it.
func CompactFile(src, dst string) error { return lockedErr(boltfile.Compact(src, dst)) }

func lockedErr(err error) error {
	if errors.Is(err, boltfile.ErrLocked) || errors.Is(err, bolt.ErrTimeout) {
		return fmt.Errorf("%w: %v", ErrLocked, err)
	}
	return err
}
