package testenv

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// MountTmpfs mounts a tmpfs of the given size (mount's syntax: "8m") on a
// new directory and returns it; it is unmounted at test cleanup. Mounting
// needs root (CAP_SYS_ADMIN): the error says so, and the caller decides
// whether to skip.
func MountTmpfs(t testing.TB, size string) (string, error) {
	t.Helper()
	dir, err := os.MkdirTemp("", "cargogate-tmpfs")
	if err != nil {
		return "", err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("mount -t tmpfs -o size=%s tmpfs %s: %w (needs root)", size, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Logf("umount %s: %v", dir, err)
		}
		os.RemoveAll(dir)
	})
	return dir, nil
}
