package journal

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data (and only the metadata needed to read it back).
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// giveToDirOwner gives the files, just made, to dir's owner when the
// process runs as root and dir belongs to another user (an installed
// gateway's data directory, owned by its service user, with an operator's
// command run as root): a root-owned file would stop the gateway opening
// it.
func giveToDirOwner(dir string, paths ...string) error {
	if os.Getuid() != 0 || len(paths) == 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	for _, p := range paths {
		if err := os.Chown(p, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	return nil
}
