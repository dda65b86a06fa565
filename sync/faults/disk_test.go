package faults

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/testenv"
)

// TestDiskFull runs the gateway on an 8 MiB tmpfs and fills it: the gateway
// keeps deciding from what it has, stops acknowledging the orders it cannot
// store (the broker keeps them), reports not ready, and recovers when the
// space comes back.
func TestDiskFull(t *testing.T) {
	mnt, err := testenv.MountTmpfs(t, "8m")
	if err != nil {
		t.Skipf("disk-full scenario skipped: %v. Run the suite as root, or in a container with CAP_SYS_ADMIN, to mount the small tmpfs it fills.", err)
	}
	s := newSite(t, siteOpts{dataDir: filepath.Join(mnt, "gw"), brokerConf: []string{"max_queued_messages 100000"}})
	s.waitFor("online", func(st gwStatus) bool { return st.Link.Online })
	P := func(n int) customs.Subject { return parcel(500000 + n) }
	var before []customs.Order
	for i := range 200 {
		before = append(before, release(P(i)))
	}
	s.issue(before...)
	s.converge()

	filled := fill(t, mnt)
	t.Logf("tmpfs filled with %d bytes", filled)
	// Orders that need new pages: the store cannot commit them.
	var after []customs.Order
	for i := 1000; i < 4000; i++ {
		after = append(after, release(P(i)))
	}
	head := s.issue(after...)
	st := s.waitFor("not ready, store not writable", func(st gwStatus) bool { return !st.Ready && !st.StoreWritable })
	if st.Link.Applied >= head {
		t.Fatalf("applied_seq %d reached head %d on a full disk", st.Link.Applied, head)
	}
	t.Logf("disk full: ready=%v store_writable=%v applied_seq %d < head %d; alarms %q", st.Ready, st.StoreWritable, st.Link.Applied, head, st.Alarms)
	// Deciding goes on from what the store has. An old release passes if
	// the outbox can still keep its event, else STOP (error); never a pass
	// without its event (the final check proves each PASS reached central).
	old := s.scan(P(7).ID)
	if got := s.scan(P(1500).ID); got != "PASS" && got != "STOP" {
		t.Fatalf("frame %q", got)
	} else if got == "PASS" {
		t.Errorf("a parcel released only in orders the store could not commit passed")
	}
	t.Logf("on a full disk: released parcel decided %s; outbox %+v", old, st.Link.OutboxH)

	// Space again: the broker redelivers what was never acknowledged,
	// resync fills the rest, and the store is writable.
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	took, _ := s.converge()
	st = s.waitFor("ready again", func(st gwStatus) bool { return st.Ready && st.StoreWritable })
	if got := s.scan(P(1500).ID); got != "PASS" {
		t.Errorf("after recovery: %s, want PASS", got)
	}
	t.Logf("FIGURE disk-full: %d orders held back while the disk was full; converged %v after space returned", len(after), took)
	t.Logf("disk full: %s", s.finalCheck())
}

// fill writes a file in dir until the filesystem is full.
func fill(t *testing.T, dir string) int64 {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := f.Write(buf)
		n += int64(k)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Fill the last partial block too.
	for {
		k, err := f.Write(buf[:512])
		n += int64(k)
		if err != nil {
			break
		}
	}
	return n
}
