//go:build !linux

package journal

import "os"

// fdatasync is a full fsync where fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }

// giveToDirOwner is a no-op where file owners are not changed.
func giveToDirOwner(dir string, paths ...string) error { return nil }
