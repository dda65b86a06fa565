package screens

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A paired-devices file that cannot be written whole (a full disk: here the
// file size limit) fails the save and leaves the old file as it was; it is
// never replaced by a truncated one.
func TestPairedSaveWriteFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "paired.json")
	tk, err := newTokens(nil, file)
	if err != nil {
		t.Fatal(err)
	}
	one := []pairedToken{{Name: "screen-1", Role: "screen", SHA256: strings.Repeat("a", 64), Created: time.Unix(0, 0).UTC()}}
	if err := tk.saveLocked(one); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	two := append(one, pairedToken{Name: "screen-2", Role: "screen", SHA256: strings.Repeat("b", 64), Created: time.Unix(0, 0).UTC()})

	// The Go runtime ignores SIGXFSZ: a write past the limit fails (EFBIG).
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skip("getrlimit:", err)
	}
	lim := old
	lim.Cur = uint64(len(before))
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skip("setrlimit:", err)
	}
	err = tk.saveLocked(two)
	if rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal("restoring RLIMIT_FSIZE:", rerr)
	}
	if err == nil {
		t.Error("save of a file that could not be written whole: no error")
	}
	after, rerr := os.ReadFile(file)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if string(after) != string(before) {
		t.Errorf("paired file replaced after a failed write:\n%s\nwas:\n%s", after, before)
	}
}
