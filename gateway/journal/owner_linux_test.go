package journal

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Run as root (cargogate export or backup on an installed gateway), the
// journal makes its files for the data directory's owner, the service
// user: a root-owned log would stop the gateway from starting.
func TestNewFilesBelongToTheDirectoryOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	const uid, gid = 4242, 4243
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, LogPath(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: owner %d:%d, want the directory's %d:%d", filepath.Base(p), st.Uid, st.Gid, uid, gid)
		}
	}
}
